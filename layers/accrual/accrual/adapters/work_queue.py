"""The reconcile queue: units of work (an archived page, a due-index shard) handed from the pull, the drop and the
confirmation schedule to the reconcile workers, and its dead-letter queue.

The queue's URL comes from WORK_QUEUE_URL (set by template.yaml) or the stack's output WorkQueueUrl (the operator's
CLI and the local stack); the dead-letter queue's from WORK_DEAD_LETTER_QUEUE_URL or WorkDeadLetterQueueUrl.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from accrual.ports.work import QueueDepth, QueuedMessage
from accrual.settings import Settings, stack_outputs

SEND_BATCH = 10  # SendMessageBatch's limit


def queue_url(settings: Settings, *, dead_letter: bool = False) -> str:
    env, output = (
        ("WORK_DEAD_LETTER_QUEUE_URL", "WorkDeadLetterQueueUrl") if dead_letter else ("WORK_QUEUE_URL", "WorkQueueUrl")
    )
    given = settings.work_dead_letter_queue_url if dead_letter else settings.work_queue_url
    url = given or stack_outputs(settings.stack, settings.region).get(output)
    if not url:
        raise LookupError(f"stack {settings.stack!r} has no {output} (nor {env} in the environment)")
    return url


class SqsWorkQueue:
    """The reconcile queue or its dead-letter queue on SQS (the port `accrual.ports.WorkQueue`)."""

    def __init__(self, settings: Settings, *, dead_letter: bool = False) -> None:
        self.url = queue_url(settings, dead_letter=dead_letter)
        self._sqs = settings.client("sqs")

    def send(self, bodies: Iterable[str]) -> int:
        """Send message bodies in batches of ten; a message SQS refuses raises (the caller's cursor stays put)."""
        pending = list(bodies)
        for start in range(0, len(pending), SEND_BATCH):
            batch = pending[start : start + SEND_BATCH]
            answer = self._sqs.send_message_batch(
                QueueUrl=self.url, Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(batch)]
            )
            if answer.get("Failed"):
                raise RuntimeError(f"the work queue refused {len(answer['Failed'])} unit(s): {answer['Failed'][0]}")
        return len(pending)

    def receive(
        self, *, limit: int = 10, wait_seconds: int = 0, visibility_timeout: int | None = None
    ) -> list[QueuedMessage]:
        options: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": min(limit, 10),
            "WaitTimeSeconds": wait_seconds,
            "AttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            options["VisibilityTimeout"] = visibility_timeout
        return [
            QueuedMessage(
                message["MessageId"],
                message["Body"],
                message["ReceiptHandle"],
                int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                int(message.get("Attributes", {}).get("SentTimestamp", 0)),
            )
            for message in self._sqs.receive_message(**options).get("Messages", [])
        ]

    def delete(self, receipt_handles: Iterable[str]) -> None:
        handles = list(receipt_handles)
        for start in range(0, len(handles), SEND_BATCH):
            self._sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": handle}
                    for index, handle in enumerate(handles[start : start + SEND_BATCH])
                ],
            )

    def release(self, receipt_handles: Iterable[str]) -> None:
        """Make received messages visible again at once (a failed unit is retried without waiting its timeout)."""
        for handle in receipt_handles:
            self._sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=handle, VisibilityTimeout=0)

    def hide(self, receipt_handles: Iterable[str], seconds: int) -> None:
        for handle in receipt_handles:
            self._sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=handle, VisibilityTimeout=seconds)

    def max_receives(self) -> int | None:
        """How many receives the queue allows a message before its dead-letter queue takes it (None: no limit)."""
        attributes = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["RedrivePolicy"])["Attributes"]
        policy = attributes.get("RedrivePolicy")
        return int(json.loads(policy)["maxReceiveCount"]) if policy else None

    def depth(self) -> QueueDepth:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return QueueDepth(
            int(attributes.get("ApproximateNumberOfMessages", 0)),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    def arn(self) -> str:
        """The queue's ARN (the local poller names it in the events it builds, as Lambda's event source does)."""
        return self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
