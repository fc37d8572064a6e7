"""Events: the Flux eventv1 wire shape, truncation, the dedup key, and the engine's builders."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from fluxwatch.notify.event import (
    MAX_MESSAGE_LENGTH,
    Event,
    EventFactory,
    InvolvedObject,
    Meta,
    Reason,
    Severity,
    controller_of,
    format_duration,
    truncate_message,
)

T0 = datetime(2026, 3, 1, 12, 0, 5, 123456, tzinfo=UTC)
HR = InvolvedObject.helmrelease("apps", "podinfo", uid="5e6f-uid", resource_version="4711")
LEASE = InvolvedObject.lease("flux-system", "helm-controller-leader-election", uid="lease-uid")
OWN_LEASE = InvolvedObject.lease("fluxwatch-system", "fluxwatch-leader-election", uid="own-uid")


@pytest.fixture
def factory() -> EventFactory:
    return EventFactory("fluxwatch-7d9f-abcde", now=lambda: T0)


def test_wire_shape_is_flux_eventv1(factory: EventFactory) -> None:
    """FLUX-FACTS §6: the JSON keys notification-controller accepts, Go's omitempty applied."""
    event = factory.stuck_detected(
        HR, age=432, threshold=300, release="apps-podinfo", helm_version=3, revision="6.5.0"
    )
    assert event.to_dict() == {
        "involvedObject": {
            "kind": "HelmRelease",
            "namespace": "apps",
            "name": "podinfo",
            "uid": "5e6f-uid",
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "resourceVersion": "4711",
        },
        "severity": "error",
        "timestamp": "2026-03-01T12:00:05Z",
        "message": (
            "HelmRelease apps/podinfo has been stuck at Ready=Unknown for 7m12s "
            "(threshold 5m0s) although Helm release apps-podinfo v3 is deployed."
        ),
        "reason": "StuckDetected",
        "metadata": {
            "age": "7m12s",
            "helmVersion": "3",
            "release": "apps-podinfo",
            "revision": "6.5.0",
            "threshold": "5m0s",
        },
        "reportingController": "fluxwatch",
        "reportingInstance": "fluxwatch-7d9f-abcde",
    }
    assert orjson.loads(event.to_json()) == event.to_dict()


def test_empty_fields_are_omitted_like_go() -> None:
    event = Event.new(
        InvolvedObject("HelmRelease", "apps", "podinfo"),
        "info",
        "RecoveryStarted",
        "m",
        instance="",
        timestamp=T0,
    )
    wire = event.to_dict()
    assert wire["involvedObject"] == {"kind": "HelmRelease", "namespace": "apps", "name": "podinfo"}
    assert "metadata" not in wire
    assert "reportingInstance" not in wire


def test_round_trip_through_json(factory: EventFactory) -> None:
    event = factory.recovery_started(HR, strategy="force-reconcile", attempt=1, max_attempts=3)
    parsed = Event.from_dict(orjson.loads(event.to_json()))
    assert parsed.to_dict() == event.to_dict()


def test_message_is_truncated_to_39000_characters() -> None:
    """FLUX-FACTS §6: notification-controller takes at most 39,000 characters."""
    event = Event.new(HR, Severity.INFO, "X", "x" * 50_000, timestamp=T0)
    assert len(event.message) == MAX_MESSAGE_LENGTH
    assert event.message.endswith("(truncated)")
    short = Event.new(HR, Severity.INFO, "X", "y" * MAX_MESSAGE_LENGTH, timestamp=T0)
    assert short.message == "y" * MAX_MESSAGE_LENGTH


@pytest.mark.parametrize("limit", [0, 5, 14, 15, 100])
def test_truncation_never_exceeds_the_limit(limit: int) -> None:
    assert len(truncate_message("z" * 1000, limit)) == limit


def test_event_is_immutable_and_owns_its_maps() -> None:
    metadata = {"revision": "1.0.0"}
    labels = {"team": "a"}
    event = Event.new(HR, "info", "X", "m", metadata=metadata, labels=labels, timestamp=T0)
    metadata["revision"] = "2.0.0"
    labels["team"] = "b"
    assert event.metadata["revision"] == "1.0.0"
    assert event.labels["team"] == "a"
    with pytest.raises(TypeError):
        event.metadata["x"] = "y"  # type: ignore[index]


def test_severity_is_validated() -> None:
    with pytest.raises(ValueError):
        Event.new(HR, "warning", "X", "m")


def test_key_follows_object_reason_message_and_revision(factory: EventFactory) -> None:
    """The dedup key: notification-controller's components plus the reason."""
    base = Event.new(HR, "error", "StuckDetected", "m", metadata={"revision": "1"}, timestamp=T0)
    later = Event.new(
        HR,
        "error",
        "StuckDetected",
        "m",
        metadata={"revision": "1", "age": "9m"},
        instance="other-pod",
        timestamp=datetime(2030, 1, 1, tzinfo=UTC),
    )
    assert base.key == later.key
    assert len(base.key) == 64
    variants = [
        Event.new(HR, "error", "RecoveryFailed", "m", metadata={"revision": "1"}),
        Event.new(HR, "error", "StuckDetected", "n", metadata={"revision": "1"}),
        Event.new(HR, "error", "StuckDetected", "m", metadata={"revision": "2"}),
        Event.new(
            InvolvedObject.helmrelease("other", "podinfo"),
            "error",
            "StuckDetected",
            "m",
            metadata={"revision": "1"},
        ),
    ]
    assert len({base.key, *(v.key for v in variants)}) == 5


def test_alert_metadata_never_overrides_the_events_own() -> None:
    event = Event.new(HR, "info", "X", "m", metadata={"revision": "1"}, timestamp=T0)
    enhanced = event.with_metadata({"revision": "forged", "cluster": "prod"})
    assert dict(enhanced.metadata) == {"revision": "1", "cluster": "prod"}
    assert event.with_metadata({}) is event


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (1, "1s"),
        (59.6, "1m0s"),
        (300, "5m0s"),
        (432, "7m12s"),
        (3600, "1h0m0s"),
        (3723, "1h2m3s"),
    ],
)
def test_durations_are_written_the_go_way(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("name", "controller"),
    [
        ("helm-controller-leader-election", "helm-controller"),
        ("kustomize-controller-leader-election-0a1b2c3d", "kustomize-controller"),
    ],
)
def test_controller_name_from_lease(name: str, controller: str) -> None:
    """FLUX-FACTS §5: <controller>-leader-election, with an 8-hex suffix when sharded."""
    assert controller_of(InvolvedObject.lease("flux-system", name)) == controller


def _all_builders(f: EventFactory) -> list[Event]:
    return [
        f.stuck_detected(HR, age=400, threshold=300, note="It was a leader-change suspect."),
        f.casualty_detected(
            HR,
            ready_reason="UpgradeFailed",
            ready_message="Helm upgrade failed: context deadline exceeded",
            failed_for=420,
            stalled=True,
            failures=4,
            reset=True,
        ),
        f.recovery_started(HR, strategy="force-reconcile", attempt=1, max_attempts=3),
        f.recovery_succeeded(
            HR, strategy="force-reconcile", attempt=1, max_attempts=3, took=41, revision="6.5.0"
        ),
        f.recovery_failed(
            HR,
            strategy="force-reconcile",
            attempt=1,
            max_attempts=3,
            error="Ready stayed Unknown for 2m0s",
            next_strategy="suspend-toggle",
        ),
        f.recovery_skipped(HR, why="dry run is on"),
        f.suspend_resumed(HR, marker="2026-11-26T10:00:00Z"),
        f.guardrail_tripped(
            InvolvedObject("Deployment", "flux-system", "fluxwatch", api_version="apps/v1"),
            guardrail="batch",
            detail="14 HelmReleases are stuck at once, more than maxBatch 10",
            releases=[f"apps/r{i}" for i in range(14)],
        ),
        f.leader_changed(LEASE, previous="hc-a_1", holder="hc-b_2", transitions=7),
        f.leader_flapping(LEASE, changes=5, window=600),
        f.controller_leaderless(LEASE, leaderless_for=70, last_holder="hc-b_2", lease_duration=35),
        f.leader_restored(LEASE, holder="hc-c_3", leaderless_for=90),
        f.incident_approved(
            OWN_LEASE,
            incident="inc-20260127t184512",
            by="alice@example.com",
            releases=["apps/a", "infra/b"],
            reason="API blip at 18:45, all deployed.",
        ),
    ]


def test_one_builder_per_engine_reason(factory: EventFactory) -> None:
    events = _all_builders(factory)
    assert [e.reason for e in events] == [str(r) for r in Reason]
    severities = {e.reason: e.severity for e in events}
    assert severities == {
        "StuckDetected": Severity.ERROR,
        "CasualtyDetected": Severity.ERROR,
        "RecoveryStarted": Severity.INFO,
        "RecoverySucceeded": Severity.INFO,
        "RecoveryFailed": Severity.ERROR,
        "RecoverySkipped": Severity.ERROR,
        "SuspendResumed": Severity.INFO,
        "GuardrailTripped": Severity.ERROR,
        "LeaderChanged": Severity.INFO,
        "LeaderFlapping": Severity.ERROR,
        "ControllerLeaderless": Severity.ERROR,
        "LeaderRestored": Severity.INFO,
        "IncidentApproved": Severity.INFO,
    }
    for event in events:
        assert event.reporting_controller == "fluxwatch"
        assert event.reporting_instance == "fluxwatch-7d9f-abcde"
        assert event.timestamp == T0
        assert event.message.endswith("."), event.message
        assert "" not in event.metadata.values()


def test_messages_name_the_object_and_what_fluxwatch_did(factory: EventFactory) -> None:
    (
        stuck,
        casualty,
        started,
        succeeded,
        failed,
        skipped,
        resumed,
        guard,
        changed,
        flapping,
        leaderless,
        restored,
        approved,
    ) = _all_builders(factory)
    assert "apps/podinfo" in stuck.message and "It was a leader-change suspect." in stuck.message
    assert "apps/podinfo failed during an incident" in casualty.message
    assert "recovering HelmRelease apps/podinfo with strategy force-reconcile" in started.message
    assert "(attempt 1 of 3)" in started.message
    assert succeeded.message.startswith("HelmRelease apps/podinfo is Ready again")
    assert succeeded.metadata[Meta.DURATION] == "41s"
    assert "will try strategy suspend-toggle next" in failed.message
    assert "did not recover stuck HelmRelease apps/podinfo: dry run is on" in skipped.message
    assert "resumed HelmRelease apps/podinfo: its own suspend-toggle" in resumed.message
    assert "refused to recover 14 stuck HelmReleases (batch guardrail)" in guard.message
    assert "apps/r0" in guard.message and "apps/r13" in guard.message
    assert "from hc-a_1 to hc-b_2 (transition 7)" in changed.message
    assert "helm-controller leader changed 5 times in 10m0s" in flapping.message
    assert "no leader for 1m10s" in leaderless.message
    assert "has a leader again, hc-c_3, after 1m30s" in restored.message
    assert approved.message == (
        "alice@example.com approved the recovery of incident inc-20260127t184512: fluxwatch "
        "recovers its 2 stuck HelmReleases within its recovery budget, dependencies first. "
        "Reason given: API blip at 18:45, all deployed. Stuck: apps/a, infra/b."
    )


def test_an_approval_event_names_incident_and_approver_never_a_token(
    factory: EventFactory,
) -> None:
    """The approval's token only counts it once: it is no one's business downstream."""
    event = factory.incident_approved(
        OWN_LEASE, incident="inc-20260127t184512", by="system:serviceaccount:ops:bot", releases=[]
    )
    assert dict(event.metadata) == {
        "incident": "inc-20260127t184512",
        "approvedBy": "system:serviceaccount:ops:bot",
        "count": "0",
    }
    assert event.involved_object == OWN_LEASE
    assert event.message.endswith("within its recovery budget, dependencies first.")
    assert "token" not in event.to_json().decode().lower()


def test_last_attempt_failure_says_a_person_is_needed(factory: EventFactory) -> None:
    event = factory.recovery_failed(
        HR, strategy="status-correct", attempt=3, max_attempts=3, error="409 Conflict"
    )
    assert event.message.endswith("fluxwatch has given up on it; it needs a person.")


def test_long_name_lists_are_shortened(factory: EventFactory) -> None:
    event = factory.leader_changed(
        LEASE, previous="a", holder="b", suspects=[f"ns/hr{i}" for i in range(25)]
    )
    assert "25 HelmReleases at Ready=Unknown" in event.message
    assert "ns/hr19 and 5 more." in event.message
    assert "ns/hr20" not in event.message


@pytest.mark.parametrize(
    ("stalled", "reset", "tail"),
    [
        (
            True,
            True,
            " helm-controller has spent its remediation retries (Stalled, RetriesExceeded) "
            "and tries no more. fluxwatch resets its failure counts as `flux reconcile hr "
            "{name} -n {ns} --reset` does, so helm-controller tries again.",
        ),
        (
            False,
            False,
            " Once the cause is gone, `flux reconcile hr {name} -n {ns} --reset` lets "
            "helm-controller try again (fluxwatch does it itself with recovery.reset: true).",
        ),
    ],
)
def test_a_casualty_says_what_failed_and_who_resets_it(
    factory: EventFactory, stalled: bool, reset: bool, tail: str
) -> None:
    event = factory.casualty_detected(
        HR,
        ready_reason="InstallFailed",
        ready_message="Helm install failed for release apps/podinfo with chart podinfo@6.5.0: "
        "context deadline exceeded",
        failed_for=125,
        stalled=stalled,
        failures=1,
        reset=reset,
        release="podinfo",
        revision="6.5.0",
    )
    assert event.message == (
        f"HelmRelease {HR.ref} failed during an incident and has been Ready=False "
        "(InstallFailed) for 2m5s: Helm install failed for release apps/podinfo with chart "
        "podinfo@6.5.0: context deadline exceeded." + tail.format(name=HR.name, ns=HR.namespace)
    )
    assert event.severity is Severity.ERROR
    assert dict(event.metadata) == {
        "age": "2m5s",
        "failures": "1",
        "release": "podinfo",
        "revision": "6.5.0",
    }


def test_a_controller_left_leaderless_by_a_clean_release_says_who_released_it(
    factory: EventFactory,
) -> None:
    """Its Lease's holder is empty: "last renewed by nobody" would hide who stopped."""
    event = factory.controller_leaderless(
        LEASE, leaderless_for=61, last_holder="hc-b_2", lease_duration=1, released=True
    )
    assert "was released by hc-b_2 and no pod has taken it since" in event.message
    assert "renewed by nobody" not in event.message
    expired = factory.controller_leaderless(
        LEASE, leaderless_for=61, last_holder="hc-b_2", lease_duration=35
    )
    assert "was last renewed by hc-b_2 and expired after 35s" in expired.message
