"""The operator's commands, one module each. A module `register(subparsers)`s its parser (with its subcommands and
options) and returns it, and `run(args)`s the command, returning the exit code; a `--workers N` variant lives in the
same module. `COMMANDS` lists them in the order `accrual --help` shows them: a new command is one more line here.
"""

COMMANDS = (
    "stack",
    "config",
    "clicks",
    "ingest",
    "pull",
    "confirm",
    "run",
    "balance",
    "explain",
    "review",
    "redecide",
    "dlq",
    "claim",
    "report",
    "statement",
    "audit",
    "notifications",
    "quarantine",
    "migrate",
)
