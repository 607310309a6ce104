"""A partner whose credentials are missing or incomplete is named as such in the pull's summary, without an
exception's class name, and stops no other partner."""

from __future__ import annotations

from support.fakes.world import FakeWorld
from support.ledger import T0


def test_missing_or_incomplete_credentials_are_named_per_partner():
    world = FakeWorld()
    world.partners.endpoints.update({"aliexpress": "http://127.0.0.1:9/ali", "admitad": "http://127.0.0.1:9/adm"})
    world.partners.credentials_by_partner["admitad"] = {"client_id": "id", "client_secret": ""}
    summary = world.puller.pull_all(now=T0, sink=world.sink(T0))
    assert summary.errors == {
        "aliexpress": "partner credentials secret 'aliexpress' is missing or unreadable",
        "admitad": "the credentials of admitad lack client_secret",
    }
