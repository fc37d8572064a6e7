"""Pure verdicts: is a HelmRelease ready, progressing, stuck, or skipped, and why.

``decide(view, record, settings, now, storage)`` reads nothing but its
arguments. Stuck (FLUX-FACTS §1) means ``Ready=Unknown`` for at least
``threshold`` seconds counted from the condition's own ``lastTransitionTime``
(so a restart of fluxwatch does not reset the clock) *and* the Helm release is
deployed: ``history[0].status == deployed`` and, when Helm's release Secrets
were read, the newest of them by ``version`` label is deployed with the same
version. A release without history is judged by its Secrets alone.

Checks run in this order, the first that applies wins: out of scope,
malformed, fluxwatch's own interrupted suspend (``resume-pending``, even on a
release being deleted), being deleted, suspended by a person (left alone),
ignored, no Ready, Ready=False
(``waiting`` when helm-controller's reason is one of its normal waits, else
``failed``), not deployed or a newer revision pending, then the threshold.

A ``failed`` verdict says when Ready went False (``failed_at``) and whether
it is the kind of failure ``flux reconcile hr --reset`` undoes
(``resettable``: Ready=False with ``InstallFailed``/``UpgradeFailed``, or
``Stalled=True`` with ``RetriesExceeded``): an API blip that cut an install or
upgrade leaves exactly that behind. ``decide`` never acts on it; whoever knows
that it failed inside an incident window turns it into a ``casualty`` verdict
with :func:`casualty`.

A remote release (``spec.kubeConfig``, FLUX-FACTS §7) keeps its Helm storage on
the other cluster: local Secrets are never evidence for or against it, so its
storage counts as unreadable whatever was read, and the verdict rests on
``status.history`` (or, with ``verifyStorage: always``, refuses), saying so.

Storage is I/O, so the tracker decides on the view alone (``storage=None``).
A verdict ``stuck`` reached that way carries ``needs_storage=True`` when
``verifyStorage`` is ``auto`` or ``always``: whoever acts must read the
Secrets and decide again with a :class:`StorageState` first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from fluxwatch.engine.config import EngineSettings, VerifyStorage
from fluxwatch.kube.fields import format_rfc3339
from fluxwatch.kube.helmrelease import ANNOTATION_IGNORE, ANNOTATION_SUSPENDED_AT, HRView
from fluxwatch.kube.helmstorage import StoredRelease, newest

__all__ = [
    "Kind",
    "Recollection",
    "Skip",
    "StorageState",
    "Suspicion",
    "Verdict",
    "casualty",
    "decide",
]

DEPLOYED = "deployed"


class Kind(StrEnum):
    READY = "ready"
    PROGRESSING = "progressing"  # Ready=Unknown, deployed, threshold not reached yet
    STUCK = "stuck"
    RESUME_PENDING = "resume-pending"  # fluxwatch's suspend-toggle was interrupted
    SKIPPED = "skipped"
    # A resettable failure inside an incident window: the blip's other casualty, for the
    # opt-in reset strategy. Only made by casualty(), never by decide().
    CASUALTY = "casualty"


class Skip(StrEnum):
    """Why a release is skipped; the value is the label used in metrics and scans."""

    OUT_OF_SCOPE = "out-of-scope"
    MALFORMED = "malformed"
    DELETING = "deleting"
    SUSPENDED = "suspended"  # by a person
    IGNORED = "ignored"
    UNRECONCILED = "unreconciled"  # no Ready condition yet
    FAILED = "failed"  # Ready=False: helm-controller reports it, it is not the stuck bug
    WAITING = "waiting"  # Ready=False for a normal wait (DependencyNotReady, SourceNotReady)
    NOT_DEPLOYED = "not-deployed"
    NEWER_PENDING = "newer-pending"


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    reason: str  # one sentence for a person
    due_at: float | None = None  # epoch seconds: when it is (or became) stuck or actionable
    skip: Skip | None = None
    # Stuck by the view alone; read Helm storage and decide again before acting.
    needs_storage: bool = False
    # Ready=False: its lastTransitionTime (epoch seconds), when the release failed.
    failed_at: float | None = None
    # A failure `flux reconcile hr --reset` undoes (see the module docstring).
    resettable: bool = False

    @property
    def label(self) -> Kind | Skip:
        """The most specific name: the skip reason for skipped verdicts, else the verdict."""
        return self.skip if self.skip is not None else self.kind


@dataclass(frozen=True, slots=True)
class Suspicion:
    """Why a release may have been hit by a controller incident, and until when that holds."""

    reason: str
    until: float


class Recollection(Protocol):
    """What the tracker remembers of a release beyond its latest view."""

    @property
    def verdict(self) -> Verdict: ...  # the previous verdict
    @property
    def suspicion(self) -> Suspicion | None: ...


@dataclass(frozen=True, slots=True)
class StorageState:
    """What Helm's release Secrets say about one release (FLUX-FACTS §4).

    ``readable=False``: the lookup failed (``problem`` says why).
    ``newest=None`` with ``readable=True``: no Secret exists for the release.
    """

    readable: bool = True
    newest: StoredRelease | None = None
    problem: str = ""

    @classmethod
    def of(cls, releases: Iterable[StoredRelease]) -> StorageState:
        """From the stored revisions of one release; the newest by ``version`` label counts."""
        return cls(newest=newest(releases))

    @classmethod
    def unreadable(cls, problem: str) -> StorageState:
        return cls(readable=False, problem=problem)


# Ready=False reasons of a failed Helm action (install.go, upgrade.go failure()).
RELEASE_FAILURES = frozenset({"InstallFailed", "UpgradeFailed"})
# Stalled reason once spec.<action>.remediation.retries are spent (atomic_release.go).
RETRIES_EXCEEDED = "RetriesExceeded"

# Ready=False reasons helm-controller v1.x sets while it waits for something else and
# requeues (reconcileRelease in internal/controller/helmrelease_controller.go):
# DependencyNotReady, recorded as a Normal event, until every dependsOn is Ready; and
# SourceNotReady, without an event, until the chart's source has an artifact.
NORMAL_WAITS = {
    "DependencyNotReady": "waiting for the releases it dependsOn to be Ready",
    "SourceNotReady": "waiting for its chart source to have an artifact",
}

REMOTE_STORAGE = (
    "spec.kubeConfig: the release lives on a remote cluster, so local Helm Secrets are no evidence"
)


def _skip(skip: Skip, reason: str) -> Verdict:
    return Verdict(Kind.SKIPPED, reason, skip=skip)


# Verdicts that do not depend on the object's details are shared, not rebuilt per event.
READY = Verdict(Kind.READY, "Ready=True")
OUT_OF_SCOPE = _skip(
    Skip.OUT_OF_SCOPE, "outside the watched namespaces or the label selector; not watched"
)
DELETING = _skip(Skip.DELETING, "being deleted (deletionTimestamp is set); left to helm-controller")
SUSPENDED = _skip(
    Skip.SUSPENDED, "suspended by a person (spec.suspend is true without fluxwatch's marker)"
)
IGNORED = _skip(Skip.IGNORED, f'opted out with annotation {ANNOTATION_IGNORE}: "true"')
UNRECONCILED = _skip(
    Skip.UNRECONCILED, "no Ready condition yet: helm-controller has not reconciled it"
)


def decide(
    view: HRView,
    record: Recollection | None,
    settings: EngineSettings,
    now: float,
    storage: StorageState | None = None,
) -> Verdict:
    """Judge one release at the epoch instant ``now``; see the module docstring for the rules."""
    if not settings.in_scope(view.namespace, view.labels):
        return OUT_OF_SCOPE
    if view.malformed is not None:
        return _skip(Skip.MALFORMED, f"cannot be read: {view.malformed}")
    if view.suspend and view.suspended_at is not None:
        # Before "ignored": this suspend is fluxwatch's own write, undoing it restores
        # the state the owner left; keeping it would stop the release for good. Before
        # "being deleted" too: helm-controller lets a suspended HelmRelease go without a
        # Helm uninstall (reconcileDelete), and the API takes a spec change on an object
        # its finalizer holds, so resuming is what lets the owner's delete uninstall.
        return Verdict(
            Kind.RESUME_PENDING,
            f"suspended by fluxwatch ({ANNOTATION_SUSPENDED_AT}: {view.suspended_at}) and "
            "never resumed: an interrupted suspend-toggle, to be resumed first",
            due_at=now,
        )
    if view.deleting:
        return DELETING
    if view.suspend:
        return SUSPENDED
    if view.ignored:
        return IGNORED
    ready = view.ready
    if ready is None:
        return UNRECONCILED
    if ready.status == "True":
        return READY
    if ready.status != "Unknown":
        wait = NORMAL_WAITS.get(ready.reason) if ready.status == "False" else None
        if wait is not None:
            detail = f": {ready.message}" if ready.message else ""
            return _skip(
                Skip.WAITING,
                f"Ready=False ({ready.reason}{detail}): helm-controller is {wait}, "
                "a normal wait, not a failure",
            )
        stalled = view.stalled
        exhausted = (
            stalled is not None and stalled.status == "True" and stalled.reason == RETRIES_EXCEEDED
        )
        return Verdict(
            Kind.SKIPPED,
            f"Ready={ready.status} ({ready.reason}): a failure helm-controller reports itself"
            + ("; Stalled (RetriesExceeded): it retries no more" if exhausted else ""),
            skip=Skip.FAILED,
            failed_at=ready.last_transition,
            resettable=ready.status == "False" and (ready.reason in RELEASE_FAILURES or exhausted),
        )
    if ready.last_transition is None:
        return _skip(Skip.MALFORMED, "Ready=Unknown has no lastTransitionTime to count from")

    if view.remote:
        storage = StorageState.unreadable(REMOTE_STORAGE)
    deployed = _deployment(view, settings.verify_storage, storage)
    if isinstance(deployed, Verdict):
        return deployed
    due_at = ready.last_transition + settings.threshold
    since = ready.last_transition
    if now < due_at:
        kept = record.verdict if record is not None else None
        if kept is not None and kept.kind is Kind.PROGRESSING and kept.due_at == due_at:
            # Most watch events change nothing this verdict says: keep it, build nothing.
            return kept
        return Verdict(
            Kind.PROGRESSING,
            f"Ready=Unknown since {format_rfc3339(since)}; "
            f"stuck at {format_rfc3339(due_at)} if nothing changes",
            due_at=due_at,
        )
    needs_storage = storage is None and settings.verify_storage is not VerifyStorage.NEVER
    reason = (
        f"Ready=Unknown ({ready.reason}: {ready.message}) since {format_rfc3339(since)}, "
        f"{now - since:.0f}s, past the {settings.threshold:.0f}s threshold, "
        f"although {deployed}"
    )
    if needs_storage:
        reason += " (Helm storage not checked yet)"
    suspicion = record.suspicion if record is not None else None
    if suspicion is not None and now < suspicion.until:
        reason += f"; suspect: {suspicion.reason}"
    return Verdict(Kind.STUCK, reason, due_at=due_at, needs_storage=needs_storage)


def _deployment(view: HRView, verify: VerifyStorage, storage: StorageState | None) -> Verdict | str:
    """A skip verdict when the release is not deployed, else what says that it is."""
    snap = view.last_release
    if snap is not None and snap.status != DEPLOYED:
        if snap.status.startswith("pending-"):
            return _skip(
                Skip.NEWER_PENDING,
                f"history[0] is revision {snap.version} {snap.status}: Helm is still at work",
            )
        return _skip(Skip.NOT_DEPLOYED, f"history[0] is revision {snap.version} {snap.status}")
    by_history = f"history[0] says revision {snap.version} is deployed" if snap else ""

    if verify is VerifyStorage.NEVER or storage is None:
        if snap is None and verify is VerifyStorage.NEVER:
            return _skip(
                Skip.NOT_DEPLOYED,
                "no status.history, and verifyStorage is never: nothing says it is deployed",
            )
        # storage None: not read yet; a stuck verdict asks for it (needs_storage).
        return by_history or "Helm storage is to confirm a deployed release"

    if not storage.readable:
        if verify is VerifyStorage.ALWAYS:
            return _skip(
                Skip.NOT_DEPLOYED,
                f"Helm storage unreadable ({storage.problem}) and verifyStorage is always",
            )
        if snap is None:
            return _skip(
                Skip.NOT_DEPLOYED,
                f"no status.history and Helm storage unreadable ({storage.problem})",
            )
        return f"{by_history} (Helm storage unreadable: {storage.problem})"

    top = storage.newest
    where = f"{view.storage_namespace}/{view.release_name}"
    if top is None:
        return _skip(Skip.NOT_DEPLOYED, f"no Helm release Secret for {where}")
    if top.status.startswith("pending-") and (snap is None or top.version > snap.version):
        return _skip(
            Skip.NEWER_PENDING,
            f"Helm revision {top.version} of {where} is {top.status}: Helm is still at work",
        )
    if top.status != DEPLOYED:
        return _skip(
            Skip.NOT_DEPLOYED, f"newest Helm revision {top.version} of {where} is {top.status}"
        )
    if snap is not None and top.version != snap.version:
        return _skip(
            Skip.NOT_DEPLOYED,
            f"newest Helm revision of {where} is {top.version}, history[0] says {snap.version}",
        )
    return f"Helm revision {top.version} of {where} is deployed"


def casualty(view: HRView, verdict: Verdict, now: float) -> Verdict:
    """The verdict for a resettable failure that happened inside an incident window: due
    now, for the reset strategy. ``verdict`` is ``decide``'s ``failed`` verdict of ``view``;
    anything else is a caller's mistake and a ValueError naming the release."""
    if verdict.skip is not Skip.FAILED or not verdict.resettable:
        raise ValueError(
            f"HelmRelease {view.namespace}/{view.name}: only a resettable failed verdict "
            f"can be a casualty, got {verdict.label}: {verdict.reason}"
        )
    ready = view.ready
    if ready is None:
        raise ValueError(f"HelmRelease {view.namespace}/{view.name}: no Ready condition")
    since = f" since {format_rfc3339(verdict.failed_at)}" if verdict.failed_at else ""
    counts = [
        f"{n} {action} failure{'s' if n != 1 else ''}"
        for action, n in (("install", view.install_failures), ("upgrade", view.upgrade_failures))
        if n
    ]
    stalled = view.stalled
    detail = f" ({ready.message})" if ready.message else ""
    reason = f"Ready=False ({ready.reason}){since}{detail}"
    if stalled is not None and stalled.status == "True":
        reason += f"; Stalled ({stalled.reason}): helm-controller retries no more"
    if counts:
        reason += f"; {' and '.join(counts)} counted"
    reason += (
        "; it failed inside an incident window, a casualty of the incident: a reset "
        "(flux reconcile hr --reset) lets helm-controller try again"
    )
    return Verdict(
        Kind.CASUALTY,
        reason,
        due_at=now,
        failed_at=verdict.failed_at,
        resettable=True,
    )
