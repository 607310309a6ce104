"""The checks a batch of clicks passes before storage, on the batch alone (docs/rules.md, "Identity and integrity"):
a `sub_id` names one click, so a batch naming it twice with different content is refused (the same content twice
counts once); a shopper has one account currency, so a click whose user has another currency earlier in the batch is
refused. What is already stored is checked by the store (adapters/reference_data.store_clicks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from accrual.domain.models import Click


@dataclass(frozen=True)
class Refusal:
    line: int | None  # the line of the file (None when the clicks did not come from a file)
    sub_id: str
    reason: str

    def to_dict(self) -> dict:
        return {"line": self.line, "sub_id": self.sub_id, "reason": self.reason}

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line is not None else self.reason


@dataclass
class Screened:
    accepted: list[tuple[int | None, Click]] = field(default_factory=list)  # one per sub_id, in batch order
    repeated: int = 0  # the same click again in the batch: counted once
    refusals: list[Refusal] = field(default_factory=list)


def differences(old: Click, new: Click) -> str:
    """The fields two clicks disagree on, as `field 'old' → 'new'`."""
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return ", ".join(f"{name} {before[name]!r} → {after[name]!r}" for name in before if before[name] != after[name])


def screen(entries: list[tuple[int | None, Click]]) -> Screened:
    """Split a batch into the clicks to store (first occurrence of each sub_id) and the refused ones."""
    result = Screened()
    by_sub_id: dict[str, list[tuple[int | None, Click]]] = {}
    for line, click in entries:
        by_sub_id.setdefault(click.sub_id, []).append((line, click))

    def where(line: int | None) -> str:
        return f"line {line}" if line is not None else "an earlier click"

    unique: list[tuple[int | None, Click]] = []
    for sub_id, occurrences in by_sub_id.items():
        first_line, first = occurrences[0]
        other = next(((line, click) for line, click in occurrences[1:] if click != first), None)
        if other is None:
            unique.append(occurrences[0])
            result.repeated += len(occurrences) - 1
            continue
        lines = ", ".join(str(line) for line, _ in occurrences if line is not None)
        for line, _click in occurrences:
            result.refusals.append(
                Refusal(
                    line,
                    sub_id,
                    (
                        f"sub_id {sub_id!r} appears {len(occurrences)} times in this batch"
                        + (f" (lines {lines})" if lines else "")
                        + f" with different content ({differences(first, other[1])}); none of them is stored"
                    ),
                )
            )
    unique.sort(key=lambda entry: (entry[0] is None, entry[0] or 0))

    currencies: dict[str, tuple[str, int | None]] = {}
    for line, click in unique:
        established = currencies.setdefault(click.user_id, (click.account_currency, line))
        if established[0] != click.account_currency:
            result.refusals.append(
                Refusal(
                    line,
                    click.sub_id,
                    (
                        f"sub_id {click.sub_id!r}: user {click.user_id!r} has account currency {established[0]} "
                        f"({where(established[1])}), this click says {click.account_currency}; "
                        "a shopper has one account currency"
                    ),
                )
            )
            continue
        result.accepted.append((line, click))
    result.refusals.sort(key=lambda refusal: (refusal.line is None, refusal.line or 0))
    return result
