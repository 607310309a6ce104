"""Endpoints as boto3 resolves them: AWS_ENDPOINT_URL_<SERVICE> for one service, else AWS_ENDPOINT_URL for every
service, else AWS itself; the same for boto3 clients and PynamoDB models (DynamoDB Local beside moto relies on it)."""

from __future__ import annotations

import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from accrual.adapters.pynamo import bind_model
from accrual.settings import Settings

GLOBAL = "http://127.0.0.1:4001"
DYNAMODB = "http://127.0.0.1:4002"
SQS = "http://127.0.0.1:4003"


class Shopper(Model):
    class Meta:
        table_name = "unbound"

    user_id = UnicodeAttribute(hash_key=True)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "AWS_CONFIG_FILE",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")  # a developer's ~/.aws/config must not answer
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def pynamo_endpoint(settings: Settings) -> str:
    bind_model(Shopper, "shoppers", settings)
    return Shopper._get_connection().connection.client.meta.endpoint_url


def test_a_dynamodb_endpoint_of_its_own_wins_over_the_global_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", GLOBAL)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", DYNAMODB)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", SQS)
    settings = Settings()

    assert settings.dynamodb_host == DYNAMODB
    assert pynamo_endpoint(settings) == DYNAMODB
    assert settings.client("dynamodb").meta.endpoint_url == DYNAMODB
    assert settings.client("sqs").meta.endpoint_url == SQS
    assert settings.client("s3").meta.endpoint_url == GLOBAL


def test_the_global_endpoint_serves_every_service_without_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", GLOBAL)
    settings = Settings()

    assert settings.dynamodb_host == GLOBAL
    assert pynamo_endpoint(settings) == GLOBAL
    assert settings.client("dynamodb").meta.endpoint_url == GLOBAL


def test_no_endpoint_is_aws_itself() -> None:
    settings = Settings()

    assert settings.dynamodb_host is None
    assert pynamo_endpoint(settings) == "https://dynamodb.eu-west-1.amazonaws.com"


def test_configured_endpoints_can_be_ignored_as_boto3_ignores_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", GLOBAL)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", DYNAMODB)
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    settings = Settings()

    assert settings.dynamodb_host is None
    assert pynamo_endpoint(settings) == settings.client("dynamodb").meta.endpoint_url
    assert settings.client("dynamodb").meta.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"
