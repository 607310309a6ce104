"""What a subscriber of the notifications topic received on the local stack: its queue drained, each message's
notification body and SNS message attributes (published notifications leave the outbox, so this is where they are)."""

from __future__ import annotations

import json
from typing import Any

from accrual.settings import Settings


def received(stack: Settings) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Every message on the stack's subscriber queue, taken off it: (body, {attribute: value}), in arrival order."""
    sqs = stack.client("sqs")
    url = stack.local_notifications_queue_url
    taken: list[tuple[dict[str, Any], dict[str, str]]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return taken
        for message in messages:
            envelope = json.loads(message["Body"])
            attributes = {name: value["Value"] for name, value in envelope.get("MessageAttributes", {}).items()}
            taken.append((json.loads(envelope["Message"]), attributes))
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]} for n, message in enumerate(messages)],
        )
