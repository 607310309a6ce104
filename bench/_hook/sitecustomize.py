"""Loaded by Python at start-up when bench/_hook is on PYTHONPATH: counts AWS calls when ACCRUAL_CALL_METER names a
file (see callmeter.py). Nothing happens without that variable."""

import callmeter

callmeter.install_from_environment()
