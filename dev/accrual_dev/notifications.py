"""What shoppers' subscribers receive, seen from the operator's shell.

Publishing: deployed, the outbox relay (a Lambda on the outbox table's stream) publishes every notification the
ledger writes. A local emulator runs no stream, so every command that writes the outbox (`ingest`, `confirm`, `claim`,
`review`, `redecide`) then publishes what is unpublished through the same relay code, which deletes each record
once published: a rerun publishes nothing twice. `ingest` and `confirm` (in this process) also publish while they write,
as the stream relay does (`PublishingWhileWriting`). Against AWS the command leaves it to the relay.

Reading: `accrual notifications tail` reads the stack's subscriber queue (`LocalNotificationsQueue`, subscribed to
every notification), as a subscriber would: a message shown is taken off the queue, so the next tail shows what
arrived since; messages a `--type`/`--user` filter leaves out stay on the queue for the next tail. `--source outbox`
reads the outbox table instead, without taking anything: the notifications not yet published (one leaves the outbox
once published).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from accrual.settings import Settings

# how long a message a filter leaves out stays hidden while this tail runs (SQS's longest: 12 hours); it is made
# visible again when the tail ends. Received five times, SQS moves it to the notifications dead-letter queue.
HIDDEN_WHILE_FOLLOWING_SECONDS = 12 * 3600
HIDDEN_WHILE_READING_SECONDS = 60
# the local sweep publishes this many batches at a time: the CLI prepares the next requests while DynamoDB Local and
# moto answer the last ones, on the other core
SWEEP_THREADS = 4
# while a command writes, the local sweep looks for what it wrote this often
SWEEP_AGAIN_SECONDS = 1.0
# a command still writing after this long sweeps in a process of its own (`PublishingWhileWriting`): starting one
# costs about a second of CPU, which a short command does not win back. Measured on the 20,000-order day over two
# alternated pairs of runs: ingest and confirmation together 145.4 and 145.1 s with it, 150.2 and 149.8 s without.
SWEEP_APART_AFTER_SECONDS = 5.0
# the local moto server answers one request at a time: a long poll would hold every other client, so --follow
# polls briefly and sleeps between
FOLLOW_POLL_SECONDS = 1.0


def publishes_locally(settings: Settings) -> bool:
    """Whether commands publish what they write themselves: on a local stack, unless ACCRUAL_LOCAL_RELAY=off."""
    return bool(settings.endpoint_url) and os.environ.get("ACCRUAL_LOCAL_RELAY") != "off"


def publish_written(settings: Settings, now: datetime, relay: Any = None) -> dict[str, int] | None:
    """Publish what the command wrote to the outbox, as the deployed relay would, on a local stack only (deployed,
    the stream relay does it). Returns the relay's counts (`{"published": n}`), or None when left to the relay.
    `ACCRUAL_LOCAL_RELAY=off` leaves them to a relay locally too (the steps bench counts the ledger's calls apart
    from the relay's, which it prices per notification)."""
    if not publishes_locally(settings):
        return None
    from accrual.composition import composition

    # a record is stamped with the command's --now, which may be later than the clock (a confirmation run ahead)
    until = max(now, datetime.now(UTC))
    relay = relay or composition(settings).relay
    return {"published": 0, **relay.publish_unpublished(now=until, threads=SWEEP_THREADS)}


class PublishingWhileWriting:
    """On a local stack, what a long command writes to the outbox published while it writes, as the deployed stream
    relay publishes while the ledger writes: sweeps again and again until `done()`, which stops them and sweeps what
    is left (one sweep at a time, so nothing is published twice). Against AWS, nothing is started and `done()` is
    `publish_written`'s None.

    The sweeps run in a thread of the command for its first SWEEP_APART_AFTER_SECONDS, then in a process of their own
    (`_SweepProcess`), as the deployed relay is a function of its own: publishing (SNS's requests, the outbox's reads
    and deletes) then no longer takes turns with the command's writing for one interpreter's lock.

        publishing = PublishingWhileWriting(settings, at)
        with publishing:
            ...  # the command's writes
            notified = publishing.done()
    """

    def __init__(self, settings: Settings, now: datetime) -> None:
        self.settings, self.now = settings, now
        self._counts: Counter[str] = Counter()  # the sweeps of this process
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._apart: _SweepProcess | None = None

    @property
    def counts(self) -> Counter[str]:
        """What the sweeps have published so far (and failed to)."""
        counts = Counter(self._counts)
        if self._apart is not None:
            counts.update(self._apart.counts())
        return counts

    def __enter__(self) -> PublishingWhileWriting:
        if publishes_locally(self.settings):
            self._thread = threading.Thread(target=self._sweep_until_stopped, name="outbox-publishing", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop_sweeping()

    def done(self) -> dict[str, int] | None:
        """Stop the background sweeps, sweep what is left, and return everything published (None: left to a
        relay)."""
        self._stop_sweeping()
        if self._failure is not None:
            raise self._failure
        last = publish_written(self.settings, self.now)
        if last is None:
            return None
        self._counts.update(last)
        return {"published": 0, **self.counts}

    def _sweep_until_stopped(self) -> None:
        from accrual.composition import composition

        try:
            relay = composition(self.settings).relay  # one relay, its clients and connections, for every sweep
            started = time.monotonic()
            while not self._stop.wait(SWEEP_AGAIN_SECONDS):
                if time.monotonic() - started >= SWEEP_APART_AFTER_SECONDS:
                    self._apart = _SweepProcess(self.settings, self.now)  # sweeps from here on
                    return
                self._counts.update(publish_written(self.settings, self.now, relay) or {})
        except Exception as error:  # raised by done(), in the command's thread
            self._failure = error

    def _stop_sweeping(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._apart is not None:
            failure = self._apart.stop()
            if failure is not None and self._failure is None:
                self._failure = RuntimeError(f"publishing the outbox failed: {failure}")
            self._counts.update(self._apart.counts())
            self._apart = None


class _SweepProcess:
    """The sweeps in a process of their own (spawned: a fork would copy the command's threads and connections). A
    sweep runs under a lock the process takes, and the process looks at the stop flag under it: once `stop()` holds
    the lock after setting the flag, no sweep is under way nor will start, and the process is ended."""

    def __init__(self, settings: Settings, now: datetime) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._lock = context.Lock()
        self._published = context.Value("q", 0, lock=False)  # written under self._lock
        self._failed = context.Value("q", 0, lock=False)
        self._failures, their_end = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_sweep_apart,
            # the settings' values alone: the clients they cache do not cross to another process
            args=(
                type(settings),
                settings.model_dump(),
                now.isoformat(),
                self._stop,
                self._lock,
                self._published,
                self._failed,
                their_end,
            ),
            name="outbox-publishing",
            daemon=True,
        )
        self._process.start()
        their_end.close()

    def counts(self) -> Counter[str]:
        return +Counter(published=self._published.value, failed=self._failed.value)  # unary +: the zeros dropped

    def stop(self) -> str | None:
        """Stop sweeping (a sweep under way finishes first) and end the process; what it failed with, if anything."""
        self._stop.set()
        while not self._lock.acquire(timeout=0.5):
            if not self._process.is_alive():  # ended holding the lock: no sweep can be under way
                break
        else:
            try:
                self._process.terminate()  # between sweeps (or still starting): nothing half done
            finally:
                self._lock.release()
        self._process.join()
        try:
            return self._failures.recv() if self._failures.poll() else None
        except EOFError:  # ended without a word: nothing failed
            return None


def _sweep_apart(
    kind: type[Settings],
    values: dict[str, Any],
    now: str,
    stop: Any,
    lock: Any,
    published: Any,
    failed: Any,
    failures: Any,
) -> None:
    """The sweeps of `_SweepProcess`, in that process, until told to stop."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's: it stops this process
    try:
        from accrual.composition import composition

        settings = kind.model_validate(values)
        relay = composition(settings).relay
        at = datetime.fromisoformat(now)
        while True:
            with lock:
                if stop.is_set():
                    return
                counts = publish_written(settings, at, relay) or {}
                published.value += counts.get("published", 0)
                failed.value += counts.get("failed", 0)
            if stop.wait(SWEEP_AGAIN_SECONDS):
                return
    except Exception as error:  # noqa: BLE001 - handed to the command, which raises it
        failures.send(str(error) or type(error).__name__)


@dataclass(frozen=True)
class Notification:
    """One notification as a subscriber receives it: the message body, and where it came from."""

    body: dict[str, Any]
    receipt_handle: str | None = None  # the queue's handle, to take it off the queue
    message_id: str | None = None

    @property
    def event_type(self) -> str:
        return str(self.body.get("event_type", ""))

    @property
    def user_id(self) -> str:
        return str(self.body.get("user_id", ""))

    def order(self) -> tuple[str, ...]:
        """Shown in the order things happened; at one instant, by order and type."""
        body = self.body
        return tuple(str(body.get(name, "")) for name in ("occurred_at", "partner", "order_id", "event_type"))


@dataclass(frozen=True)
class Selection:
    """`--type` (an event type, or its family: `claim` selects every `claim.*`) and `--user`; empty selects all."""

    types: tuple[str, ...] = ()
    users: tuple[str, ...] = ()

    def __call__(self, notification: Notification) -> bool:
        kind = notification.event_type
        if self.types and not any(kind == wanted or kind.startswith(wanted + ".") for wanted in self.types):
            return False
        return not self.users or notification.user_id in self.users


def describe(notification: Notification) -> str:
    """One readable line: when, what, whom, which order, the state change and the money."""
    body = notification.body
    what = f"{body.get('occurred_at', '?')}  {notification.event_type:<18} user {notification.user_id}"
    order = body.get("order_id") or body.get("order_number")
    if order:
        what += f"  order {body.get('partner', '?')}#{order}"
    if body.get("claim_id"):
        what += f"  claim {body['claim_id']}"
    if body.get("state"):
        before = body.get("previous_state")
        what += f"  {before} -> {body['state']}" if before else f"  {body['state']}"
    if body.get("cashback") is not None:
        what += f"  {body['cashback']} {body.get('account_currency', '')} ({body.get('cashback_usd')} USD)"
    return what


@dataclass
class QueueTail:
    """The subscriber queue, read as a subscriber does (see the module's docstring)."""

    settings: Settings
    selection: Selection = field(default_factory=Selection)
    follow: bool = False

    def __post_init__(self) -> None:
        url = self.settings.local_notifications_queue_url
        if not url:
            raise LookupError(
                f"stack {self.settings.stack!r} has no subscriber queue (output LocalNotificationsQueueUrl); "
                "read the outbox with --source outbox"
            )
        self.url = url
        self._sqs = self.settings.client("sqs")
        self._left_out: dict[str, str] = {}  # message id -> receipt handle of messages the filter leaves out

    def batches(self) -> Iterator[list[Notification]]:
        """The selected messages, a batch at a time, each batch in the order they occurred. Without `follow`, ends
        when the queue holds nothing more; with it, goes on until interrupted. Shown messages are deleted."""
        hidden = HIDDEN_WHILE_FOLLOWING_SECONDS if self.follow else HIDDEN_WHILE_READING_SECONDS
        chosen: list[Notification] = []
        try:
            while True:
                while received := self._receive(hidden):
                    chosen += [message for message in received if self._keep(message)]
                if chosen:
                    chosen.sort(key=Notification.order)
                    yield chosen
                    self._delete(chosen)
                    chosen = []
                if not self.follow:
                    return
                time.sleep(FOLLOW_POLL_SECONDS)
        finally:
            self._release([*self._left_out.values(), *(message.receipt_handle or "" for message in chosen)])

    def _receive(self, hidden: int) -> list[Notification]:
        answer = self._sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=hidden
        )
        return [_from_queue(message) for message in answer.get("Messages", [])]

    def _keep(self, message: Notification) -> bool:
        if self.selection(message):
            return True
        assert message.message_id is not None and message.receipt_handle is not None
        self._left_out[message.message_id] = message.receipt_handle
        return False

    def _delete(self, messages: list[Notification]) -> None:
        handles = [message.receipt_handle for message in messages if message.receipt_handle]
        for start in range(0, len(handles), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": handle} for n, handle in enumerate(handles[start : start + 10])
                ],
            )

    def _release(self, handles: list[str]) -> None:
        """The messages the filter left out (and any not shown when the tail stopped), visible again for the next
        tail."""
        for start in range(0, len(handles), 10):
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for n, handle in enumerate(handles[start : start + 10])
                ],
            )


def _from_queue(message: dict[str, Any]) -> Notification:
    """An SQS message delivered by SNS: the SNS envelope's `Message` is the notification body."""
    envelope = json.loads(message["Body"])
    text = envelope.get("Message", message["Body"]) if isinstance(envelope, dict) else message["Body"]
    return Notification(json.loads(text), message["ReceiptHandle"], message["MessageId"])


@dataclass
class OutboxTail:
    """The outbox table: the notifications not yet published, oldest first; nothing is taken."""

    settings: Settings
    selection: Selection = field(default_factory=Selection)
    follow: bool = False

    def batches(self) -> Iterator[list[Notification]]:
        from accrual.adapters.ledger_items import outbox_messages
        from accrual.adapters.ledger_tables import OutboxRecord, bind_ledger_tables

        bind_ledger_tables(self.settings)
        shown: set[str] = set()
        while True:
            waiting = [
                message
                for record in OutboxRecord.scan()
                if not record.published_at  # (the earlier form kept those a while)
                for message in outbox_messages(record)
                if message.event_id not in shown
            ]
            shown.update(message.event_id for message in waiting)
            fresh = [Notification(json.loads(message.body)) for message in waiting]
            chosen = sorted(filter(self.selection, fresh), key=Notification.order)
            if chosen:
                yield chosen
            if not self.follow:
                return
            time.sleep(FOLLOW_POLL_SECONDS)


def tail(
    settings: Settings,
    *,
    source: str = "queue",
    selection: Selection | None = None,
    follow: bool = False,
    show: Callable[[Notification], None],
) -> int:
    """Show the selected notifications (`show` prints one); returns how many were shown. Ctrl-C ends a follow."""
    reader = (QueueTail if source == "queue" else OutboxTail)(settings, selection or Selection(), follow)
    shown = 0
    for batch in reader.batches():
        for message in batch:
            show(message)
            shown += 1
    return shown
