"""moto's SNS-to-SQS delivery at a cost per message that does not grow with what was delivered before.

A day of orders publishes a notification per order change, and moto delivers each to the stack's subscriber queues.
Stock moto 5 made that cost grow with the day (measured on 1,000 orders: 12 ms of moto's CPU per notification after
1,000 delivered, 34 ms after 2,000), and kept memory per message it never gives back:

- SendMessage reads one queue attribute (`ContentBasedDeduplication`) by building every attribute of the queue,
  among them the three message counts, each a pass over every message the queue holds: O(queue) per delivery.
  Here a queue's attributes are computed when read (`QueueAttributes`), so SendMessage reads one; GetQueueAttributes
  still counts the messages, as it must.
- each delivery builds and signs a fresh X.509 certificate for the envelope's `SigningCertURL` and keeps its PEM for
  the server's life (about 1 KB a message, and a second RSA signature). Here each region makes one certificate and
  serves it under one URL, as SNS signs with a certificate of the region; every message is still signed, once: the
  envelope a message's subscriber queues receive is the same (its id, its time, its signature), as SNS's is. The key
  is RSA of 1,024 bits where moto makes 2,048: a signature costs a quarter of the CPU (0.09 ms against 0.31 here, per
  message) and half the bytes a queued message keeps, and it verifies with the certificate just the same; nothing
  local needs the strength.
- the envelope is written by Python's JSON encoder with `indent=2`, which the C encoder does not do: about 0.1 ms a
  delivery. Here the same text is put together around the C encoder's leaves (`pretty_json`).
- every topic keeps each message it published, for moto's in-process test API, which a server's clients never see:
  here the last `SENT_KEPT` only.
- a queue keeps each message's body as text until it is deleted, and the stack's subscriber queues are read by
  nobody on a local day (100,000 orders deliver 300,000 messages). Here a queued message keeps its body compressed
  (zlib at its fastest level) and gives it back as text when read: 2.2 KB a message becomes 1.5 (the envelope's
  signature and ids do not compress).

    install()  # in the moto server's process, before it serves
"""

from __future__ import annotations

import base64
import functools
import json
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import cryptography.x509
import moto.sns.models as sns_models
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import Name, NameAttribute
from cryptography.x509.oid import NameOID
from moto.core.utils import camelcase_to_underscores, iso_8601_datetime_with_milliseconds, utcnow
from moto.moto_api._internal import mock_random
from moto.sns.models import DEFAULT_ACCOUNT_ID, Subscription, Topic, sns_backends
from moto.sqs.models import Message, Queue

SENT_KEPT = 100


class QueueAttributes(Mapping[str, Any]):
    """A queue's attributes as moto's `Queue.attributes` gives them (the same names and values), each computed when
    read."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        names = list(Queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += Queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:  # type: ignore[attr-defined]
            names += Queue.KMS_ATTRIBUTES
        if queue.policy:
            names.append("Policy")
        if queue.redrive_policy:
            names.append("RedrivePolicy")
        self._names = list(dict.fromkeys(names))

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        if name == "Policy" and self._queue.policy:
            value = self._queue.policy
        elif name == "RedrivePolicy" and self._queue.redrive_policy:
            value = json.dumps(self._queue.redrive_policy)
        else:
            value = getattr(self._queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _queue_attributes(self: Queue) -> QueueAttributes:
    return QueueAttributes(self)


@functools.lru_cache
def _region_key(region: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _subscription_key(subscription: Subscription) -> rsa.RSAPrivateKey:
    return _region_key(subscription.topic.sns_backend.region_name)


# message id -> (timestamp, signature) of the envelopes signed last: a message's other subscriber queues get the same
_SIGNED: dict[str, tuple[str, str]] = {}
SIGNED_KEPT = 64


@functools.lru_cache
def _signing_certificate_of(region: str) -> str:
    """The region's certificate, made and published (under the URL moto serves PEMs from) once."""
    key = _region_key(region)
    issuer = [
        NameAttribute(NameOID.COUNTRY_NAME, "US"),
        NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon"),
        NameAttribute(NameOID.COMMON_NAME, "Amazon RSA 2048 M01"),
    ]
    certificate = (
        cryptography.x509.CertificateBuilder()
        .subject_name(Name([NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")]))
        .issuer_name(Name(issuer))
        .public_key(key.public_key())
        .serial_number(cryptography.x509.random_serial_number())
        .not_valid_before(utcnow())
        .not_valid_after(utcnow() + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_name = f"SimpleNotificationService-{str(mock_random.uuid4()).replace('-', '')}.pem"
    sns_backends[DEFAULT_ACCOUNT_ID][region]._message_public_keys[key_name] = certificate.public_bytes(
        serialization.Encoding.PEM
    )
    return f"https://sns.{region}.amazonaws.com/{key_name}"


def _signing_certificate(subscription: Subscription) -> str:
    return _signing_certificate_of(subscription.topic.sns_backend.region_name)


def get_post_data(
    self: Subscription,
    message: str,
    message_id: str,
    subject: str | None,
    message_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """moto's SNS envelope (signature version 2, SHA256 with the subscription's key), its certificate made once."""
    signing_cert_url = _signing_certificate(self)
    if message_id in _SIGNED:  # the same message to another subscriber queue: the same envelope
        timestamp, signature = _SIGNED[message_id]
    else:
        timestamp = iso_8601_datetime_with_milliseconds()
        signed = (
            f"Message\n{message}\nMessageId\n{message_id}\nTimestamp\n{timestamp}\nTopicArn\n{self.topic.arn}\n"
            "Type\nNotification\n"
        )
        signature = base64.b64encode(
            self.private_key().sign(signed.encode("UTF-8"), padding.PKCS1v15(), hashes.SHA256())
        ).decode("utf-8")
        if len(_SIGNED) >= SIGNED_KEPT:
            _SIGNED.clear()
        _SIGNED[message_id] = (timestamp, signature)
    post_data: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": self.topic.arn,
        "Message": message,
        "Timestamp": timestamp,
        "SignatureVersion": "2",
        "Signature": signature,
        "SigningCertURL": signing_cert_url,
        "UnsubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:"
        f"us-east-1:{self.account_id}:{self.topic.name}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
    }
    if subject:
        post_data["Subject"] = subject
    if message_attributes:
        post_data["MessageAttributes"] = message_attributes
    return post_data


def pretty_json(value: Any, level: int = 0) -> str:
    """`json.dumps(value, sort_keys=True, indent=2, separators=(",", ": "))`, the text moto writes an SNS envelope
    as, with each leaf (a string, a number, an empty object) written by the C encoder."""
    if isinstance(value, dict) and value:
        inner = "\n" + "  " * (level + 1)
        items = (f"{json.dumps(str(key))}: {pretty_json(item, level + 1)}" for key, item in sorted(value.items()))
        return "{" + inner + ("," + inner).join(items) + "\n" + "  " * level + "}"
    if isinstance(value, list | tuple) and value:
        inner = "\n" + "  " * (level + 1)
        return (
            "[" + inner + ("," + inner).join(pretty_json(item, level + 1) for item in value) + "\n" + "  " * level + "]"
        )
    return json.dumps(value)


class _JsonWithPrettyEnvelopes:
    """The `json` module as moto's SNS models see it, except that the envelope's pretty text is `pretty_json`'s."""

    def __getattr__(self, name: str) -> Any:
        return getattr(json, name)

    @staticmethod
    def dumps(value: Any, **options: Any) -> str:
        if options == {"sort_keys": True, "indent": 2, "separators": (",", ": ")}:
            return pretty_json(value)
        return json.dumps(value, **options)


_stock_topic_init = Topic.__init__


def _topic_init(self: Topic, *args: Any, **kwargs: Any) -> None:
    _stock_topic_init(self, *args, **kwargs)
    self.sent_notifications = deque(maxlen=SENT_KEPT)  # type: ignore[assignment]


def _message_body(self: Message) -> str:
    return zlib.decompress(self.__dict__["_packed_body"]).decode("utf-8")


def _set_message_body(self: Message, body: str) -> None:
    self.__dict__["_packed_body"] = zlib.compress(body.encode("utf-8"), 1)


def install() -> None:
    """Install the delivery above in this process's moto (the server process only)."""
    sns_models.json = _JsonWithPrettyEnvelopes()  # type: ignore[assignment]
    Queue.attributes = property(_queue_attributes)  # type: ignore[assignment,method-assign]
    Subscription.get_post_data = get_post_data  # type: ignore[method-assign]
    Subscription.private_key = _subscription_key  # type: ignore[assignment,method-assign]
    Topic.__init__ = _topic_init  # type: ignore[method-assign]
    Message.body = property(_message_body, _set_message_body)  # type: ignore[assignment]
