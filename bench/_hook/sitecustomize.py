"""Loaded by Python at start-up when bench/_hook is on PYTHONPATH: counts AWS calls when ACCRUAL_CALL_METER names a
file (see callmeter.py) and adds a fixed wait before every DynamoDB request when ACCRUAL_DYNAMODB_LATENCY_MS is set
(see latency.py). Nothing happens without those variables."""

import callmeter
import latency

callmeter.install_from_environment()
latency.install_from_environment()
