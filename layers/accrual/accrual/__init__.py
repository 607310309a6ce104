"""Cashback accrual: partner reports in, per-order cashback with a decision trail out."""

from accrual.adapters.latency import install_from_env as _install_latency

# Benchmarks only: ACCRUAL_DYNAMODB_LATENCY_MS adds a fixed wait before every DynamoDB request (adapters/latency.py).
_install_latency()
