"""The port of time: a service asks it for "now" instead of reading the system clock, so a test can set it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...
