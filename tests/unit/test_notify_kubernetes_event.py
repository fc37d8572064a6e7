"""The kubernetes-event provider: the core/v1 Event body it hands to the kube layer."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from fluxwatch.notify.errors import DeliveryError, NotifyConfigError
from fluxwatch.notify.event import TRUNCATION_MARK, EventFactory, InvolvedObject
from fluxwatch.notify.providers import EventWriter, ProviderDeps, ProviderSettings
from fluxwatch.notify.providers.kubernetes_event import (
    SPAM_BURST,
    EventCorrelator,
    KubernetesEvent,
    RateLimited,
    core_event,
    event_note,
)
from fluxwatch.notify.transport import RetryPolicy, Transport
from fluxwatch.sim.validation import validate as validate_object

T0 = datetime(2026, 3, 1, 12, 0, 5, 123456, tzinfo=UTC)
HR = InvolvedObject.helmrelease("apps", "podinfo", uid="5e6f-uid", resource_version="4711")


class RecordingWriter:
    """Keeps Events as a server would: create stores, patch merges, a deleted one is gone."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []
        self.stored: dict[tuple[str, str], dict[str, Any]] = {}
        self.failures = failures or []

    async def create_event(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.failures:
            raise self.failures.pop(0)
        self.bodies.append(body)
        meta = body["metadata"]
        self.calls.append(("create", meta["name"]))
        self.stored[(meta["namespace"], meta["name"])] = copy.deepcopy(body)
        return copy.deepcopy(body)

    async def patch_event(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any] | None:
        self.calls.append(("patch", name))
        event = self.stored.get((namespace, name))
        if event is None:
            return None
        event.update(patch)
        return copy.deepcopy(event)


def provider(writer: EventWriter | None) -> KubernetesEvent:
    deps = ProviderDeps(Transport(retry=RetryPolicy()), event_writer=writer)
    return KubernetesEvent(ProviderSettings(name="k8s", type="kubernetes-event"), deps)


@pytest.fixture
def factory() -> EventFactory:
    return EventFactory("fluxwatch-7d9f-abcde", now=lambda: T0)


async def test_error_event_becomes_a_warning_on_the_helmrelease(factory: EventFactory) -> None:
    writer = RecordingWriter()
    assert isinstance(writer, EventWriter)
    event = factory.stuck_detected(HR, age=432, threshold=300, revision="6.5.0")
    await provider(writer).post(event)
    (body,) = writer.bodies
    name = body["metadata"].pop("name")
    assert re.fullmatch(r"podinfo\.[0-9a-f]{16,}", name)
    assert body == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "namespace": "apps",
            "annotations": {
                "fluxwatch.io/age": "7m12s",
                "fluxwatch.io/revision": "6.5.0",
                "fluxwatch.io/threshold": "5m0s",
            },
        },
        "involvedObject": {
            "kind": "HelmRelease",
            "namespace": "apps",
            "name": "podinfo",
            "uid": "5e6f-uid",
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "resourceVersion": "4711",
        },
        "reason": "StuckDetected",
        "message": event.message,
        "type": "Warning",
        "source": {"component": "fluxwatch"},
        "reportingComponent": "fluxwatch",
        "reportingInstance": "fluxwatch-7d9f-abcde",
        "firstTimestamp": "2026-03-01T12:00:05Z",
        "lastTimestamp": "2026-03-01T12:00:05Z",
        "count": 1,
    }
    body["metadata"]["name"] = name
    assert validate_object("events", body) == []


def test_the_body_is_one_a_real_api_server_accepts(factory: EventFactory) -> None:
    """kube-apiserver's ValidateEventCreate for core/v1: an Event with eventTime must also
    carry action (and the reporting fields), else 422. The provider writes client-go's legacy
    recorder shape, without eventTime, so none of that applies; the namespaces agree."""
    for event in (
        factory.stuck_detected(HR, age=432, threshold=300, revision="6.5.0"),
        factory.recovery_succeeded(
            HR, strategy="force-reconcile", attempt=1, max_attempts=3, took=12.0
        ),
        factory.leader_restored(
            InvolvedObject.lease("flux-system", "helm-controller-leader-election"),
            holder="hc",
            leaderless_for=60,
        ),
    ):
        body = core_event(event)
        assert "eventTime" not in body and "action" not in body
        assert validate_object("events", body) == []
    # The body as it was before: eventTime without action is what a real server refuses.
    old = core_event(factory.stuck_detected(HR, age=1, threshold=1, revision="1"))
    old["eventTime"] = "2026-03-01T12:00:05.123456Z"
    assert [str(e) for e in validate_object("events", old)] == ["action: Required value"]


def test_an_object_without_uid_is_referenced_without_one() -> None:
    """client-go's ObjectReference leaves unknown fields out (omitempty), never sends ""."""
    event = EventFactory("pod", now=lambda: T0).new(
        InvolvedObject.helmrelease("apps", "podinfo"), "info", "RecoveryStarted", "m", {}
    )
    assert core_event(event)["involvedObject"] == {
        "kind": "HelmRelease",
        "namespace": "apps",
        "name": "podinfo",
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
    }


def test_info_is_normal_and_names_are_unique(factory: EventFactory) -> None:
    event = factory.recovery_started(HR, strategy="force-reconcile", attempt=1, max_attempts=3)
    bodies = [core_event(event) for _ in range(50)]
    assert {b["type"] for b in bodies} == {"Normal"}
    assert len({b["metadata"]["name"] for b in bodies}) == 50


def test_message_is_cut_to_the_api_limit_and_odd_keys_are_not_annotations() -> None:
    event = EventFactory("pod", now=lambda: T0).new(
        HR, "error", "RecoveryFailed", "x" * 5000, {"bad key!": "v", "ok": "v"}
    )
    body = core_event(event, name_ns=255)
    # The limit counts bytes: the mark's ellipsis is three.
    assert len(body["message"].encode()) == 1024
    assert body["metadata"]["name"] == "podinfo.ff"
    assert body["metadata"]["annotations"] == {"fluxwatch.io/ok": "v"}


@pytest.mark.looptime
async def test_a_note_is_cut_in_bytes_between_whole_characters() -> None:
    assert event_note("ü" * 512) == "ü" * 512  # 1024 bytes: it fits
    cut = event_note("ü" * 513)
    assert cut.endswith(TRUNCATION_MARK) and set(cut.removesuffix(TRUNCATION_MARK)) == {"ü"}
    # 1024 - 16 bytes of mark leave 1008: 504 two-byte characters.
    assert len(cut.encode()) == 1024 and cut.count("ü") == 504
    odd = event_note("a" + "ü" * 600)  # the cut falls inside a character: it goes whole
    assert len(odd.encode()) == 1023 and odd.startswith("a" + "ü" * 503 + TRUNCATION_MARK)


@pytest.mark.looptime
async def test_api_failures_are_retried(factory: EventFactory, looptime: float) -> None:
    writer = RecordingWriter([ConnectionError("apiserver gone"), TimeoutError()])
    start = float(looptime)
    await provider(writer).post(
        factory.leader_restored(
            InvolvedObject.lease("flux-system", "helm-controller-leader-election"),
            holder="hc",
            leaderless_for=60,
        )
    )
    assert len(writer.bodies) == 1
    assert looptime - start == 2 + 4


@pytest.mark.looptime
async def test_a_writer_decision_is_final(factory: EventFactory, looptime: float) -> None:
    writer = RecordingWriter([DeliveryError("422 Invalid: message too long", status=422)])
    start = float(looptime)
    with pytest.raises(DeliveryError, match="422 Invalid"):
        await provider(writer).post(factory.recovery_skipped(HR, why="dry run"))
    assert writer.bodies == []
    assert looptime == start


def test_needs_an_event_writer() -> None:
    with pytest.raises(NotifyConfigError, match="needs the Kubernetes API"):
        provider(None)


# -- client-go's EventCorrelator: fold, aggregate, rate-limit ------------------------------


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def clocked(writer: RecordingWriter) -> tuple[KubernetesEvent, Clock]:
    """A provider whose correlator and event times follow one hand-moved clock."""
    clock = Clock(T0.timestamp())
    p = provider(writer)
    p.correlator = EventCorrelator(clock=clock)
    return p, clock


def at(clock: Clock) -> EventFactory:
    return EventFactory("fluxwatch-7d9f-abcde", now=lambda: datetime.fromtimestamp(clock.now, UTC))


async def test_a_repeat_is_folded_into_the_event_it_repeats() -> None:
    """client-go's eventLogger: the same object, type, reason and message again is a
    patch of count, lastTimestamp and message on the first Event, not a new one."""
    writer = RecordingWriter()
    p, clock = clocked(writer)
    for _ in range(3):
        await p.post(at(clock).recovery_skipped(HR, why="dry run"))
        clock.now += 90
    [(first, name), *patches] = writer.calls
    assert first == "create" and patches == [("patch", name)] * 2
    [event] = writer.stored.values()
    assert event["count"] == 3
    assert event["firstTimestamp"] == "2026-03-01T12:00:05Z"
    assert event["lastTimestamp"] == "2026-03-01T12:03:05Z"
    # Another message is another Event; so is the same one on another object.
    await p.post(at(clock).recovery_skipped(HR, why="budget spent"))
    other = InvolvedObject.helmrelease("apps", "other", uid="9-uid")
    await p.post(at(clock).recovery_skipped(other, why="dry run"))
    assert [c for c, _ in writer.calls].count("create") == 3


async def test_a_vanished_event_is_created_again_with_its_count() -> None:
    """Events expire (an hour by default): the patch finds nothing and client-go
    creates the Event anew, count kept."""
    writer = RecordingWriter()
    p, clock = clocked(writer)
    await p.post(at(clock).recovery_skipped(HR, why="dry run"))
    writer.stored.clear()
    clock.now += 3600
    await p.post(at(clock).recovery_skipped(HR, why="dry run"))
    assert [c for c, _ in writer.calls] == ["create", "patch", "create"]
    [event] = writer.stored.values()
    assert event["count"] == 2


async def test_ten_similar_messages_become_one_combined_event() -> None:
    """client-go's EventAggregator: the 10th distinct message with the same reason on one
    object within 10 minutes starts one "(combined from similar events)" Event, and
    later ones fold into it."""
    writer = RecordingWriter()
    p, clock = clocked(writer)
    for age in range(300, 312):
        await p.post(at(clock).stuck_detected(HR, age=age, threshold=300))
        clock.now += 1
    creates = [name for call, name in writer.calls if call == "create"]
    assert len(creates) == 10
    combined = writer.stored[("apps", creates[-1])]
    assert combined["message"].startswith("(combined from similar events): HelmRelease")
    assert combined["count"] == 3
    assert "5m11s" in combined["message"]
    # Past the 10-minute interval the group starts afresh.
    clock.now += 601
    await p.post(at(clock).stuck_detected(HR, age=999, threshold=300))
    assert not writer.bodies[-1]["message"].startswith("(combined")


async def test_each_object_gets_a_burst_of_25_then_one_per_5_minutes() -> None:
    """client-go's EventSourceObjectSpamFilter: a token bucket per source and object,
    burst 25, refilled at 1/300 per second; patches take tokens too."""
    writer = RecordingWriter()
    p, clock = clocked(writer)
    reasons = [f"Reason{i}" for i in range(SPAM_BURST + 1)]
    for reason in reasons[:SPAM_BURST]:
        await p.post(at(clock).new(HR, "info", reason, "m", {}))
    with pytest.raises(RateLimited, match="HelmRelease apps/podinfo not written"):
        await p.post(at(clock).new(HR, "info", reasons[-1], "m", {}))
    other = InvolvedObject.helmrelease("apps", "other", uid="9-uid")
    await p.post(at(clock).new(other, "info", "Reason0", "m", {}))
    clock.now += 299
    with pytest.raises(RateLimited):
        await p.post(at(clock).new(HR, "info", "Reason0", "m", {}))
    clock.now += 1
    await p.post(at(clock).new(HR, "info", "Reason0", "m", {}))
    assert len(writer.calls) == SPAM_BURST + 2


def test_the_defaults_are_client_gos() -> None:
    """tools/record/events_cache.go: defaultSpamBurst 25, defaultSpamQPS 1/300,
    defaultAggregateMaxEvents 10, defaultAggregateIntervalInSeconds 600."""
    c = EventCorrelator()
    assert (c.burst, c.refill_interval) == (25, 300.0)
