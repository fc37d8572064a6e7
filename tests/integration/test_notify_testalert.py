"""``send_test_alert``: one event straight to each provider, one result per provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_notify_receiver import Receiver

from fluxwatch.notify import NotifyConfigError, NotifySettings, Router, TestResult, send_test_alert


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


@pytest.fixture
async def failing() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        r.default = 500
        yield r


class RecordingWriter:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def create_event(self, body: dict[str, Any]) -> None:
        self.bodies.append(body)


def settings(receiver: Receiver, failing: Receiver) -> NotifySettings:
    return NotifySettings.model_validate(
        {
            "providers": [
                {"name": "ok", "type": "generic", "address": receiver.url},
                {"name": "broken", "type": "generic", "address": failing.url},
                {"name": "events", "type": "kubernetes-event"},
                {"name": "nc", "type": "flux", "address": receiver.url + "/nc"},
                {"name": "no-secret", "type": "slack", "secretRef": {"name": "slack"}},
            ]
        }
    )


async def test_every_provider_reports_in_configuration_order(
    receiver: Receiver, failing: Receiver
) -> None:
    receiver.answer(202, 429)
    writer = RecordingWriter()
    results = await send_test_alert(
        settings(receiver, failing), namespace="fluxwatch", event_writer=writer
    )
    assert [r.provider for r in results] == ["ok", "broken", "events", "nc", "no-secret"]
    ok, broken, events, nc, no_secret = results
    assert (ok.ok, ok.status, ok.error) == (True, 202, None)
    assert (broken.ok, broken.status) == (False, 500)
    assert broken.error is not None and "answered 500" in broken.error
    assert len(failing.requests) == 1, "a test alert is tried once"
    assert (events.ok, events.status, events.error) == (True, None, None)
    assert nc.ok and nc.status == 429
    assert nc.error is not None and nc.error.startswith("deduplicated:")
    assert not no_secret.ok
    assert no_secret.error is not None and "needs the Kubernetes API" in no_secret.error
    assert all(r.latency_s >= 0 for r in results)

    sent = receiver.requests[0].json()
    assert sent["reason"] == "TestAlert"
    assert sent["involvedObject"]["name"] == "fluxwatch-test-alert"
    assert sent["involvedObject"]["namespace"] == "fluxwatch"
    assert "test alert from fluxwatch" in sent["message"]
    (body,) = writer.bodies
    assert body["reason"] == "TestAlert" and body["type"] == "Normal"


async def test_one_provider_by_name(receiver: Receiver, failing: Receiver) -> None:
    results = await send_test_alert(settings(receiver, failing), "ok")
    assert results == [TestResult("ok", True, 200, None, results[0].latency_s)]
    assert failing.requests == []


async def test_an_unknown_provider_name_lists_the_known_ones(
    receiver: Receiver, failing: Receiver
) -> None:
    with pytest.raises(NotifyConfigError, match=r"no provider named 'teams'.*ok, broken"):
        await send_test_alert(settings(receiver, failing), "teams")


async def test_through_a_running_router(receiver: Receiver) -> None:
    router = await Router.from_settings(
        NotifySettings.model_validate(
            {"providers": [{"name": "ok", "type": "generic", "address": receiver.url}]}
        )
    )
    try:
        (result,) = await send_test_alert(router, "ok")
        assert result.ok and result.status == 200
    finally:
        await router.close()
