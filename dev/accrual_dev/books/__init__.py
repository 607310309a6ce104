"""The month's books: the report of a month from the ledger (JSON and HTML) and the partner's payout statement
reconciled against the ledger. Operator tools: nothing here runs in Lambda."""
