"""A long command through a list: Ctrl-C stops it between two steps with the counts so far; a second Ctrl-C stops it
at once; the bar counts against its total."""

from __future__ import annotations

import io
import signal

import pytest

from accrual_dev.progress import Progress, in_steps


def test_ctrl_c_stops_between_two_steps_with_the_counts_so_far():
    done = []

    def work(chunk):
        done.append(chunk)
        if len(done) == 2:
            signal.raise_signal(signal.SIGINT)  # the operator's Ctrl-C while the second step runs
        return {"orders_due": len(chunk)}

    with Progress("confirm", total=10, enabled=False) as progress:
        counts, interrupted = in_steps(range(10), work, progress, size=3)
    assert interrupted and counts == {"orders_due": 6} and done == [[0, 1, 2], [3, 4, 5]]
    assert progress.done == 6


def test_a_second_ctrl_c_stops_at_once_and_ctrl_c_keeps_its_meaning_afterwards():
    with pytest.raises(KeyboardInterrupt), Progress("audit", enabled=False):
        signal.raise_signal(signal.SIGINT)  # asks to stop at the next step
        signal.raise_signal(signal.SIGINT)  # stops now
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_the_bar_counts_against_its_total(monkeypatch):
    shown = io.StringIO()
    monkeypatch.setattr("sys.stderr", shown)
    with Progress("clicks load", total=4, unit="click", enabled=True) as progress:
        assert list(progress.each("abcd")) == list("abcd")
    assert "4/4" in shown.getvalue() and "clicks load" in shown.getvalue()


def test_without_a_terminal_nothing_is_shown(monkeypatch):
    shown = io.StringIO()
    monkeypatch.setattr("sys.stderr", shown)
    with Progress("redecide", total=3) as progress:
        list(progress.each(range(3)))
    assert shown.getvalue() == "" and progress.done == 3
