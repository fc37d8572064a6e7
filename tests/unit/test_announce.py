"""The engine's Announcer worded as Flux-shaped Events: each call, the Event people get.

The engine reports in its own terms (a view, a strategy, an attempt, an error);
``EventAnnouncer`` owns the reason, severity, message and metadata. These are the
alerts' exact words and keys, as receivers and alert rules (``eventMetadata``,
Alertmanager labels, Flux's dedup key on ``revision``) read them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine_objects import T0, stuck_obj

from fluxwatch.announce import EventAnnouncer
from fluxwatch.engine.recovery import Announcer
from fluxwatch.kube.helmrelease import HRView, hr_view
from fluxwatch.notify.event import Event, EventFactory, Meta

LABELS = {
    "kustomize.toolkit.fluxcd.io/name": "bootstrap-kit",
    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
}
INVOLVED = {
    "apiVersion": "helm.toolkit.fluxcd.io/v2",
    "kind": "HelmRelease",
    "name": "bp-vpa",
    "namespace": "flux-system",
    "resourceVersion": "1848390",
    "uid": "uid-flux-system-bp-vpa",
}


def announced(call: str, view: HRView | None = None, **facts: Any) -> Event:
    """The one Event an ``Announcer`` call publishes."""
    published: list[Event] = []
    factory = EventFactory("fluxwatch-0", now=lambda: datetime.fromtimestamp(T0 + 330, UTC))
    announcer: Announcer = EventAnnouncer(published.append, factory)
    getattr(announcer, call)(view if view is not None else hr_view(stuck_obj()), **facts)
    assert len(published) == 1
    event = published[0]
    assert event.involved_object.to_dict() == INVOLVED
    assert dict(event.labels) == LABELS  # alert rules' matchLabels read them
    return event


def test_stuck_detected_names_the_deployed_helm_release_and_the_suspicion() -> None:
    event = announced(
        "stuck_detected",
        age=330,
        threshold=300,
        suspicion="helm-controller changed leader: a -> b",
    )
    assert event.to_dict() == {
        "involvedObject": INVOLVED,
        "severity": "error",
        "timestamp": "2026-05-05T07:50:28Z",
        "message": "HelmRelease flux-system/bp-vpa has been stuck at Ready=Unknown for 5m30s "
        "(threshold 5m0s) although Helm release vpa-bp-vpa v1 is deployed. "
        "Suspect: helm-controller changed leader: a -> b.",
        "reason": "StuckDetected",
        "metadata": {
            "age": "5m30s",
            "helmVersion": "1",
            "release": "vpa-bp-vpa",
            "revision": "4.7.1",
            "threshold": "5m0s",
        },
        "reportingController": "fluxwatch",
        "reportingInstance": "fluxwatch-0",
    }


def test_stuck_detected_without_suspicion_or_history() -> None:
    obj = stuck_obj()
    obj["status"]["history"] = []
    event = announced("stuck_detected", hr_view(obj), age=330, threshold=300, suspicion=None)
    assert event.message == (
        "HelmRelease flux-system/bp-vpa has been stuck at Ready=Unknown for 5m30s "
        "(threshold 5m0s) although its Helm release is deployed."
    )
    assert dict(event.metadata) == {
        "age": "5m30s",
        "release": "vpa-bp-vpa",
        "threshold": "5m0s",
    }


def test_the_revision_is_the_helm_version_when_the_chart_has_none() -> None:
    obj = stuck_obj()
    obj["status"]["history"][0].pop("chartVersion")
    obj["status"]["history"][0]["version"] = 4
    event = announced("recovery_started", hr_view(obj), strategy="x", attempt=1, max_attempts=3)
    assert event.metadata["revision"] == "4"


def test_recovery_started() -> None:
    event = announced("recovery_started", strategy="force-reconcile", attempt=1, max_attempts=3)
    assert (event.severity, event.reason) == ("info", "RecoveryStarted")
    assert event.message == (
        "fluxwatch is recovering HelmRelease flux-system/bp-vpa with strategy "
        "force-reconcile (attempt 1 of 3)."
    )
    assert dict(event.metadata) == {
        "attempt": "1/3",
        "revision": "4.7.1",
        "strategy": "force-reconcile",
    }


def test_recovery_failed_names_the_next_strategy_or_gives_up() -> None:
    error = "not Ready=True within 120s of the write; still Ready=Unknown (Progressing)"
    then = announced(
        "recovery_failed",
        strategy="force-reconcile",
        attempt=1,
        max_attempts=3,
        error=error,
        next_strategy="suspend-toggle",
    )
    assert (then.severity, then.reason) == ("error", "RecoveryFailed")
    assert then.message == (
        "fluxwatch failed to recover HelmRelease flux-system/bp-vpa with strategy "
        f"force-reconcile (attempt 1 of 3): {error}. "
        "fluxwatch will try strategy suspend-toggle next."
    )
    assert dict(then.metadata) == {
        "attempt": "1/3",
        "error": error,
        "nextStrategy": "suspend-toggle",
        "revision": "4.7.1",
        "strategy": "force-reconcile",
    }
    last = announced(
        "recovery_failed",
        strategy="suspend-toggle",
        attempt=2,
        max_attempts=3,
        error="boom.",
        next_strategy=None,
    )
    assert last.message.endswith(": boom. fluxwatch has given up on it; it needs a person.")
    assert "nextStrategy" not in last.metadata


def test_recovery_stopped_is_a_failure_of_no_strategy_without_revision() -> None:
    event = announced("recovery_stopped", attempt=1, max_attempts=3, error="connection reset")
    assert (event.severity, event.reason) == ("error", "RecoveryFailed")
    assert event.message == (
        "fluxwatch failed to recover HelmRelease flux-system/bp-vpa with strategy - "
        "(attempt 1 of 3): Kubernetes API error: connection reset. "
        "fluxwatch has given up on it; it needs a person."
    )
    assert dict(event.metadata) == {
        "attempt": "1/3",
        "error": "Kubernetes API error: connection reset",
        "strategy": "-",
    }


def test_recovery_succeeded() -> None:
    event = announced(
        "recovery_succeeded", strategy="suspend-toggle", attempt=2, max_attempts=3, took=125.5
    )
    assert (event.severity, event.reason) == ("info", "RecoverySucceeded")
    assert event.message == (
        "HelmRelease flux-system/bp-vpa is Ready again: fluxwatch recovered it with "
        "strategy suspend-toggle in 2m6s (attempt 2 of 3)."
    )
    assert dict(event.metadata) == {
        "attempt": "2/3",
        "duration": "2m6s",
        "revision": "4.7.1",
        "strategy": "suspend-toggle",
    }


def test_recovery_skipped() -> None:
    event = announced("recovery_skipped", why="dry run: fluxwatch decides but never writes")
    assert (event.severity, event.reason) == ("error", "RecoverySkipped")
    assert event.message == (
        "fluxwatch did not recover stuck HelmRelease flux-system/bp-vpa: dry run: "
        "fluxwatch decides but never writes. It stays stuck until a person or a later "
        "attempt acts."
    )
    assert dict(event.metadata) == {"revision": "4.7.1"}


def test_suspend_resumed() -> None:
    event = announced("suspend_resumed", marker="2026-05-05T07:50:00Z")
    assert (event.severity, event.reason) == ("info", "SuspendResumed")
    assert event.message == (
        "fluxwatch resumed HelmRelease flux-system/bp-vpa: its own suspend-toggle "
        "(started 2026-05-05T07:50:00Z) was interrupted before the resume, so the "
        "release was left suspended."
    )
    assert dict(event.metadata) == {}


def test_still_suspended_says_who_suspended_it_and_that_fluxwatch_keeps_trying() -> None:
    error = "500 InternalError: failed calling webhook"
    event = announced("still_suspended", marker="2026-05-05T07:50:00Z", error=error)
    assert (event.severity, event.reason) == ("error", "RecoveryFailed")
    assert event.message == (
        "HelmRelease flux-system/bp-vpa is suspended by fluxwatch "
        "(fluxwatch.io/suspended-at: 2026-05-05T07:50:00Z) and the API refused the resume: "
        f"{error}. helm-controller does not reconcile it until then; fluxwatch keeps "
        "retrying with backoff until the resume goes through."
    )
    assert dict(event.metadata) == {
        "error": f"resume refused: {error}",
        "strategy": "suspend-toggle",
    }


def test_stuck_detected_names_what_waits_for_it() -> None:
    """Issue 12: StuckDetected says how many releases the stuck one blocks, and which."""
    events: list[Event] = []
    announcer = EventAnnouncer(events.append)
    blocks = [("apps", f"dep-{i:02d}") for i in range(3)]
    announcer.stuck_detected(
        hr_view(stuck_obj()), age=330, threshold=300, suspicion=None, blocks=blocks
    )
    [event] = events
    assert event.metadata[Meta.BLOCKED] == "3"
    assert "3 HelmReleases wait for it through dependsOn: apps/dep-00, apps/dep-01" in (
        event.message
    )


def test_how_a_write_ended_goes_through_outcome_and_the_rest_through_publish() -> None:
    """The daemon lets a replica that lost the lead say how its own write ended
    (``outcome``), and only the leader say the rest (``publish``)."""
    said: list[Event] = []
    ended: list[Event] = []
    announcer = EventAnnouncer(said.append, outcome=ended.append)
    view = hr_view(stuck_obj())
    announcer.stuck_detected(view, age=330, threshold=300, suspicion=None)
    announcer.recovery_started(view, strategy="force-reconcile", attempt=1, max_attempts=3)
    announcer.recovery_skipped(view, why="dry run")
    announcer.casualty_detected(view, failed_for=60, stalled=True, resetting=False)
    announcer.recovery_failed(
        view,
        strategy="force-reconcile",
        attempt=1,
        max_attempts=3,
        error="not Ready",
        next_strategy="suspend-toggle",
    )
    announcer.recovery_stopped(view, attempt=1, max_attempts=3, error="500")
    announcer.recovery_succeeded(
        view, strategy="suspend-toggle", attempt=1, max_attempts=3, took=2.0
    )
    announcer.suspend_resumed(view, marker="2026-05-05T07:50:28Z")
    announcer.still_suspended(view, marker="2026-05-05T07:50:28Z", error="503")
    assert [e.reason for e in said] == [
        "StuckDetected",
        "RecoveryStarted",
        "RecoverySkipped",
        "CasualtyDetected",
    ]
    assert [e.reason for e in ended] == [
        "RecoveryFailed",
        "RecoveryFailed",
        "RecoverySucceeded",
        "SuspendResumed",
        "RecoveryFailed",
    ]
