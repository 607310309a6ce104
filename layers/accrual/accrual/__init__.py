"""Cashback accrual: partner reports in, per-order cashback with a decision trail out."""
