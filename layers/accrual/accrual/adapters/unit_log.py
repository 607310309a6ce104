"""What became of the units of work, in the control table (the port `accrual.ports.UnitLog`).

- Why a message failed: pk `UNIT_FAILURE`, sk the message's id (which survives the move to the dead-letter queue),
  for `accrual dlq list`.
- Each unit's outcome per run: pk `UNIT#<run id>`, sk the unit's name, done or failed (on which receive), with what
  it did as JSON (compressed above COMPRESS_ABOVE bytes); kept OUTCOME_DAYS, then DynamoDB's TTL removes it. The
  command that handed a run's units on waits for these and reports them.
"""

from __future__ import annotations

import time

from pynamodb.attributes import BinaryAttribute, BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from accrual.adapters.ledger_tables import ControlRecord, bind_ledger_tables, pack_text, unpack_text
from accrual.adapters.pynamo import bind_model
from accrual.ports.clock import Clock
from accrual.ports.work import UnitFailure, UnitOutcome
from accrual.settings import Settings

FAILURE_PK = "UNIT_FAILURE"
OUTCOME_PREFIX = "UNIT#"
REASON_LIMIT = 1000
OUTCOME_DAYS = 7


class UnitOutcomeRecord(Model):
    class Meta:
        table_name = "control"

    pk = UnicodeAttribute(hash_key=True)  # UNIT#<run id>
    sk = UnicodeAttribute(range_key=True)  # the unit's name within its run
    done = BooleanAttribute()
    detail = UnicodeAttribute(null=True)
    detail_z = BinaryAttribute(null=True, legacy_encoding=False)
    receives = NumberAttribute(default=1)
    expires_at = NumberAttribute()


class ControlUnitLog:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.clock = clock
        bind_ledger_tables(settings)
        bind_model(UnitOutcomeRecord, settings.control_table, settings)

    def record(self, message_id: str, unit_text: str, reason: str, *, receives: int) -> None:
        ControlRecord(
            FAILURE_PK,
            message_id,
            body=unit_text,
            reason=reason[:REASON_LIMIT],
            at=f"{self.clock.now().isoformat()} receive {receives}",
        ).save()

    def reason(self, message_id: str) -> UnitFailure | None:
        try:
            record = ControlRecord.get(FAILURE_PK, message_id)
        except ControlRecord.DoesNotExist:
            return None
        return UnitFailure(record.reason or "", record.at or "")

    def record_outcome(self, run_id: str, outcome: UnitOutcome) -> None:
        detail, packed = pack_text(outcome.detail)
        UnitOutcomeRecord(
            f"{OUTCOME_PREFIX}{run_id}",
            outcome.unit,
            done=outcome.done,
            detail=detail,
            detail_z=packed,
            receives=outcome.receives,
            expires_at=int(time.time()) + OUTCOME_DAYS * 86400,
        ).save()

    def outcomes(self, run_id: str) -> list[UnitOutcome]:
        return [
            UnitOutcome(record.sk, record.done, unpack_text(record.detail, record.detail_z), int(record.receives))
            for record in UnitOutcomeRecord.query(f"{OUTCOME_PREFIX}{run_id}", consistent_read=True)
        ]
