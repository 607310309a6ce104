"""The ministack launcher: started on a free loopback port, answers its health check and boto3, empties on reset,
and is gone once the `with` block ends (the benches and the conformance fixtures rely on all four)."""

from __future__ import annotations

import os

import boto3
import pytest

from accrual_dev.local import ministack
from accrual_dev.local.server import LOCAL_ENVIRONMENT

pytestmark = pytest.mark.skipif(not ministack.available(), reason="ministack is not built (make ministack)")


def test_a_ministack_server_starts_answers_resets_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    with ministack.MinistackServer() as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.health()["services"]["dynamodb"] in ("available", "running")
        for name, value in {**LOCAL_ENVIRONMENT, "AWS_ENDPOINT_URL": server.url}.items():
            monkeypatch.setenv(name, value)
        sqs = boto3.client("sqs")
        sqs.create_queue(QueueName="launcher-probe")
        assert len(sqs.list_queues().get("QueueUrls", [])) == 1
        server.reset()
        assert sqs.list_queues().get("QueueUrls", []) == []
        pid = server.pid
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
