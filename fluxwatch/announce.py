"""Words what a recovery tells people as Flux-shaped Events: the engine's Announcer.

The engine says what happened in its own terms (a release view, a strategy, an
attempt, an error) through :class:`~fluxwatch.engine.recovery.Announcer`;
:class:`EventAnnouncer` turns each call into the ``notify`` Event with its
reason, severity, message and metadata (the involved object's reference, the
Helm revision Flux's dedup key reads, the release's labels for alert rules)
and hands it to ``publish``. It lives outside both rooms because it bridges
them: the engine knows no Event, and ``notify`` knows no engine.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from fluxwatch.engine.recovery import SUSPEND_TOGGLE, Key
from fluxwatch.kube.helmrelease import ANNOTATION_SUSPENDED_AT, HRView
from fluxwatch.notify.event import Event, EventFactory, InvolvedObject, Meta, Reason, Severity

# The error of the event that says a release stays suspended by fluxwatch: `scan` keys on it.
RESUME_REFUSED = "resume refused"


class EventAnnouncer:
    """The engine's Announcer over an :class:`EventFactory`; see the module docstring."""

    def __init__(
        self,
        publish: Callable[[Event], None],
        events: EventFactory | None = None,
        *,
        outcome: Callable[[Event], None] | None = None,
    ) -> None:
        self.publish = publish
        # How a write ended (succeeded, failed, stopped, resumed, still suspended) is
        # said through ``outcome``: the daemon lets a replica that lost the lead while
        # verifying its own write still say it (``Daemon.publish_outcome``).
        self.outcome = outcome or publish
        self.events = events or EventFactory()

    def stuck_detected(
        self,
        view: HRView,
        *,
        age: float,
        threshold: float,
        suspicion: str | None,
        blocks: Collection[Key] = (),
    ) -> None:
        snapshot = view.last_release
        self.publish(
            self.events.stuck_detected(
                _obj(view),
                age=age,
                threshold=threshold,
                release=view.release_name,
                helm_version=snapshot.version if snapshot else None,
                revision=_revision(view),
                note=f"Suspect: {suspicion}." if suspicion else "",
                labels=view.labels,
                blocks=[f"{ns}/{name}" for ns, name in sorted(blocks)],
            )
        )

    def recovery_started(
        self, view: HRView, *, strategy: str, attempt: int, max_attempts: int
    ) -> None:
        self.publish(
            self.events.recovery_started(
                _obj(view),
                strategy=strategy,
                attempt=attempt,
                max_attempts=max_attempts,
                revision=_revision(view),
                labels=view.labels,
            )
        )

    def recovery_failed(
        self,
        view: HRView,
        *,
        strategy: str,
        attempt: int,
        max_attempts: int,
        error: str,
        next_strategy: str | None,
    ) -> None:
        self.outcome(
            self.events.recovery_failed(
                _obj(view),
                strategy=strategy,
                attempt=attempt,
                max_attempts=max_attempts,
                error=error,
                next_strategy=next_strategy,
                revision=_revision(view),
                labels=view.labels,
            )
        )

    def recovery_stopped(
        self, view: HRView, *, attempt: int, max_attempts: int, error: str
    ) -> None:
        # Strategy "-": the error may come from outside any step (reading Helm storage,
        # re-reading the release after a 409) as well as from a connection lost mid-step.
        self.outcome(
            self.events.recovery_failed(
                _obj(view),
                strategy="-",
                attempt=attempt,
                max_attempts=max_attempts,
                error=f"Kubernetes API error: {error}",
                labels=view.labels,
            )
        )

    def recovery_succeeded(
        self, view: HRView, *, strategy: str, attempt: int, max_attempts: int, took: float
    ) -> None:
        self.outcome(
            self.events.recovery_succeeded(
                _obj(view),
                strategy=strategy,
                attempt=attempt,
                max_attempts=max_attempts,
                took=took,
                revision=_revision(view),
                labels=view.labels,
            )
        )

    def recovery_skipped(self, view: HRView, *, why: str, state: str = "stuck") -> None:
        self.publish(
            self.events.recovery_skipped(
                _obj(view), why=why, revision=_revision(view), labels=view.labels, state=state
            )
        )

    def casualty_detected(
        self, view: HRView, *, failed_for: float, stalled: bool, resetting: bool
    ) -> None:
        ready = view.ready
        self.publish(
            self.events.casualty_detected(
                _obj(view),
                ready_reason=ready.reason if ready is not None else "",
                ready_message=ready.message if ready is not None else "",
                failed_for=failed_for,
                stalled=stalled,
                failures=view.install_failures + view.upgrade_failures,
                reset=resetting,
                release=view.release_name,
                revision=_revision(view),
                labels=view.labels,
            )
        )

    def suspend_resumed(self, view: HRView, *, marker: str) -> None:
        self.outcome(self.events.suspend_resumed(_obj(view), marker=marker, labels=view.labels))

    def still_suspended(self, view: HRView, *, marker: str, error: str) -> None:
        message = (
            f"HelmRelease {view.namespace}/{view.name} is suspended by fluxwatch "
            f"({ANNOTATION_SUSPENDED_AT}: {marker}) and the API refused the resume: {error}. "
            "helm-controller does not reconcile it until then; fluxwatch keeps retrying "
            "with backoff until the resume goes through."
        )
        self.outcome(
            self.events.new(
                _obj(view),
                Severity.ERROR,
                Reason.RECOVERY_FAILED,
                message,
                {Meta.STRATEGY: SUSPEND_TOGGLE, Meta.ERROR: f"{RESUME_REFUSED}: {error}"},
                view.labels,
            )
        )


def _obj(view: HRView) -> InvolvedObject:
    return InvolvedObject.helmrelease(view.namespace, view.name, view.uid, view.resource_version)


def _revision(view: HRView) -> str:
    snapshot = view.last_release
    if snapshot is None:
        return ""
    return f"{snapshot.chart_version}" if snapshot.chart_version else str(snapshot.version)


__all__ = ["RESUME_REFUSED", "EventAnnouncer"]
