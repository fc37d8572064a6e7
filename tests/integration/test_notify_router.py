"""The router over real HTTP: routing, the dedup window, retries, full queues, shutdown, metrics.

Waits run on looptime's fake clock where they matter, so a minute of
backoff takes no real time and the assertions can say exactly how long.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from test_notify_receiver import Receiver

from fluxwatch.notify import (
    Event,
    EventFactory,
    InvolvedObject,
    MemoryMetrics,
    NotifySettings,
    PrometheusMetrics,
    Router,
)
from fluxwatch.notify.errors import NotifyTaskDied

FACTORY = EventFactory("fluxwatch-0")
LEASE = InvolvedObject.lease("flux-system", "helm-controller-leader-election")


def hr_event(i: int = 0, *, severity: str = "info") -> Event:
    hr = InvolvedObject.helmrelease("apps", f"hr-{i}", uid=f"uid-{i}")
    if severity == "error":
        return FACTORY.recovery_skipped(hr, why="dry run is on")
    return FACTORY.recovery_started(hr, strategy="force-reconcile", attempt=1, max_attempts=3)


def generic(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "generic", "address": url, **extra}


def alert(name: str, provider: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "providerRef": {"name": provider}, **extra}


async def start(
    providers: list[dict[str, Any]],
    alerts: list[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> Router:
    settings = {
        "providers": providers,
        "alerts": alerts
        if alerts is not None
        else [alert(p["name"], p["name"]) for p in providers],
    }
    settings.update({k: v for k, v in kwargs.items() if k in NotifySettings.model_fields})
    extra = {k: v for k, v in kwargs.items() if k not in NotifySettings.model_fields}
    return await Router.from_settings(NotifySettings.model_validate(settings), **extra)


def counts(router: Router) -> dict[tuple[str, str], int]:
    assert isinstance(router.metrics, MemoryMetrics)
    return dict(router.metrics.counts)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r
        if r.hold is not None:
            r.hold.set()


@pytest.fixture
async def other() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


async def test_publish_is_a_plain_call_that_returns_at_once(receiver: Receiver) -> None:
    assert not inspect.iscoroutinefunction(Router.publish)
    receiver.hold = asyncio.Event()
    router = await start([generic("a", receiver.url)])
    try:
        router.publish(hr_event())
        # The receiver holds the request; publish has returned all the same.
        assert router.queue_depth("a") == 1
        receiver.hold.set()
        await router.flush()
        assert counts(router) == {("a", "sent"): 1}
    finally:
        await router.close()


async def test_alerts_route_events_to_their_providers(receiver: Receiver, other: Receiver) -> None:
    router = await start(
        [generic("all", receiver.url), generic("leases", other.url)],
        [
            alert("everything", "all", eventMetadata={"cluster": "prod"}),
            alert(
                "leader-errors",
                "leases",
                eventSeverity="error",
                eventSources=[{"kind": "Lease", "name": "*-leader-election", "namespace": "*"}],
            ),
        ],
    )
    try:
        router.publish(hr_event())
        router.publish(FACTORY.leader_flapping(LEASE, changes=5, window=600))
        router.publish(FACTORY.leader_changed(LEASE, previous="a", holder="b"))
        await router.flush()
        assert [r.json()["reason"] for r in receiver.requests] == [
            "RecoveryStarted",
            "LeaderFlapping",
            "LeaderChanged",
        ]
        assert receiver.requests[0].json()["metadata"]["cluster"] == "prod"
        assert [r.json()["reason"] for r in other.requests] == ["LeaderFlapping"]
        assert "cluster" not in other.requests[0].json()["metadata"]
    finally:
        await router.close()


@pytest.mark.looptime
async def test_dedup_window_is_five_minutes_of_loop_time(
    receiver: Receiver, looptime: float
) -> None:
    """FLUX-FACTS §6: one event per key per --rate-limit-interval (5m)."""
    router = await start([generic("a", receiver.url)])
    try:
        event = hr_event()
        router.publish(event)
        await asyncio.sleep(299)
        router.publish(event)
        router.publish(hr_event(1))
        await router.flush()
        await asyncio.sleep(1)
        router.publish(event)
        await router.flush()
        assert [r.json()["involvedObject"]["name"] for r in receiver.requests] == [
            "hr-0",
            "hr-1",
            "hr-0",
        ]
        assert counts(router) == {("a", "sent"): 3, ("a", "deduplicated"): 1}
    finally:
        await router.close()


@pytest.mark.looptime
async def test_503s_are_retried_with_backoff_and_the_alert_arrives_once(
    receiver: Receiver, looptime: float
) -> None:
    router = await start([generic("a", receiver.url)])
    try:
        receiver.answer(503, 503, 503)
        start_time = float(looptime)
        router.publish(hr_event())
        await router.flush()
        assert looptime - start_time == 2 + 4 + 8
        assert [r.status for r in receiver.requests] == [503, 503, 503, 200]
        assert len(receiver.delivered) == 1
        assert counts(router) == {("a", "sent"): 1}
    finally:
        await router.close()


@pytest.mark.looptime
async def test_receiver_in_maintenance_for_a_minute_gets_the_alert_once(
    receiver: Receiver, looptime: float
) -> None:
    """A 503 with Retry-After (an ingress maintenance page) stretches the waits to bridge it."""
    loop = asyncio.get_running_loop()
    back_at = loop.time() + 60

    async def maintenance(request: web.Request) -> tuple[int, dict[str, str], bytes] | None:
        if loop.time() < back_at:
            return 503, {"Retry-After": "30"}, b"down for maintenance"
        return None

    receiver.on_request = maintenance
    router = await start([generic("a", receiver.url)])
    try:
        start_time = float(looptime)
        router.publish(hr_event())
        await router.flush()
        assert looptime - start_time == 60
        assert [r.status for r in receiver.requests] == [503, 503, 200]
        assert len(receiver.delivered) == 1
    finally:
        await router.close()


@pytest.mark.looptime
async def test_receiver_down_then_back_gets_the_alert_once(
    receiver: Receiver, looptime: float
) -> None:
    router = await start([generic("a", receiver.url)])
    try:
        port = receiver.port
        await receiver.stop()
        start_time = float(looptime)
        router.publish(hr_event())
        await asyncio.sleep(5)
        back = await Receiver(port=port).start()
        try:
            await router.flush()
            # Refused at 0s and 2s, taken at 6s (waits of 2s and 4s).
            assert looptime - start_time == 6
            assert len(back.delivered) == 1
            assert counts(router) == {("a", "sent"): 1}
        finally:
            await back.stop()
    finally:
        await router.close()


@pytest.mark.looptime
async def test_a_final_failure_is_counted_and_logged_with_the_key(
    receiver: Receiver, looptime: float, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.default = 500
    router = await start([generic("a", receiver.url)])
    try:
        event = hr_event()
        start_time = float(looptime)
        router.publish(event)
        await router.flush()
        assert looptime - start_time == 2 + 4 + 8 + 16
        assert len(receiver.requests) == 5
        assert counts(router) == {("a", "failed"): 1}
        (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert event.key in record.getMessage()
        assert "answered 500" in record.getMessage()
        assert "(after 5 attempts)" in record.getMessage()
        assert record.event_key == event.key  # type: ignore[attr-defined]
        assert record.provider == "a"  # type: ignore[attr-defined]
    finally:
        await router.close()


async def test_a_refused_payload_is_not_retried_and_is_logged_with_the_reason(
    receiver: Receiver, looptime: float, caplog: pytest.LogCaptureFixture
) -> None:
    # Discord's answer to an embed over its limits: a 4xx is final, so one
    # request, no backoff, and the receiver's own reason in the error line.
    body = b'{"code": 50035, "errors": {"embeds": {}}, "message": "Invalid Form Body"}'
    receiver.default = (400, {"Content-Type": "application/json"}, body)
    router = await start([generic("a", receiver.url)])
    try:
        event = hr_event()
        start_time = float(looptime)
        router.publish(event)
        await router.flush()
        assert looptime - start_time < 1  # no backoff: a 4xx is not retried
        assert len(receiver.requests) == 1
        assert counts(router) == {("a", "failed"): 1}
        (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert "notification to a failed" in record.getMessage()
        assert "answered 400" in record.getMessage()
        assert "Invalid Form Body" in record.getMessage()
        assert record.provider == "a"  # type: ignore[attr-defined]
        assert record.event_key == event.key  # type: ignore[attr-defined]
    finally:
        await router.close()


async def test_a_full_queue_drops_counts_and_logs(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.hold = asyncio.Event()
    router = await start([generic("a", receiver.url)], queue_size=2)
    try:
        events = [hr_event(i) for i in range(5)]
        for event in events:
            router.publish(event)
        assert counts(router) == {("a", "dropped"): 3}
        dropped = [r for r in caplog.records if "queue is full" in r.getMessage()]
        assert len(dropped) == 3
        for record, event in zip(dropped, events[2:], strict=True):
            assert record.levelno == logging.WARNING
            assert event.key in record.getMessage()
        receiver.hold.set()
        await router.flush()
        assert counts(router) == {("a", "dropped"): 3, ("a", "sent"): 2}
    finally:
        await router.close()


async def test_close_flushes_the_queues(receiver: Receiver) -> None:
    router = await start([generic("a", receiver.url)])
    for i in range(5):
        router.publish(hr_event(i))
    await router.close(timeout=5)
    assert len(receiver.delivered) == 5
    assert counts(router) == {("a", "sent"): 5}


@pytest.mark.looptime
@pytest.mark.parametrize("concurrency", [1, 4])
async def test_close_gives_up_at_its_deadline_and_says_what_was_lost(
    receiver: Receiver, looptime: float, caplog: pytest.LogCaptureFixture, concurrency: int
) -> None:
    """The second event waits behind the first: in the queue with one worker, or behind
    the first's delivery to the same object with four. Both ways it is dropped, and said so,
    as not started."""
    receiver.hold = asyncio.Event()
    router = await start([generic("a", receiver.url, timeout="1m")], concurrency=concurrency)
    first, second = hr_event(0), hr_event(0, severity="error")
    router.publish(first)
    router.publish(second)
    start_time = float(looptime)
    await router.close(timeout=3)
    assert looptime - start_time == 3
    assert counts(router) == {("a", "dropped"): 2}
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("shutdown interrupted" in m and first.key in m for m in messages)
    assert any("shutdown came first" in m and second.key in m for m in messages)
    router.publish(hr_event(2))
    assert counts(router)["a", "dropped"] == 3
    assert "shutting down" in caplog.records[-1].getMessage()


async def test_one_objects_events_keep_their_order_while_others_overtake(
    receiver: Receiver,
) -> None:
    """With requests in flight side by side, a slow delivery holds back only the later
    events of its own object: hr-1's event arrives first, hr-0's two in published order."""
    slow = asyncio.Event()
    arrivals: list[tuple[str, str]] = []

    async def hold_hr0(request: web.Request) -> None:
        doc = await request.json()
        arrivals.append((doc["involvedObject"]["name"], doc["reason"]))
        if doc["involvedObject"]["name"] == "hr-0":
            await slow.wait()
        return None

    receiver.on_request = hold_hr0
    router = await start([generic("a", receiver.url)])
    try:
        first, other, second = hr_event(0), hr_event(1), hr_event(0, severity="error")
        for event in (first, other, second):
            router.publish(event)
        await receiver.wait_for(1)
        await asyncio.sleep(0.2)  # room for hr-0's second event to overtake, were it allowed
        assert sorted(arrivals) == sorted([("hr-0", first.reason), ("hr-1", other.reason)])
        assert [r.json()["involvedObject"]["name"] for r in receiver.requests] == ["hr-1"]
        slow.set()
        await router.flush()
        arrived = [
            (r.json()["involvedObject"]["name"], r.json()["reason"]) for r in receiver.requests
        ]
        assert arrived == [
            ("hr-1", other.reason),
            ("hr-0", first.reason),
            ("hr-0", second.reason),
        ]
        assert counts(router) == {("a", "sent"): 3}
    finally:
        slow.set()
        await router.close()


async def test_concurrency_caps_the_requests_in_flight(receiver: Receiver) -> None:
    in_flight = 0
    release = asyncio.Event()

    async def hold(request: web.Request) -> None:
        nonlocal in_flight
        in_flight += 1
        await release.wait()
        return None

    receiver.on_request = hold
    router = await start([generic("a", receiver.url)], concurrency=3)
    try:
        for i in range(10):
            router.publish(hr_event(i))
        for _ in range(100):
            if in_flight == 3:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # a fourth request would have arrived by now
        assert in_flight == 3
        assert router.queue_depth("a") == 7
        release.set()
        await router.flush()
        assert len(receiver.delivered) == 10
        assert counts(router) == {("a", "sent"): 10}
    finally:
        release.set()
        await router.close()


async def test_an_unbuildable_provider_fails_its_events_loudly(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    router = await start(
        [
            generic("ok", receiver.url),
            {"name": "slack", "type": "slack", "secretRef": {"name": "slack-webhook"}},
        ]
    )
    try:
        assert "needs the Kubernetes API" in router.problems["slack"]
        event = hr_event()
        router.publish(event)
        await router.flush()
        assert counts(router) == {("ok", "sent"): 1, ("slack", "failed"): 1}
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any("provider slack (type slack) is unavailable" in m for m in errors)
        assert any("unavailable" in m and event.key in m for m in errors)
    finally:
        await router.close()


async def test_flux_provider_counts_429_as_deduplicated(receiver: Receiver) -> None:
    """FLUX-FACTS §6: notification-controller's 429 is a duplicate, not a failure."""
    receiver.answer(202, 429)
    router = await start(
        [{"name": "nc", "type": "flux", "address": receiver.url}],
        [alert("nc", "nc", eventSources=[{"kind": "HelmRelease", "name": "*", "namespace": "*"}])],
    )
    try:
        router.publish(hr_event(0))
        router.publish(hr_event(1))
        await router.flush()
        assert [r.status for r in receiver.requests] == [202, 429]
        assert counts(router) == {("nc", "sent"): 1, ("nc", "deduplicated"): 1}
    finally:
        await router.close()


async def test_suspended_providers_and_alerts_are_left_out(receiver: Receiver) -> None:
    router = await start(
        [generic("a", receiver.url), generic("b", receiver.url, suspend=True)],
        [alert("x", "a", suspend=True), alert("y", "b")],
    )
    try:
        assert list(router.providers) == ["a"]
        assert router.rules == ()
    finally:
        await router.close()


async def test_prometheus_metrics(receiver: Receiver) -> None:
    registry = CollectorRegistry()
    receiver.answer(200, 404)
    router = await start([generic("a", receiver.url)], metrics=PrometheusMetrics(registry))
    try:

        def sample(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(name, {"provider": "a", **labels})

        assert sample("fluxwatch_notifications_total", result="failed") == 0
        router.publish(hr_event(0))
        router.publish(hr_event(1))
        router.publish(hr_event(1))
        await router.flush()
        assert sample("fluxwatch_notifications_total", result="sent") == 1
        assert sample("fluxwatch_notifications_total", result="failed") == 1
        assert sample("fluxwatch_notifications_total", result="deduplicated") == 1
        assert sample("fluxwatch_notification_duration_seconds_count") == 2
        assert sample("fluxwatch_notification_queue_depth") == 0
    finally:
        await router.close()


class BrokenMetrics(MemoryMetrics):
    """A bug outside any provider: counting a result raises, and ends the worker."""

    def delivered(self, provider: str, result: str) -> None:
        raise RuntimeError("the metrics broke")


async def test_a_dead_worker_is_logged_with_its_traceback_and_supervise_raises(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    router = await start([generic("a", receiver.url)], metrics=BrokenMetrics(), concurrency=1)
    try:
        supervised = asyncio.create_task(router.supervise())
        await asyncio.sleep(0)
        assert not supervised.done()
        router.publish(hr_event(0))
        with pytest.raises(NotifyTaskDied, match=r"notify:a:0 died: RuntimeError"):
            await asyncio.wait_for(supervised, 5)
        (record,) = [r for r in caplog.records if "notification task" in r.getMessage()]
        assert record.levelno == logging.ERROR
        assert "stopping fluxwatch" in record.getMessage()
        assert "Traceback" in record.getMessage()
        assert 'raise RuntimeError("the metrics broke")' in record.getMessage()
    finally:
        await router.close(timeout=1)


async def test_close_is_not_a_death(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    router = await start([generic("a", receiver.url)])
    supervised = asyncio.create_task(router.supervise())
    await router.close()
    await asyncio.sleep(0)
    assert not supervised.done()
    supervised.cancel()
    assert not [r for r in caplog.records if "notification task" in r.getMessage()]
