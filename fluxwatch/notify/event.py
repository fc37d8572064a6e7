"""The Event that fluxwatch tells the world about, in the shape of Flux's eventv1.Event.

An ``Event`` is immutable and says one thing about one object (a HelmRelease
or a controller's Lease): what happened, what fluxwatch did or refused, as a
sentence a person can act on. ``EventFactory`` builds the events the engine
emits, one method per reason, so the wording lives here and the engine passes
facts only. ``Event.to_dict()`` is the JSON that notification-controller
itself accepts; the ``labels`` of the involved object travel beside it (for
``matchLabels`` in alert rules) but are not part of the wire format.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import orjson

from fluxwatch.durations import format_duration

# notification-controller rejects longer messages (eventv1 validation).
MAX_MESSAGE_LENGTH = 39_000
TRUNCATION_MARK = " … (truncated)"

REPORTING_CONTROLLER = "fluxwatch"
HELMRELEASE_API_VERSION = "helm.toolkit.fluxcd.io/v2"
LEASE_API_VERSION = "coordination.k8s.io/v1"

# How many object names a message lists before it says "and N more".
_MAX_LISTED = 20


class Severity(StrEnum):
    """``info`` is for the record; ``error`` means a person may have to act."""

    INFO = "info"
    ERROR = "error"


class Reason(StrEnum):
    """The reasons the engine emits; alert rules and Alertmanager names key on them."""

    STUCK_DETECTED = "StuckDetected"
    CASUALTY_DETECTED = "CasualtyDetected"
    RECOVERY_STARTED = "RecoveryStarted"
    RECOVERY_SUCCEEDED = "RecoverySucceeded"
    RECOVERY_FAILED = "RecoveryFailed"
    RECOVERY_SKIPPED = "RecoverySkipped"
    SUSPEND_RESUMED = "SuspendResumed"
    GUARDRAIL_TRIPPED = "GuardrailTripped"
    LEADER_CHANGED = "LeaderChanged"
    LEADER_FLAPPING = "LeaderFlapping"
    CONTROLLER_LEADERLESS = "ControllerLeaderless"
    LEADER_RESTORED = "LeaderRestored"
    INCIDENT_APPROVED = "IncidentApproved"


class Meta:
    """Metadata keys; ``revision`` is the one Flux's dedup key reads."""

    REVISION = "revision"
    RELEASE = "release"
    HELM_VERSION = "helmVersion"
    AGE = "age"
    THRESHOLD = "threshold"
    STRATEGY = "strategy"
    ATTEMPT = "attempt"
    DURATION = "duration"
    ERROR = "error"
    NEXT_STRATEGY = "nextStrategy"
    GUARDRAIL = "guardrail"
    COUNT = "count"
    CONTROLLER = "controller"
    LEASE_HOLDER = "leaseHolder"
    PREVIOUS_HOLDER = "previousHolder"
    LEASE_TRANSITIONS = "leaseTransitions"
    LEASE_DURATION = "leaseDuration"
    CHANGES = "changes"
    WINDOW = "window"
    SUSPECTS = "suspects"
    LEADERLESS_FOR = "leaderlessFor"
    SUMMARY = "summary"
    INCIDENT = "incident"
    BLOCKED = "blocked"
    APPROVED_BY = "approvedBy"
    FAILURES = "failures"


def truncate_message(message: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """Cut ``message`` to at most ``limit`` characters, saying that it was cut."""
    if len(message) <= limit:
        return message
    if limit <= len(TRUNCATION_MARK):
        return message[: max(limit, 0)]
    return message[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def default_instance() -> str:
    """The pod name (downward API ``POD_NAME``), else the host name, which is the pod's."""
    return os.environ.get("POD_NAME") or socket.gethostname()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(ts: datetime) -> str:
    # metav1.Time serialises to whole seconds with a Z; receivers parse exactly that.
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class InvolvedObject:
    """A corev1.ObjectReference to the object the event is about."""

    kind: str
    namespace: str
    name: str
    uid: str = ""
    api_version: str = ""
    resource_version: str = ""

    @classmethod
    def helmrelease(
        cls, namespace: str, name: str, uid: str = "", resource_version: str = ""
    ) -> InvolvedObject:
        return cls("HelmRelease", namespace, name, uid, HELMRELEASE_API_VERSION, resource_version)

    @classmethod
    def lease(
        cls, namespace: str, name: str, uid: str = "", resource_version: str = ""
    ) -> InvolvedObject:
        return cls("Lease", namespace, name, uid, LEASE_API_VERSION, resource_version)

    @property
    def group(self) -> str:
        """The API group (``helm.toolkit.fluxcd.io``); empty for the core group."""
        return self.api_version.rpartition("/")[0]

    @property
    def ref(self) -> str:
        """``namespace/name``, the way kubectl and flux name an object."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def to_dict(self) -> dict[str, str]:
        # Go's omitempty: an empty uid or resourceVersion is left out, not sent as "".
        wire = {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "apiVersion": self.api_version,
            "resourceVersion": self.resource_version,
        }
        return {key: value for key, value in wire.items() if value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InvolvedObject:
        return cls(
            kind=str(data.get("kind", "")),
            namespace=str(data.get("namespace", "")),
            name=str(data.get("name", "")),
            uid=str(data.get("uid", "")),
            api_version=str(data.get("apiVersion", "")),
            resource_version=str(data.get("resourceVersion", "")),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One Flux-shaped event; construct with ``Event.new`` or an ``EventFactory`` method."""

    involved_object: InvolvedObject
    severity: Severity
    reason: str
    message: str
    timestamp: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)
    reporting_controller: str = REPORTING_CONTROLLER
    reporting_instance: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # Frozen, yet built from caller-owned dicts: copy them so nobody mutates an event later.
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "message", truncate_message(self.message))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        if self.timestamp.tzinfo is None:
            object.__setattr__(self, "timestamp", self.timestamp.replace(tzinfo=UTC))

    @classmethod
    def new(
        cls,
        involved_object: InvolvedObject,
        severity: Severity | str,
        reason: str,
        message: str,
        *,
        metadata: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        instance: str | None = None,
        timestamp: datetime | None = None,
    ) -> Event:
        """The clean constructor: stamps the time and the reporting instance (the pod)."""
        return cls(
            involved_object=involved_object,
            severity=Severity(severity),
            reason=reason,
            message=message,
            timestamp=timestamp or _utcnow(),
            metadata={k: str(v) for k, v in (metadata or {}).items() if v != ""},
            reporting_instance=instance if instance is not None else default_instance(),
            labels=labels or {},
        )

    @property
    def key(self) -> str:
        """The dedup key: involved object, reason, message and revision, as notification-controller.

        notification-controller hashes kind/namespace/name, message and the
        revision; fluxwatch adds the reason so that two reasons with the same
        sentence stay two events.
        """
        obj = self.involved_object
        parts = [obj.kind, obj.namespace, obj.name, self.reason, self.message]
        parts.append(self.metadata.get(Meta.REVISION, ""))
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    @property
    def object_name(self) -> str:
        """``helmrelease/podinfo.default``, how Flux's providers title an event."""
        obj = self.involved_object
        return f"{obj.kind.lower()}/{obj.name}.{obj.namespace}"

    def with_metadata(self, extra: Mapping[str, str]) -> Event:
        """A copy with ``extra`` keys added; keys the event already has win, as in Flux."""
        if not extra:
            return self
        merged = {**extra, **self.metadata}
        return replace(self, metadata=merged)

    def to_dict(self) -> dict[str, Any]:
        """The eventv1.Event JSON object, keys in Go's field order."""
        wire: dict[str, Any] = {
            "involvedObject": self.involved_object.to_dict(),
            "severity": str(self.severity),
            "timestamp": rfc3339(self.timestamp),
            "message": self.message,
            "reason": self.reason,
        }
        if self.metadata:
            wire["metadata"] = dict(sorted(self.metadata.items()))
        wire["reportingController"] = self.reporting_controller
        if self.reporting_instance:
            wire["reportingInstance"] = self.reporting_instance
        return wire

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Parse the wire JSON (what a receiver or notification-controller gets)."""
        raw_ts = str(data.get("timestamp", ""))
        timestamp = datetime.fromisoformat(raw_ts) if raw_ts else _utcnow()
        return cls(
            involved_object=InvolvedObject.from_dict(data.get("involvedObject", {})),
            severity=Severity(data.get("severity", "info")),
            reason=str(data.get("reason", "")),
            message=str(data.get("message", "")),
            timestamp=timestamp,
            metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
            reporting_controller=str(data.get("reportingController", REPORTING_CONTROLLER)),
            reporting_instance=str(data.get("reportingInstance", "")),
        )


def _names(refs: Sequence[str]) -> str:
    shown = ", ".join(refs[:_MAX_LISTED])
    if len(refs) > _MAX_LISTED:
        shown += f" and {len(refs) - _MAX_LISTED} more"
    return shown


def controller_of(lease: InvolvedObject) -> str:
    """``helm-controller`` from ``helm-controller-leader-election[-<8 hex>]``."""
    name = lease.name
    head, sep, tail = name.rpartition("-")
    if sep and len(tail) == 8 and all(c in "0123456789abcdef" for c in tail):
        name = head
    return name.removesuffix("-leader-election")


def _attempt(attempt: int, max_attempts: int) -> str:
    return f"{attempt}/{max_attempts}"


class EventFactory:
    """Builds the engine's events: one method per reason, the wording in one place.

    Create one per process with the pod name; ``now`` is injectable for tests.
    Durations are seconds (floats) and are written the Go way (``5m0s``).
    """

    def __init__(
        self,
        instance: str | None = None,
        *,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.instance = instance if instance is not None else default_instance()
        self._now = now

    def new(
        self,
        obj: InvolvedObject,
        severity: Severity | str,
        reason: Reason | str,
        message: str,
        metadata: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Event:
        return Event.new(
            obj,
            severity,
            str(reason),
            message,
            metadata=metadata,
            labels=labels,
            instance=self.instance,
            timestamp=self._now(),
        )

    def stuck_detected(
        self,
        hr: InvolvedObject,
        *,
        age: float,
        threshold: float,
        release: str = "",
        helm_version: int | None = None,
        revision: str = "",
        note: str = "",
        labels: Mapping[str, str] | None = None,
        blocks: Sequence[str] = (),
    ) -> Event:
        """``blocks``: the releases that wait for this one through ``dependsOn``, directly
        or through others (``namespace/name``)."""
        deployed = "although its Helm release is deployed"
        if release and helm_version is not None:
            deployed = f"although Helm release {release} v{helm_version} is deployed"
        message = (
            f"HelmRelease {hr.ref} has been stuck at Ready=Unknown for {format_duration(age)} "
            f"(threshold {format_duration(threshold)}) {deployed}."
        )
        if blocks:
            noun = "HelmRelease waits" if len(blocks) == 1 else "HelmReleases wait"
            message += f" {len(blocks)} {noun} for it through dependsOn: {_names(list(blocks))}."
        if note:
            message += f" {note}"
        metadata = {
            Meta.AGE: format_duration(age),
            Meta.THRESHOLD: format_duration(threshold),
            Meta.RELEASE: release,
            Meta.HELM_VERSION: "" if helm_version is None else str(helm_version),
            Meta.REVISION: revision,
        }
        if blocks:
            metadata[Meta.BLOCKED] = str(len(blocks))
        return self.new(hr, Severity.ERROR, Reason.STUCK_DETECTED, message, metadata, labels)

    def casualty_detected(
        self,
        hr: InvolvedObject,
        *,
        ready_reason: str,
        ready_message: str,
        failed_for: float,
        stalled: bool,
        failures: int,
        reset: bool,
        release: str = "",
        revision: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> Event:
        """A release whose install or upgrade failed inside an incident window (the blip's
        other casualty); ``reset`` says whether fluxwatch resets it or leaves that to a
        person, whom the message then tells the exact command."""
        detail = f": {ready_message.rstrip('.')}" if ready_message else ""
        message = (
            f"HelmRelease {hr.ref} failed during an incident and has been Ready=False "
            f"({ready_reason}) for {format_duration(failed_for)}{detail}."
        )
        if stalled:
            message += (
                " helm-controller has spent its remediation retries (Stalled, "
                "RetriesExceeded) and tries no more."
            )
        command = f"flux reconcile hr {hr.name} -n {hr.namespace} --reset"
        if reset:
            message += (
                f" fluxwatch resets its failure counts as `{command}` does, "
                "so helm-controller tries again."
            )
        else:
            message += (
                f" Once the cause is gone, `{command}` lets helm-controller try again "
                "(fluxwatch does it itself with recovery.reset: true)."
            )
        metadata = {
            Meta.AGE: format_duration(failed_for),
            Meta.FAILURES: str(failures),
            Meta.RELEASE: release,
            Meta.REVISION: revision,
        }
        return self.new(hr, Severity.ERROR, Reason.CASUALTY_DETECTED, message, metadata, labels)

    def recovery_started(
        self,
        hr: InvolvedObject,
        *,
        strategy: str,
        attempt: int,
        max_attempts: int,
        revision: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> Event:
        message = (
            f"fluxwatch is recovering HelmRelease {hr.ref} with strategy {strategy} "
            f"(attempt {attempt} of {max_attempts})."
        )
        metadata = {
            Meta.STRATEGY: strategy,
            Meta.ATTEMPT: _attempt(attempt, max_attempts),
            Meta.REVISION: revision,
        }
        return self.new(hr, Severity.INFO, Reason.RECOVERY_STARTED, message, metadata, labels)

    def recovery_succeeded(
        self,
        hr: InvolvedObject,
        *,
        strategy: str,
        attempt: int,
        max_attempts: int,
        took: float,
        revision: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> Event:
        message = (
            f"HelmRelease {hr.ref} is Ready again: fluxwatch recovered it with strategy "
            f"{strategy} in {format_duration(took)} (attempt {attempt} of {max_attempts})."
        )
        metadata = {
            Meta.STRATEGY: strategy,
            Meta.ATTEMPT: _attempt(attempt, max_attempts),
            Meta.DURATION: format_duration(took),
            Meta.REVISION: revision,
        }
        return self.new(hr, Severity.INFO, Reason.RECOVERY_SUCCEEDED, message, metadata, labels)

    def recovery_failed(
        self,
        hr: InvolvedObject,
        *,
        strategy: str,
        attempt: int,
        max_attempts: int,
        error: str,
        next_strategy: str | None = None,
        revision: str = "",
        labels: Mapping[str, str] | None = None,
    ) -> Event:
        then = (
            f"fluxwatch will try strategy {next_strategy} next."
            if next_strategy
            else "fluxwatch has given up on it; it needs a person."
        )
        message = (
            f"fluxwatch failed to recover HelmRelease {hr.ref} with strategy {strategy} "
            f"(attempt {attempt} of {max_attempts}): {error.rstrip('.')}. {then}"
        )
        metadata = {
            Meta.STRATEGY: strategy,
            Meta.ATTEMPT: _attempt(attempt, max_attempts),
            Meta.ERROR: error,
            Meta.NEXT_STRATEGY: next_strategy or "",
            Meta.REVISION: revision,
        }
        return self.new(hr, Severity.ERROR, Reason.RECOVERY_FAILED, message, metadata, labels)

    def suspend_resumed(
        self,
        hr: InvolvedObject,
        *,
        marker: str,
        labels: Mapping[str, str] | None = None,
    ) -> Event:
        """fluxwatch resumed a release its own interrupted suspend-toggle had left suspended."""
        message = (
            f"fluxwatch resumed HelmRelease {hr.ref}: its own suspend-toggle (started {marker}) "
            "was interrupted before the resume, so the release was left suspended."
        )
        return self.new(hr, Severity.INFO, Reason.SUSPEND_RESUMED, message, {}, labels)

    def recovery_skipped(
        self,
        hr: InvolvedObject,
        *,
        why: str,
        revision: str = "",
        labels: Mapping[str, str] | None = None,
        state: str = "stuck",
    ) -> Event:
        """A stuck (or failed) release fluxwatch chose not to touch (dry run, budget spent,
        attempts used)."""
        message = (
            f"fluxwatch did not recover {state} HelmRelease {hr.ref}: {why.rstrip('.')}. "
            f"It stays {state} until a person or a later attempt acts."
        )
        return self.new(
            hr,
            Severity.ERROR,
            Reason.RECOVERY_SKIPPED,
            message,
            {Meta.REVISION: revision},
            labels,
        )

    def guardrail_tripped(
        self,
        subject: InvolvedObject,
        *,
        guardrail: str,
        detail: str,
        releases: Sequence[str],
        labels: Mapping[str, str] | None = None,
        incident: str = "",
        approve: str = "",
        casualties: Sequence[str] = (),
    ) -> Event:
        """fluxwatch refuses to act on any of ``releases`` (``namespace/name``).

        ``subject`` is the object the event hangs on: fluxwatch's own
        Deployment for a batch refusal, the HelmRelease for a per-release limit.
        ``approve``: the command a person runs to have the incident recovered anyway.
        """
        count = len(releases)
        noun = "HelmRelease" if count == 1 else "HelmReleases"
        message = (
            f"fluxwatch refused to recover {count} stuck {noun} ({guardrail} guardrail): "
            f"{detail.rstrip('.')}. Stuck: {_names(list(releases))}."
        )
        if casualties:
            message += (
                f" Failed during the incident (install or upgrade, Ready=False): "
                f"{_names(list(casualties))}."
            )
        if approve:
            message += f" To recover them anyway, under the budget and roots first: {approve}"
        metadata = {Meta.GUARDRAIL: guardrail, Meta.COUNT: str(count)}
        if incident:
            metadata[Meta.INCIDENT] = incident
        return self.new(
            subject, Severity.ERROR, Reason.GUARDRAIL_TRIPPED, message, metadata, labels
        )

    def leader_changed(
        self,
        lease: InvolvedObject,
        *,
        previous: str,
        holder: str,
        transitions: int | None = None,
        suspects: Sequence[str] = (),
        controller: str | None = None,
    ) -> Event:
        controller = controller or controller_of(lease)
        message = f"The {controller} leader changed from {previous or 'nobody'} to {holder}"
        message += f" (transition {transitions})." if transitions is not None else "."
        if suspects:
            noun = "HelmRelease" if len(suspects) == 1 else "HelmReleases"
            message += (
                f" {len(suspects)} {noun} at Ready=Unknown at that moment may end up stuck: "
                f"{_names(list(suspects))}."
            )
        metadata = {
            Meta.CONTROLLER: controller,
            Meta.PREVIOUS_HOLDER: previous,
            Meta.LEASE_HOLDER: holder,
            Meta.LEASE_TRANSITIONS: "" if transitions is None else str(transitions),
            Meta.SUSPECTS: str(len(suspects)) if suspects else "",
        }
        return self.new(lease, Severity.INFO, Reason.LEADER_CHANGED, message, metadata)

    def leader_flapping(
        self,
        lease: InvolvedObject,
        *,
        changes: int,
        window: float,
        controller: str | None = None,
    ) -> Event:
        controller = controller or controller_of(lease)
        message = (
            f"The {controller} leader changed {changes} times in {format_duration(window)}: "
            f"the controller keeps losing Lease {lease.ref}, and HelmReleases it installs "
            "meanwhile may end up stuck."
        )
        metadata = {
            Meta.CONTROLLER: controller,
            Meta.CHANGES: str(changes),
            Meta.WINDOW: format_duration(window),
        }
        return self.new(lease, Severity.ERROR, Reason.LEADER_FLAPPING, message, metadata)

    def controller_leaderless(
        self,
        lease: InvolvedObject,
        *,
        leaderless_for: float,
        last_holder: str,
        lease_duration: float,
        controller: str | None = None,
        released: bool = False,
    ) -> Event:
        """``released``: ``last_holder`` gave the Lease up cleanly and no pod took it."""
        controller = controller or controller_of(lease)
        if released:
            what = (
                f"Lease {lease.ref} was released by {last_holder or 'its leader'} and no "
                "pod has taken it since"
            )
        else:
            what = (
                f"Lease {lease.ref} was last renewed by {last_holder or 'nobody'} and expired "
                f"after {format_duration(lease_duration)}"
            )
        message = (
            f"{controller} has had no leader for {format_duration(leaderless_for)}: "
            f"{what}; nothing it manages is reconciled."
        )
        metadata = {
            Meta.CONTROLLER: controller,
            Meta.LEASE_HOLDER: last_holder,
            Meta.LEASE_DURATION: format_duration(lease_duration),
            Meta.LEADERLESS_FOR: format_duration(leaderless_for),
        }
        return self.new(lease, Severity.ERROR, Reason.CONTROLLER_LEADERLESS, message, metadata)

    def leader_restored(
        self,
        lease: InvolvedObject,
        *,
        holder: str,
        leaderless_for: float,
        controller: str | None = None,
    ) -> Event:
        controller = controller or controller_of(lease)
        message = (
            f"{controller} has a leader again, {holder}, "
            f"after {format_duration(leaderless_for)} without one."
        )
        metadata = {
            Meta.CONTROLLER: controller,
            Meta.LEASE_HOLDER: holder,
            Meta.LEADERLESS_FOR: format_duration(leaderless_for),
        }
        return self.new(lease, Severity.INFO, Reason.LEADER_RESTORED, message, metadata)

    def incident_approved(
        self,
        subject: InvolvedObject,
        *,
        incident: str,
        by: str,
        releases: Sequence[str],
        reason: str = "",
    ) -> Event:
        """A person approved, once, the recovery of an incident the batch guardrail refused.

        ``subject`` is fluxwatch's leader Lease, which holds the approval; ``by`` is the
        user the API server authenticated the approval's write as. The approval's token
        stays out: it only makes one approval count once.
        """
        count = len(releases)
        noun = "HelmRelease" if count == 1 else "HelmReleases"
        message = (
            f"{by} approved the recovery of incident {incident}: fluxwatch recovers its "
            f"{count} stuck {noun} within its recovery budget, dependencies first"
        )
        if reason.strip():
            message += f". Reason given: {reason.strip().rstrip('.')}"
        message += f". Stuck: {_names(list(releases))}." if releases else "."
        metadata = {Meta.INCIDENT: incident, Meta.APPROVED_BY: by, Meta.COUNT: str(count)}
        return self.new(subject, Severity.INFO, Reason.INCIDENT_APPROVED, message, metadata)
