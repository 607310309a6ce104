"""The local moto server's SNS-to-SQS delivery: each message still arrives signed (its signature verifies with the
certificate its SigningCertURL serves), every message under one certificate per subscription, and the queue's
attributes still count what it holds, and a queued message comes back as it was sent."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
import uuid

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from moto.sqs.models import Queue, sqs_backends

from accrual_dev.local.moto_messaging import QueueAttributes

ACCOUNT = "123456789012"
DEAD_LETTERS = f"arn:aws:sqs:us-east-1:{ACCOUNT}:dead-letters"
pytestmark = pytest.mark.only_on("moto", "dynamodb-local", reason="moto serves SNS and SQS there")


@pytest.fixture
def subscribed_queue(aws_endpoint):
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    name = f"delivery-{uuid.uuid4().hex[:8]}"
    topic = sns.create_topic(Name=name)["TopicArn"]
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return sns, sqs, topic, url


def _receive_all(sqs, url):
    received = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        received += batch
    return [json.loads(message["Body"]) for message in received]


def test_every_delivered_message_verifies_with_the_certificate_it_names(subscribed_queue, aws_endpoint):
    sns, sqs, topic, url = subscribed_queue
    for number in range(3):
        sns.publish(TopicArn=topic, Message=json.dumps({"n": number}))
    envelopes = _receive_all(sqs, url)
    assert sorted(json.loads(envelope["Message"])["n"] for envelope in envelopes) == [0, 1, 2]
    assert len({envelope["SigningCertURL"] for envelope in envelopes}) == 1
    pem_name = envelopes[0]["SigningCertURL"].rsplit("/", 1)[1]
    # moto's server picks the service of an unsigned GET by its path: signed for SNS, it reaches SNS's PEMs
    fetch = AWSRequest(method="GET", url=f"{aws_endpoint}/{pem_name}")
    SigV4Auth(boto3.Session().get_credentials(), "sns", "us-east-1").add_auth(fetch)
    with urllib.request.urlopen(urllib.request.Request(fetch.url, headers=dict(fetch.headers)), timeout=10) as answer:
        public_key = x509.load_pem_x509_certificate(answer.read()).public_key()
    for envelope in envelopes:
        signed = "".join(
            f"{name}\n{envelope[name]}\n" for name in ("Message", "MessageId", "Timestamp", "TopicArn", "Type")
        )
        public_key.verify(  # type: ignore[union-attr, call-arg]
            base64.b64decode(envelope["Signature"]),
            signed.encode(),
            padding.PKCS1v15(),  # type: ignore[arg-type]
            hashes.SHA256(),  # type: ignore[arg-type]
        )


def test_the_queue_counts_what_it_holds(subscribed_queue):
    sns, sqs, topic, url = subscribed_queue
    for number in range(25):
        sns.publish(TopicArn=topic, Message=str(number))
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == (
        str(25 - len(received)),
        str(len(received)),
    )


def test_a_queued_message_comes_back_as_sent(subscribed_queue):
    """Queued bodies are kept compressed: what is received is the very text sent, its MD5 that of the text."""
    _, sqs, _, url = subscribed_queue
    bodies = ["кешбэк подтверждён: 12,34 ₽ 🎉", "x" * 20_000, json.dumps({"n": 1, "text": "\u2028 line"}), " "]
    for body in bodies:
        sent = sqs.send_message(QueueUrl=url, MessageBody=body)
        assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()  # noqa: S324 - SQS's own checksum
    received = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        received += batch
    assert sorted(message["Body"] for message in received) == sorted(bodies)
    assert all(message["MD5OfBody"] == hashlib.md5(message["Body"].encode()).hexdigest() for message in received)  # noqa: S324


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        {"KmsMasterKeyId": "alias/aws/sqs", "Policy": json.dumps({"Version": "2012-10-17", "Statement": []})},
        {"RedrivePolicy": json.dumps({"deadLetterTargetArn": DEAD_LETTERS, "maxReceiveCount": 5})},
    ],
)
def test_attributes_computed_when_read_are_those_moto_computes_at_once(attributes):
    sqs_backends[ACCOUNT]["us-east-1"].create_queue("dead-letters")
    name = "q.fifo" if attributes.get("FifoQueue") else "q"
    queue = Queue(name, region="us-east-1", account_id=ACCOUNT, **attributes)
    assert dict(QueueAttributes(queue)) == queue.attributes  # this process's moto is moto as it is


def test_a_message_reaches_every_subscriber_queue_in_the_same_signed_envelope(subscribed_queue):
    """SNS signs a message once, with its region's certificate: each subscriber queue gets the same envelope."""
    sns, sqs, topic, url = subscribed_queue
    other = sqs.create_queue(QueueName=f"other-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": str(n), "Message": f"m{n}"} for n in range(3)])
    first, second = _receive_all(sqs, url), _receive_all(sqs, other)
    assert len(first) == len(second) == 3
    fields = ("MessageId", "Timestamp", "Signature", "SigningCertURL", "Message")
    assert sorted(tuple(envelope[name] for name in fields) for envelope in first) == sorted(
        tuple(envelope[name] for name in fields) for envelope in second
    )
    assert len({envelope["Signature"] for envelope in first}) == 3
