"""fluxwatch's nats provider against a real nats-server: the Event JSON arrives on the subject."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import nats
import pytest

from fluxwatch.notify import (
    EventFactory,
    InvolvedObject,
    MemoryMetrics,
    NotifySettings,
    Router,
)

pytestmark = pytest.mark.e2e

SUBJECT = "fluxwatch.events"
FACTORY = EventFactory("fluxwatch-0")
HR = InvolvedObject.helmrelease("apps", "podinfo", uid="uid-1")


def credentials(tmp_path: Path, user: str, password: str) -> str:
    path = tmp_path / "nats-secret"
    path.mkdir()
    (path / "username").write_text(user)
    (path / "password").write_text(password)
    return str(path)


def nats_settings(address: str, secret_path: str | None, **extra: object) -> NotifySettings:
    provider: dict[str, object] = {
        "name": "bus",
        "type": "nats",
        "address": address,
        "channel": SUBJECT,
        "timeout": "2s",
    }
    if secret_path:
        provider["secretPath"] = secret_path
    return NotifySettings.model_validate(
        {
            "providers": [provider],
            "alerts": [{"name": "all", "providerRef": {"name": "bus"}}],
            **extra,
        }
    )


async def test_event_json_arrives_on_the_subject(
    nats_server: dict[str, str], tmp_path: Path
) -> None:
    """FLUX-FACTS §6: nats publishes the Event JSON on subject = channel."""
    subscriber = await nats.connect(
        nats_server["url"], user=nats_server["user"], password=nats_server["password"]
    )
    try:
        subscription = await subscriber.subscribe(SUBJECT)
        await subscriber.flush()
        router = await Router.from_settings(
            nats_settings(
                nats_server["url"],
                credentials(tmp_path, nats_server["user"], nats_server["password"]),
            )
        )
        events = [
            FACTORY.stuck_detected(HR, age=400, threshold=300, revision="6.5.0"),
            FACTORY.recovery_started(HR, strategy="force-reconcile", attempt=1, max_attempts=3),
        ]
        for event in events:
            router.publish(event)
        await router.close()
        received = [await subscription.next_msg(timeout=5) for _ in events]
        assert [json.loads(m.data) for m in received] == [e.to_dict() for e in events]
        assert isinstance(router.metrics, MemoryMetrics)
        assert dict(router.metrics.counts) == {("bus", "sent"): 2}
    finally:
        await subscriber.close()


async def test_wrong_password_fails_loudly_without_saying_it(
    nats_server: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wr0ng-n4ts-password"
    router = await Router.from_settings(
        nats_settings(nats_server["url"], credentials(tmp_path, "fluxwatch", wrong), maxRetries=0)
    )
    event = FACTORY.recovery_skipped(HR, why="dry run")
    router.publish(event)
    await router.close()
    assert isinstance(router.metrics, MemoryMetrics)
    assert dict(router.metrics.counts) == {("bus", "failed"): 1}
    (failure,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert event.key in failure.getMessage()
    assert "NATS nats://127.0.0.1" in failure.getMessage()
    assert wrong not in caplog.text


async def test_no_server_is_a_failed_delivery(closed_port: int) -> None:
    router = await Router.from_settings(
        nats_settings(f"nats://127.0.0.1:{closed_port}", None, maxRetries=0)
    )
    router.publish(FACTORY.recovery_skipped(HR, why="dry run"))
    await router.close()
    assert isinstance(router.metrics, MemoryMetrics)
    assert dict(router.metrics.counts) == {("bus", "failed"): 1}


async def test_an_event_over_max_payload_arrives_cut_to_fit(
    nats_server: dict[str, str], tmp_path: Path
) -> None:
    """nats-server refuses a message over its max_payload (1 MB by default); the event is
    cut to the limit the server announced, marked as cut, and still delivered once."""
    subscriber = await nats.connect(
        nats_server["url"], user=nats_server["user"], password=nats_server["password"]
    )
    try:
        subscription = await subscriber.subscribe(SUBJECT)
        await subscriber.flush()
        router = await Router.from_settings(
            nats_settings(
                nats_server["url"],
                credentials(tmp_path, nats_server["user"], nats_server["password"]),
            )
        )
        long_hr = InvolvedObject.helmrelease("n" * 63, "r" * 253, uid="uid-long")
        event = FACTORY.recovery_failed(
            long_hr, strategy="rollback", attempt=3, max_attempts=3, error="エラー 🚨\n" * 3000
        ).with_metadata({f"team.example.com/key{i:02}": "値" * 10_000 for i in range(60)})
        assert len(event.to_json()) > subscriber.max_payload
        router.publish(event)
        await router.close()
        message = await subscription.next_msg(timeout=5)
        assert len(message.data) <= subscriber.max_payload
        received = json.loads(message.data)
        assert received["involvedObject"] == event.to_dict()["involvedObject"]
        assert received["metadata"].keys() == event.metadata.keys()
        assert received["metadata"]["team.example.com/key00"].endswith(" … (truncated)")
        assert isinstance(router.metrics, MemoryMetrics)
        assert dict(router.metrics.counts) == {("bus", "sent"): 1}
    finally:
        await subscriber.close()


async def test_an_event_that_cannot_fit_fails_at_once_and_says_why(
    nats_server: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Twenty thousand metadata keys are over max_payload even with every value cut: the
    failure is final (no backoff), counted and logged with the sizes."""
    router = await Router.from_settings(
        nats_settings(
            nats_server["url"],
            credentials(tmp_path, nats_server["user"], nats_server["password"]),
        )
    )
    keys = {f"team.example.com/{i:05}-" + "k" * 40: "v" for i in range(20_000)}
    event = FACTORY.recovery_skipped(HR, why="dry run").with_metadata(keys)
    router.publish(event)
    async with asyncio.timeout(5):
        await router.close()
    assert isinstance(router.metrics, MemoryMetrics)
    assert dict(router.metrics.counts) == {("bus", "failed"): 1}
    (failure,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "over the server's max_payload of 1048576" in failure.getMessage()
