"""Helpers shared by the test suites (builders of domain values, ledger scenarios on the local stack)."""
