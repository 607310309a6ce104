"""Why a unit of work failed, kept in the control table under its message's id (which survives the move to the
dead-letter queue) for `accrual dlq list` (the port `accrual.ports.FailureLog`)."""

from __future__ import annotations

from datetime import UTC, datetime

from accrual.adapters.ledger_tables import ControlRecord, bind_ledger_tables
from accrual.ports.work import UnitFailure
from accrual.settings import Settings

FAILURE_PK = "UNIT_FAILURE"
REASON_LIMIT = 1000


class ControlFailureLog:
    def __init__(self, settings: Settings) -> None:
        bind_ledger_tables(settings)

    def record(self, message_id: str, unit_text: str, reason: str, *, receives: int) -> None:
        ControlRecord(
            FAILURE_PK,
            message_id,
            body=unit_text,
            reason=reason[:REASON_LIMIT],
            at=f"{datetime.now(UTC).isoformat()} receive {receives}",
        ).save()

    def reason(self, message_id: str) -> UnitFailure | None:
        try:
            record = ControlRecord.get(FAILURE_PK, message_id)
        except ControlRecord.DoesNotExist:
            return None
        return UnitFailure(record.reason or "", record.at or "")
