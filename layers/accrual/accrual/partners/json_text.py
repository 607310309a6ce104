"""Partner JSON read exactly and totally: every number kept exact (Decimal, never float), values nested too deep cut on
reading, and no single bad value able to fail a whole page. The readers reach it through `accrual.partners.report`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from accrual.domain.models import brief

# JSON nested deeper than this is cut on reading: the parser recurses per level (a value nested 100,000 deep is a
# RecursionError that would fail the whole page), and no partner's line is deeper than a handful of levels.
MAX_JSON_DEPTH = 64
NESTED_TOO_DEEP = f"<nested deeper than {MAX_JSON_DEPTH} levels: cut on reading>"
# A JSON string token, also when it is never closed (to the end of the text), so that every match attempt succeeds
# and a scan stays linear whatever the text.
_JSON_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)'
_STRINGS = re.compile(_JSON_STRING, re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_TOKENS = re.compile(_JSON_STRING + r"|[\[\]{}]", re.DOTALL)
# Integers longer than this are kept as Decimal: int() refuses more than 4,300 digits, and no real value is this long.
_MAX_INT_DIGITS = 100


def loads(data: bytes | str) -> Any:
    """JSON with every number kept exact (Decimal, never float), that never fails on one bad value inside:
    - a value nested deeper than MAX_JSON_DEPTH is replaced by the string NESTED_TOO_DEEP (see `nested_path`);
    - NaN and Infinity become Decimal (refused where an amount is read), a number Decimal cannot hold becomes a text
      naming it, and a very long integer a Decimal;
    - bytes that are not UTF-8 become lone surrogates (refused where an id or a text is read).
    A document that is not JSON at all still raises ValueError."""
    if isinstance(data, (bytes, bytearray)):
        encoding = json.detect_encoding(data)
        text = data.decode(encoding, "surrogateescape" if encoding.startswith("utf-8") else "surrogatepass")
    else:
        text = data
    try:
        return json.loads(cut_deep_values(text), parse_float=_json_decimal, parse_int=_json_int, parse_constant=Decimal)
    except RecursionError:  # a structure that defeated the cut (it should not): still not a crash
        raise ValueError(f"JSON nested too deep to read (more than {MAX_JSON_DEPTH} levels)") from None


class GivenNumber(Decimal):
    """A JSON number read exactly, that remembers its text as the partner wrote it: a reason quotes `1e400`, not
    Decimal's `1E+400` (or a value computed from it). Arithmetic on it gives plain Decimals."""

    given: str

    def __new__(cls, text: str) -> GivenNumber:
        number = super().__new__(cls, text)
        number.given = text
        return number


def _json_decimal(text: str) -> Decimal | str:
    try:
        return GivenNumber(text)
    except ArithmeticError:  # an exponent beyond Decimal's range
        return f"<number out of range: {brief(text)}>"


def _json_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _MAX_INT_DIGITS else Decimal(text)


def cut_deep_values(text: str) -> str:
    """`text` with every value that opens below MAX_JSON_DEPTH levels replaced by the JSON string NESTED_TOO_DEEP.
    Linear: normal pages cost one C-speed pass that drops the strings and a count of the brackets left."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:  # a JSON Lines line, a small page
        return text
    skeleton = _STRINGS.sub("", text)
    if skeleton.count("[") + skeleton.count("{") <= MAX_JSON_DEPTH:
        return text
    depth = 0
    for match in _BRACKETS.finditer(skeleton):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            break
    else:
        return text
    pieces: list[str] = []
    depth, kept_to, cut_from = 0, 0, None
    replacement = json.dumps(NESTED_TOO_DEEP)
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth == MAX_JSON_DEPTH + 1:
                cut_from = match.start()
        elif token in ("]", "}"):
            if depth == MAX_JSON_DEPTH + 1 and cut_from is not None:
                pieces += [text[kept_to:cut_from], replacement]
                kept_to, cut_from = match.end(), None
            depth = max(depth - 1, 0)
    if cut_from is not None:  # never closed: the document is broken anyway; cut to its end so parsing fails fast
        pieces += [text[kept_to:cut_from], replacement]
        kept_to = len(text)
    return "".join(pieces) + text[kept_to:]


def nested_path(value: Any, path: str = "") -> str | None:
    """Where in a parsed line a value was cut for nesting too deep (the field's path), or None."""
    if isinstance(value, str):
        return (path or "line") if value == NESTED_TOO_DEEP else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = nested_path(item, f"{path}.{str(key)[:40]}" if path else str(key)[:40])
            if found is not None:
                return found[:120]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nested_path(item, f"{path}[{index}]")
            if found is not None:
                return found[:120]
    return None
