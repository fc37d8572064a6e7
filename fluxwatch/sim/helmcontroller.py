"""A simulated helm-controller that answers HelmReleases as v1.x does, stuck bug included.

It runs in-process against the emulator's :class:`~fluxwatch.sim.store.Store`
and writes what the real controller writes (FLUX-FACTS §2, §4, §5): the
conditions of an install or upgrade, the Helm release Secrets
``sh.helm.release.v1.<release>.v<N>``, ``status.history``, the
leader-election Lease. Only the leader reconciles.

The bug it reproduces (FLUX-FACTS §1, helm-controller#1409): Ready is written
``Unknown/Progressing`` when an install starts; if leadership is lost while
Helm runs, the Secret ends ``deployed`` and ``history[0]`` says ``deployed``
but the final Ready write never happens. The next leader finds the release
"in sync" and, on that path, never rewrites Ready, so the HelmRelease stays
``Ready=Unknown``. What moves it (FLUX-FACTS §3): ``requestedAt`` alone does
not (only ``status.lastHandledReconcileAt`` moves); ``requestedAt`` plus an
equal new ``forceAt`` runs an upgrade (revision N+1) and writes Ready fresh;
suspend/resume does not, unless ``suspend_clears_stuck`` (the older
behaviour); a ``/status`` write of Ready=True by someone else is kept.

Durations are cluster seconds multiplied by ``time_scale`` before waiting, so
a demo can compress minutes into seconds. Wall times written into objects come
from a clock that advances with the event loop's clock, which keeps them
consistent under a faked loop clock (looptime) too. Randomness (pod names,
holder UUIDs) comes from one seeded ``random.Random``.

It also tells the story as the real one does, in core/v1 Events on the
HelmRelease (``kubectl describe hr``, ``kubectl events --for hr/X``), recorded
through :class:`~fluxwatch.sim.events.EventRecorder` with the reasons, types,
messages and ``helm.toolkit.fluxcd.io/*`` annotations of helm-controller's
code: ``DependencyNotReady`` while a dependency is not Ready,
``HelmChartCreated`` when it first templates the HelmChart,
``PendingRelease`` when it unlocks a release a dead process left pending,
``InstallSucceeded``/``UpgradeSucceeded`` after Helm, ``UninstallSucceeded``
and ``HelmChartDeleted`` on deletion; for a failed action (:meth:`HelmController.fail`)
Warning ``InstallFailed``/``UpgradeFailed`` and the remediation's
``UninstallSucceeded``/``RollbackSucceeded``. An install cut short by a lost Lease
records nothing after ``HelmChartCreated``: the process that would have
written ``InstallSucceeded`` is gone, which is what a user of the stuck
release sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from fluxwatch.durations import format_duration as go_duration
from fluxwatch.durations import parse_duration
from fluxwatch.kube.fields import format_micro, format_rfc3339, parse_rfc3339
from fluxwatch.kube.helmrelease import (
    ANNOTATION_FORCE_AT,
    ANNOTATION_REQUESTED_AT,
    ANNOTATION_RESET_AT,
    FINALIZER,
    release_name,
)
from fluxwatch.kube.helmstorage import (
    SECRET_TYPE,
    StoredRelease,
    decode_release,
    encode_release,
    from_metadata,
    label_selector,
    newest,
    secret_name,
)
from fluxwatch.sim.events import NORMAL, WARNING, EventRecorder
from fluxwatch.sim.store import ApiError, Store

log = logging.getLogger(__name__)

HELMRELEASES = "helmreleases.helm.toolkit.fluxcd.io"
LEASES = "leases.coordination.k8s.io"
SECRETS = "secrets"

HELM_LEASE = "helm-controller-leader-election"
COMPONENT = "helm-controller"
# helm-controller's event metadata keys, as annotations on its Events (eventMeta in
# internal/reconcile/release.go): the chart version and the values digest.
META_REVISION = "helm.toolkit.fluxcd.io/revision"
META_TOKEN = "helm.toolkit.fluxcd.io/token"
META_APP_VERSION = "helm.toolkit.fluxcd.io/app-version"
DEFAULT_TIMEOUT = 300.0  # spec.timeout default: 5m0s
MAX_HISTORY = 5
_POD_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what ReplicaSets use for pod name suffixes


class SimClock:
    """Wall-clock epoch seconds that advance with the running loop's clock.

    Anchored on first use: ``time.time()`` then, plus however far ``loop.time()``
    moved since. Under looptime the loop clock is fake, and so are these times,
    consistently; without it they track real time.
    """

    def __init__(self, start: float | None = None) -> None:
        self._start = start
        self._origin: float | None = None  # wall time at loop time 0

    def __call__(self) -> float:
        loop_now = asyncio.get_running_loop().time()
        if self._origin is None:
            start = self._start if self._start is not None else time.time()
            self._origin = start - loop_now
        return self._origin + loop_now


@dataclass(frozen=True, slots=True)
class LeaseTimings:
    """controller-runtime's leader-election flags, as Flux sets them (FLUX-FACTS §5)."""

    lease_duration: float = 35.0
    renew_deadline: float = 30.0
    retry_period: float = 5.0


def _pod_name(rng: random.Random, deployment: str, template_hash: str) -> str:
    return f"{deployment}-{template_hash}-{''.join(rng.choices(_POD_CHARS, k=5))}"


class LeaseHolder:
    """One controller Deployment's leader election on ``<controller>-leader-election``.

    It models the pods as controller-runtime runs them: the leader renews every
    retry period; a pod that cannot renew for the renew deadline has lost
    leadership and exits, and the Deployment starts a new pod (a new identity)
    that acquires the Lease as client-go does: once it has seen the record
    unchanged for ``leaseDurationSeconds`` on its own clock, counted from its
    first look (a new process knows nothing older), incrementing
    ``leaseTransitions``. So a lost Lease leaves the controller leaderless for
    about the renew deadline plus the lease duration. ``renewTime`` is only
    written, never read as a time. A clean stop releases the Lease (empty
    holder, ``leaseDurationSeconds`` 1), which the next pod may take at once.

    Faults: :meth:`lose` (an API blip: renewals fail until leadership is lost,
    then a new pod takes over, a leader flip), :meth:`drop` (renewals fail and
    no pod comes back: leaderless until :meth:`restore`).
    """

    def __init__(
        self,
        store: Store,
        deployment: str,
        *,
        namespace: str = "flux-system",
        lease_name: str | None = None,
        timings: LeaseTimings = LeaseTimings(),
        time_scale: float = 1.0,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
        identity: str | None = None,
        on_started: Callable[[], Awaitable[None]] | None = None,
        on_stopped: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.deployment = deployment
        self.namespace = namespace
        self.lease_name = lease_name or f"{deployment}-leader-election"
        self.timings = timings
        self.time_scale = time_scale
        self.clock = clock or SimClock()
        self.rng = rng or random.Random(0)
        self._template_hash = "".join(self.rng.choices(_POD_CHARS, k=9))
        self.identity = identity or self._new_identity()
        self.leading = asyncio.Event()
        self._pod_down = asyncio.Event()  # set while no pod of this Deployment runs
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._last_renew = -math.inf
        # client-go's observedRecord and observedTime (loop time), per process.
        self._observed: dict[str, Any] | None = None
        self._observed_at = 0.0
        self._failing = False  # renewals fail (API blip for this pod)
        self._respawn = True  # a pod that lost leadership is replaced
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    # ---- public -----------------------------------------------------------------------

    @property
    def lease_duration_seconds(self) -> int:
        """The written duration: whole seconds, scaled, at least 1."""
        return max(1, math.ceil(self.timings.lease_duration * self.time_scale))

    async def start(self) -> None:
        """Start the pod; its first attempt to acquire is made before this returns."""
        if self._task is None:
            await self._step()
            self._task = asyncio.create_task(self._run(), name=f"lease:{self.lease_name}")

    async def stop(self, *, release: bool = True) -> None:
        """Stop the pod; a leader releases the Lease (empty holder) unless told not to."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.leading.is_set():
            self.leading.clear()
            if self._on_stopped is not None:
                await self._on_stopped()
            if release:
                self._release()

    def lose(self) -> None:
        """An API blip for the leader: it cannot renew, loses leadership, a new pod takes over."""
        self._failing = True
        self._respawn = True
        self._changed.set()

    def drop(self) -> None:
        """The leader stops renewing and no pod comes back: the controller is leaderless."""
        self._failing = True
        self._respawn = False
        self._changed.set()

    def restore(self) -> None:
        """Undo :meth:`drop`: a new pod starts and acquires the Lease once it expired."""
        self._respawn = True
        self._changed.set()

    async def wait_leader(self, other_than: str | None = None) -> str:
        """Wait until a pod leads (one other than ``other_than`` if given); its identity."""
        while not (self.leading.is_set() and self.identity != other_than):
            self._changed.clear()
            await self._changed.wait()
        return self.identity

    # ---- the election loop -------------------------------------------------------------

    def _new_identity(self) -> str:
        pod = _pod_name(self.rng, self.deployment, self._template_hash)
        return f"{pod}_{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"

    def _sleep(self, seconds: float) -> Awaitable[None]:
        return asyncio.sleep(seconds * self.time_scale)

    async def _run(self) -> None:
        while True:
            await self._sleep(self.timings.retry_period)
            await self._step()

    async def _step(self) -> None:
        """One retry period of client-go's loop: renew (or give up), or try to acquire."""
        loop = asyncio.get_running_loop()
        if self.leading.is_set():
            if not self._failing and self._try_acquire_or_renew():
                self._last_renew = loop.time()
            elif loop.time() - self._last_renew >= self.timings.renew_deadline * self.time_scale:
                await self._lost()
        elif self._pod_down.is_set():
            if self._respawn:
                # The Deployment replaces the pod: a new identity, healthy API access,
                # and no memory of the Lease.
                self._pod_down.clear()
                self.identity = self._new_identity()
                self._failing = False
                self._observed = None
        elif self._try_acquire_or_renew():
            self._last_renew = loop.time()
            self.leading.set()
            self._changed.set()
            log.info("lease %s acquired by %s", self.lease_name, self.identity)
            if self._on_started is not None:
                await self._on_started()

    async def _lost(self) -> None:
        """controller-runtime exits the process when it loses leadership."""
        log.info("lease %s lost by %s", self.lease_name, self.identity)
        self.leading.clear()
        self._pod_down.set()
        self._changed.set()
        if self._on_stopped is not None:
            await self._on_stopped()

    def _record(self, old: Mapping[str, Any] | None, now: float) -> dict[str, Any]:
        spec = dict(old or {})
        if spec.get("holderIdentity") != self.identity:
            # client-go counts every acquisition by a new holder, from an empty one too.
            if old is not None:
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            else:
                spec["leaseTransitions"] = 0
            spec["acquireTime"] = format_micro(now)
        spec["holderIdentity"] = self.identity
        spec["leaseDurationSeconds"] = self.lease_duration_seconds
        spec["renewTime"] = format_micro(now)
        return spec

    def _try_acquire_or_renew(self) -> bool:
        now = self.clock()
        try:
            lease = self.store.get(LEASES, self.namespace, self.lease_name)
        except ApiError as exc:
            if exc.code != 404:
                return False
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.lease_name, "namespace": self.namespace},
                "spec": self._record(None, now),
            }
            try:
                self.store.create(LEASES, body)
            except ApiError:
                return False
            return True
        spec = lease.get("spec") or {}
        loop_now = asyncio.get_running_loop().time()
        if spec != self._observed:
            self._observed, self._observed_at = dict(spec), loop_now
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity:
            duration = spec.get("leaseDurationSeconds") or 0
            if self._observed_at + duration > loop_now:  # written in loop seconds
                return False
        lease["spec"] = self._record(spec, now)
        try:
            self.store.update(LEASES, lease)
        except ApiError:
            return False  # 409: someone else wrote first; retry next period
        return True

    def _release(self) -> None:
        """ReleaseOnCancel: an empty holder, so the next pod need not wait for expiry."""
        try:
            lease = self.store.get(LEASES, self.namespace, self.lease_name)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            now = format_micro(self.clock())
            spec.update(holderIdentity="", leaseDurationSeconds=1, acquireTime=now, renewTime=now)
            lease["spec"] = spec
            self.store.update(LEASES, lease)
        except ApiError:
            log.info("lease %s not released: it changed under us", self.lease_name)


# ---- HelmRelease helpers -------------------------------------------------------------------


def parse_go_duration(text: str) -> float | None:
    """``metav1.Duration`` text (``5m``, ``1h30m``, ``300s``) in seconds, None when invalid."""
    try:
        return parse_duration(text) if text else None
    except ValueError:
        return None


def _digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def set_condition(
    conditions: list[dict[str, Any]],
    ctype: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: float,
) -> list[dict[str, Any]]:
    """A new conditions list with one condition set; ``lastTransitionTime`` moves only when
    the status changes (apimachinery's SetStatusCondition); Ready first, then by type
    (fluxcd/pkg's conditions setter)."""
    out = [c for c in conditions if c.get("type") != ctype]
    old = next((c for c in conditions if c.get("type") == ctype), None)
    ltt = (
        old.get("lastTransitionTime")
        if old is not None and old.get("status") == status and old.get("lastTransitionTime")
        else format_rfc3339(now)
    )
    out.append(
        {
            "lastTransitionTime": ltt,
            "message": message,
            "observedGeneration": generation,
            "reason": reason,
            "status": status,
            "type": ctype,
        }
    )
    return _sort_conditions(out)


def _sort_conditions(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(conditions, key=lambda c: (c.get("type") != "Ready", str(c.get("type"))))


def _condition(obj: Mapping[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return dict(c)
    return None


@dataclass(frozen=True, slots=True)
class Desired:
    """What a HelmRelease asks for, in the terms the in-sync check compares."""

    namespace: str  # of the HelmRelease
    name: str
    release: str
    target_namespace: str
    storage_namespace: str
    chart: str
    chart_version: str
    values: Any
    config_digest: str
    timeout: float
    source_kind: str = "HelmRepository"
    source_name: str = ""
    source_namespace: str = ""  # empty: the HelmRelease's namespace

    @property
    def helm_chart(self) -> str:
        """``status.helmChart``: the HelmChart the controller creates next to its source,
        ``<source namespace>/<ns>-<name>``."""
        return f"{self.source_namespace or self.namespace}/{self.namespace}-{self.name}"

    @property
    def full_release_name(self) -> str:
        """``<target namespace>/<release>``, as helm-controller's messages name a release."""
        return f"{self.target_namespace}/{self.release}"

    @property
    def versioned_chart(self) -> str:
        return f"{self.chart}@{self.chart_version}"

    def event_meta(self) -> dict[str, str]:
        """helm-controller's ``eventMeta``: what its release Events carry as annotations."""
        return {
            META_APP_VERSION: self.chart_version,
            META_REVISION: self.chart_version,
            META_TOKEN: self.config_digest,
        }

    @staticmethod
    def of(obj: Mapping[str, Any]) -> Desired:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        name, namespace = meta["name"], meta["namespace"]
        chart_spec = ((spec.get("chart") or {}).get("spec")) or {}
        target = spec.get("targetNamespace") or namespace
        values = spec.get("values") or {}
        source = chart_spec.get("sourceRef") or {}
        return Desired(
            namespace=namespace,
            name=name,
            release=release_name(name, spec.get("releaseName"), spec.get("targetNamespace")),
            target_namespace=target,
            storage_namespace=spec.get("storageNamespace") or namespace,
            chart=chart_spec.get("chart") or name,
            chart_version=chart_spec.get("version") or "0.1.0",
            values=values,
            config_digest=_digest(values),
            timeout=parse_go_duration(spec.get("timeout") or "") or DEFAULT_TIMEOUT,
            source_kind=source.get("kind") or "HelmRepository",
            source_name=source.get("name") or "",
            source_namespace=source.get("namespace") or namespace,
        )


@dataclass(frozen=True, slots=True)
class Remediation:
    """``spec.install.remediation`` and ``spec.upgrade.remediation`` as helm-controller v1.x
    reads them (api/v2/helmrelease_types.go): ``retries`` defaults to 0 and -1 means
    without end; retries are exhausted when the failure count exceeds them; the last
    failure is remediated when ``remediateLastFailure`` says so, which defaults to false
    for installs and to ``retries > 0`` for upgrades."""

    retries: int = 0
    remediate_last_failure: bool = False

    def exhausted(self, failures: int) -> bool:
        return self.retries >= 0 and failures > self.retries

    @staticmethod
    def of(obj: Mapping[str, Any], action: str) -> Remediation:
        spec = (obj.get("spec") or {}).get(action) or {}
        raw = spec.get("remediation") or {}
        retries = int(raw.get("retries") or 0)
        last = raw.get("remediateLastFailure")
        if last is None:
            last = action == "upgrade" and retries > 0
        return Remediation(retries, bool(last))


@dataclass(frozen=True, slots=True)
class Failure:
    """How a Helm action of one release ends while the cause lasts (:meth:`HelmController.fail`).

    ``stored``: Helm wrote the release (revision ``failed``) before failing, as an upgrade
    whose wait timed out does; the failure counts towards remediation. Otherwise Helm
    never reached its storage (the API was away): nothing to remediate, nothing counted,
    and controller-runtime requeues with its backoff (upgrade.go, install.go).
    """

    error: str
    stored: bool = True


def helm_release_payload(
    desired: Desired, version: int, status: str, action: str, first: str, last: str
) -> dict[str, Any]:
    """A Helm v3 ``release.Release`` as Helm serialises it into the storage Secret."""
    return {
        "name": desired.release,
        "namespace": desired.target_namespace,
        "version": version,
        "info": {
            "first_deployed": first,
            "last_deployed": last,
            "deleted": "",
            "description": "Install complete" if action == "install" else "Upgrade complete",
            "status": status,
        },
        "chart": {
            "metadata": {
                "name": desired.chart,
                "version": desired.chart_version,
                "appVersion": desired.chart_version,
                "apiVersion": "v2",
                "description": f"A Helm chart for {desired.chart}",
                "type": "application",
            },
            "lock": None,
            "templates": [],
            "values": {},
            "schema": None,
            "files": [],
        },
        "config": desired.values,
        "manifest": f"---\n# Source: {desired.chart}/templates/deployment.yaml\n",
    }


def helm_release_secret(
    desired: Desired,
    version: int,
    status: str,
    action: str,
    now: float,
    first_deployed: float | None = None,
) -> dict[str, Any]:
    """The storage Secret of one revision, as Helm's Secrets driver writes it (FLUX-FACTS §4)."""
    first = format_micro(first_deployed if first_deployed is not None else now)
    payload = helm_release_payload(desired, version, status, action, first, format_micro(now))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(desired.release, version),
            "namespace": desired.storage_namespace,
            "labels": {
                "createdAt": str(int(now)),
                "name": desired.release,
                "owner": "helm",
                "status": status,
                "version": str(version),
            },
        },
        "type": SECRET_TYPE,
        "data": {"release": encode_release(payload)},
    }


def snapshot(
    desired: Desired, version: int, action: str, first: float, last: float, digest: str
) -> dict[str, Any]:
    """One ``status.history`` entry as helm-controller v1.x writes it (FLUX-FACTS §2)."""
    return {
        "action": action,
        "appVersion": desired.chart_version,
        "chartName": desired.chart,
        "chartVersion": desired.chart_version,
        "configDigest": desired.config_digest,
        "digest": digest,
        "firstDeployed": format_rfc3339(first),
        "lastDeployed": format_rfc3339(last),
        "name": desired.release,
        "namespace": desired.target_namespace,
        "status": "deployed",
        "version": version,
    }


def success_message(desired: Desired, version: int, action: str) -> str:
    verb = "install" if action == "install" else "upgrade"
    return (
        f"Helm {verb} succeeded for release {desired.full_release_name}.v{version} "
        f"with chart {desired.versioned_chart}"
    )


def success_reason(action: str) -> str:
    return "InstallSucceeded" if action == "install" else "UpgradeSucceeded"


def ready_status(
    desired: Desired,
    *,
    generation: int,
    version: int,
    action: str,
    first: float,
    last: float,
    transition: float,
) -> dict[str, Any]:
    """The whole status of a HelmRelease after a successful release (FLUX-FACTS §2)."""
    message = success_message(desired, version, action)
    reason = success_reason(action)
    ltt = format_rfc3339(transition)
    conditions = [
        {
            "lastTransitionTime": ltt,
            "message": message,
            "observedGeneration": generation,
            "reason": reason,
            "status": "True",
            "type": t,
        }
        for t in ("Ready", "Released")
    ]
    release_digest = _digest([desired.release, version, desired.chart_version, last])
    return {
        "conditions": conditions,
        "helmChart": desired.helm_chart,
        "history": [snapshot(desired, version, action, first, last, release_digest)],
        "lastAttemptedConfigDigest": desired.config_digest,
        "lastAttemptedGeneration": generation,
        "lastAttemptedReleaseAction": action,
        "lastAttemptedRevision": desired.chart_version,
        "observedGeneration": generation,
        "storageNamespace": desired.storage_namespace,
    }


def stuck_status(desired: Desired, *, first: float, since: float) -> dict[str, Any]:
    """The whole status of a first install whose final Ready write was lost (FLUX-FACTS §1,
    §2): ``history[0]`` deployed at ``first``, ``Ready=Unknown/Progressing`` since ``since``."""
    message = f"Running 'install' action with timeout of {go_duration(desired.timeout)}"
    return {
        "conditions": [
            {
                "lastTransitionTime": format_rfc3339(since),
                "message": message,
                "observedGeneration": 1,
                "reason": "Progressing",
                "status": "Unknown",
                "type": "Ready",
            }
        ],
        "helmChart": desired.helm_chart,
        "history": [snapshot(desired, 1, "install", first, since, f"sha256:{1:064x}")],
        "lastAttemptedConfigDigest": desired.config_digest,
        "lastAttemptedGeneration": 1,
        "lastAttemptedReleaseAction": "install",
        "lastAttemptedRevision": desired.chart_version,
        "observedGeneration": -1,
        "storageNamespace": desired.storage_namespace,
    }


# ---- the controller ------------------------------------------------------------------------

InstallDuration = float | Callable[[Mapping[str, Any]], float]


@dataclass(slots=True)
class _InFlight:
    """A Helm action between its first status write and its last."""

    key: tuple[str, str]
    desired: Desired
    version: int
    action: str
    first_deployed: float


class HelmController:
    """The simulated helm-controller; see the module docstring.

    ``install_duration`` is the cluster seconds a Helm install or upgrade takes,
    or a function of the HelmRelease object giving them. ``bug`` keeps the
    upstream in-sync path that never rewrites Ready; ``suspend_clears_stuck``
    makes a resume (a new generation) run an upgrade, the older behaviour.

    Failures (:meth:`fail`): a failed install or upgrade is written as
    ``Released=False``/``Ready=False`` with reason ``InstallFailed`` or
    ``UpgradeFailed`` and a Warning Event of that reason; a failure Helm stored
    counts in ``status.installFailures``/``upgradeFailures`` and is remediated
    (an install uninstalled, an upgrade rolled back: ``Remediated=True``, Ready
    mirrors it) and retried after ``remediation_requeue`` while retries remain;
    once they are exhausted the release is ``Stalled=True`` reason
    ``RetriesExceeded`` (``Failed to <action> after <n> attempt(s)``) and is
    not retried. A new generation, chart version or values, or a
    ``reconcile.fluxcd.io/resetAt`` equal to a new ``requestedAt``, clears the
    counters (``MustResetFailures`` in internal/action/reset.go) and the
    release is tried again; ``status.lastHandledResetAt`` records the token.
    """

    def __init__(
        self,
        store: Store,
        *,
        namespace: str = "flux-system",
        identity: str | None = None,
        lease_duration: float = 35.0,
        renew_deadline: float = 30.0,
        retry_period: float = 5.0,
        time_scale: float = 1.0,
        install_duration: InstallDuration = 20.0,
        concurrent: int = 4,
        requeue_dependency: float = 5.0,
        suspend_clears_stuck: bool = False,
        bug: bool = True,
        seed: int = 0,
        clock: Callable[[], float] | None = None,
        remediation_requeue: float = 1.0,
        error_backoff: float = 300.0,
    ) -> None:
        self.store = store
        # After a remediation controller-runtime requeues at once (ErrMustRequeue), through
        # its rate limiter; after an error that stored nothing it backs off, which a blip of
        # minutes has grown to minutes (its per-object limiter doubles up to 1000s).
        self.remediation_requeue = remediation_requeue
        self.error_backoff = error_backoff
        self._failing: dict[tuple[str, str], Failure] = {}
        self.namespace = namespace
        self.time_scale = time_scale
        self.install_duration = install_duration
        self.requeue_dependency = requeue_dependency
        self.suspend_clears_stuck = suspend_clears_stuck
        self.bug = bug
        self.clock = clock or SimClock()
        self.recorder = EventRecorder(store, COMPONENT, self.clock)
        self.lease = LeaseHolder(
            store,
            "helm-controller",
            namespace=namespace,
            timings=LeaseTimings(lease_duration, renew_deadline, retry_period),
            time_scale=time_scale,
            clock=self.clock,
            rng=random.Random(seed),
            identity=identity,
            on_started=self._started_leading,
            on_stopped=self._stopped_leading,
        )
        self._slots = asyncio.Semaphore(concurrent)
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._seen: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._requeues: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._inflight: dict[tuple[str, str], _InFlight] = {}
        self._manager: asyncio.Task[None] | None = None
        self._losing = False
        self._idle = asyncio.Event()
        self._idle.set()

    # ---- public -----------------------------------------------------------------------

    @property
    def identity(self) -> str:
        return self.lease.identity

    @property
    def is_leader(self) -> bool:
        return self.lease.leading.is_set()

    @property
    def in_flight(self) -> frozenset[tuple[str, str]]:
        """HelmReleases whose Helm action is running now."""
        return frozenset(self._inflight)

    async def start(self) -> None:
        await self.lease.start()

    async def stop(self) -> None:
        """A clean shutdown: stop reconciling, release the Lease."""
        await self._stop_manager(cut=False)
        await self.lease.stop(release=True)

    def lose_lease(self) -> None:
        """The leader loses its Lease (API blip); a new pod takes over after expiry."""
        self.lease.lose()

    def drop_lease(self) -> None:
        """The leader stops renewing and nobody takes over: leaderless until restore_lease()."""
        self.lease.drop()

    def restore_lease(self) -> None:
        self.lease.restore()

    async def wait_leader(self, other_than: str | None = None) -> str:
        return await self.lease.wait_leader(other_than)

    async def flap(self, times: int) -> None:
        """``times`` leader flips in a row, each waiting for the new leader."""
        for _ in range(times):
            old = self.identity
            self.lose_lease()
            await self.wait_leader(other_than=old)

    async def wait_idle(self) -> None:
        """Wait until no reconcile runs or waits to run (requeues after a delay excepted)."""
        while True:
            await self._idle.wait()
            await asyncio.sleep(0)  # let just-triggered workers register
            if self._idle.is_set():
                return

    def fail(self, namespace: str, name: str, error: str, *, stored: bool = True) -> None:
        """Every Helm action of this release fails with ``error`` until :meth:`heal`."""
        self._failing[(namespace, name)] = Failure(error, stored)

    def heal(self, namespace: str, name: str) -> None:
        """The cause is gone: Helm actions of this release succeed again."""
        self._failing.pop((namespace, name), None)

    def trigger(self, namespace: str, name: str) -> None:
        """Queue a reconcile of one HelmRelease (the work queue, one worker per object)."""
        key = (namespace, name)
        if not self.is_leader:
            return
        if key in self._workers:
            self._dirty.add(key)
            return
        self._idle.clear()
        self._workers[key] = asyncio.create_task(self._work(key), name=f"hr:{namespace}/{name}")

    # ---- leadership -------------------------------------------------------------------

    async def _started_leading(self) -> None:
        self._manager = asyncio.create_task(self._watch(), name="helm-controller:watch")

    async def _stopped_leading(self) -> None:
        await self._stop_manager(cut=True)

    async def _stop_manager(self, *, cut: bool) -> None:
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await manager
        for handle in self._requeues.values():
            handle.cancel()
        self._requeues.clear()
        self._losing = cut
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        try:
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            self._losing = False
        self._workers.clear()
        self._dirty.clear()
        self._seen.clear()
        self._idle.set()

    async def _watch(self) -> None:
        """The informer: list, reconcile everything once, then react to watch events."""
        items, rv = self.store.list(HELMRELEASES)
        for obj in items:
            self._remember(obj)
            self.trigger(obj["metadata"]["namespace"], obj["metadata"]["name"])
        watcher = self.store.watch(HELMRELEASES, resource_version=rv)
        try:
            async for event in watcher:
                md = event.object["metadata"]
                key = (md["namespace"], md["name"])
                if event.type == "DELETED":
                    self._seen.pop(key, None)
                    continue
                if self._remember(event.object):
                    self.trigger(*key)
        finally:
            watcher.close()

    def _remember(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object changed in a way that makes controller-runtime reconcile:
        a new generation, a new requestedAt token, deletion (not status writes)."""
        md = obj["metadata"]
        sig = (
            md.get("generation"),
            (md.get("annotations") or {}).get(ANNOTATION_REQUESTED_AT),
            bool(md.get("deletionTimestamp")),
        )
        key = (md["namespace"], md["name"])
        changed = self._seen.get(key) != sig
        self._seen[key] = sig
        return changed

    # ---- the work queue ---------------------------------------------------------------

    async def _work(self, key: tuple[str, str]) -> None:
        try:
            while True:
                async with self._slots:
                    try:
                        await self._reconcile(key)
                    except ApiError as exc:
                        # A conflict or a vanished object: controller-runtime requeues.
                        log.info("reconcile %s/%s: %s", *key, exc)
                        if exc.code == 409:
                            self._dirty.add(key)
                    except Exception:
                        # A bug in the simulator must show, not silently stall one object.
                        log.exception("reconcile %s/%s failed", *key)
                if key not in self._dirty:
                    break
                self._dirty.discard(key)
        finally:
            if self._workers.get(key) is asyncio.current_task():
                del self._workers[key]
            if not self._workers:
                self._idle.set()

    def _requeue(self, key: tuple[str, str], after: float) -> None:
        old = self._requeues.pop(key, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._requeues.pop(key, None)
            self.trigger(*key)

        loop = asyncio.get_running_loop()
        self._requeues[key] = loop.call_later(after * self.time_scale, fire)

    # ---- reconcile --------------------------------------------------------------------

    def _patch_status(self, obj: Mapping[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        md = obj["metadata"]
        return self.store.patch(
            HELMRELEASES, md["namespace"], md["name"], {"status": status}, subresource="status"
        )

    def _stored(self, desired: Desired) -> list[StoredRelease]:
        items, _ = self.store.list(
            SECRETS, desired.storage_namespace, label_selector=label_selector(desired.release)
        )
        return [r for r in map(from_metadata, items) if r is not None]

    async def _reconcile(self, key: tuple[str, str]) -> None:
        try:
            obj = self.store.get(HELMRELEASES, *key)
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        md, spec = obj["metadata"], obj.get("spec") or {}
        status = obj.get("status") or {}
        if md.get("deletionTimestamp"):
            # A suspended HelmRelease is let go without a Helm uninstall, as Flux does.
            self._uninstall(obj, helm=not spec.get("suspend"))
            return
        if spec.get("suspend"):
            return  # "Reconciliation is suspended for this object"
        if FINALIZER not in (md.get("finalizers") or ()):
            obj = self.store.patch(
                HELMRELEASES,
                *key,
                {
                    "metadata": {
                        "finalizers": [*(md.get("finalizers") or ()), FINALIZER],
                        "resourceVersion": md["resourceVersion"],
                    }
                },
            )
            md = obj["metadata"]
        generation = int(md.get("generation") or 1)
        if not self._dependencies_ready(obj, generation):
            return

        desired = Desired.of(obj)
        annotations = md.get("annotations") or {}
        requested = annotations.get(ANNOTATION_REQUESTED_AT)
        forced = annotations.get(ANNOTATION_FORCE_AT)
        handled: dict[str, Any] = {}
        if requested and requested != status.get("lastHandledReconcileAt"):
            handled["lastHandledReconcileAt"] = requested
        force = bool(forced) and forced == requested and forced != status.get("lastHandledForceAt")
        if force:
            handled["lastHandledForceAt"] = forced
        failures = self._failures(obj, desired, handled)

        stored = self._stored(desired)
        current = newest(stored)
        history = status.get("history") or []
        latest = history[0] if history and isinstance(history[0], dict) else None

        if current is None or current.status == "uninstalled":
            if Remediation.of(obj, "install").exhausted(failures["install"]) and not force:
                self._stall(obj, "install", failures["install"], handled)
                return
            await self._release(obj, desired, "install", stored, handled)
            return
        if current.status == "failed":
            # ReleaseStatusFailed (atomic_release.go): counters cleared since the failure
            # (a reset, a new generation) or a force mean "upgrade and see".
            action = status.get("lastAttemptedReleaseAction") or "upgrade"
            count = failures.get(action, 0)
            remediation = Remediation.of(obj, action)
            if count <= 0 or force:
                await self._release(obj, desired, "upgrade", stored, handled)
            elif remediation.exhausted(count) and not remediation.remediate_last_failure:
                self._stall(obj, action, count, handled)
            else:
                self._remediate(obj, desired, action, current.version, count, handled)
            return
        if current.status.startswith("pending-"):
            # Unlock: a release left pending by a dead process is marked failed, then upgraded.
            self._set_secret_status(desired, current.version, "failed")
            self.recorder.event(
                obj,
                NORMAL,
                "PendingRelease",
                f"Unlocked Helm release {desired.full_release_name}.v{current.version} with "
                f"chart {desired.versioned_chart} in {current.status} state",
                desired.event_meta(),
            )
            await self._release(obj, desired, "upgrade", stored, handled)
            return
        in_sync = (
            current.status == "deployed"
            and latest is not None
            and latest.get("version") == current.version
            and latest.get("name") == desired.release
            and latest.get("chartVersion") == desired.chart_version
            and latest.get("configDigest") == desired.config_digest
        )
        exhausted = Remediation.of(obj, "upgrade").exhausted(failures["upgrade"])
        if not in_sync and not force and exhausted:
            self._stall(obj, "upgrade", failures["upgrade"], handled)
            return
        if not in_sync or force:
            await self._release(obj, desired, "upgrade", stored, handled)
            return

        released = _condition(obj, "Released")
        if released is not None:
            self._summarize(obj, released, handled)
            return
        if not self.bug:
            # The fixed controller re-derives Released from the release it finds in storage.
            self._write_success(obj, desired, current.version, latest, handled)
            return
        # helm-controller#1409: Ready is summarised from Released, which the interrupted
        # release never wrote, so the in-sync path leaves Ready as it is.
        new_generation = status.get("lastAttemptedGeneration") != generation
        if new_generation and self.suspend_clears_stuck:
            await self._release(obj, desired, "upgrade", stored, handled)
            return
        if handled:
            self._patch_status(obj, handled)

    def _summarize(
        self, obj: Mapping[str, Any], released: Mapping[str, Any], handled: dict[str, Any]
    ) -> None:
        """In sync: Ready mirrors Released (fluxcd's summarize), so a Ready=True written
        through /status together with Released=True is kept."""
        generation = int(obj["metadata"].get("generation") or 1)
        status = obj.get("status") or {}
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "Reconciling"]
        conds = set_condition(
            conds,
            "Ready",
            str(released.get("status")),
            str(released.get("reason") or ""),
            str(released.get("message") or ""),
            generation,
            self.clock(),
        )
        self._patch_status(
            obj,
            {
                **handled,
                "conditions": conds,
                "observedGeneration": generation,
                "lastAttemptedGeneration": generation,
            },
        )

    def _failures(
        self, obj: Mapping[str, Any], desired: Desired, handled: dict[str, Any]
    ) -> dict[str, int]:
        """The install and upgrade failure counts this reconcile goes by, after
        ``MustResetFailures``: a reset request (``resetAt`` equal to a new ``requestedAt``,
        fluxcd/pkg's HandleAnnotationRequest), a new generation, chart version or values
        clear them. ``lastHandledResetAt`` takes any resetAt seen, handled or not."""
        md = obj["metadata"]
        status = obj.get("status") or {}
        annotations = md.get("annotations") or {}
        reset_at = annotations.get(ANNOTATION_RESET_AT)
        requested = annotations.get(ANNOTATION_REQUESTED_AT)
        reset = (
            bool(reset_at)
            and reset_at == requested
            and requested != status.get("lastHandledReconcileAt")
            and reset_at != status.get("lastHandledResetAt")
        )
        if reset_at and reset_at != status.get("lastHandledResetAt"):
            handled["lastHandledResetAt"] = reset_at
        counts = {
            "install": int(status.get("installFailures") or 0),
            "upgrade": int(status.get("upgradeFailures") or 0),
        }
        attempted = status.get("lastAttemptedGeneration")
        changed = attempted is not None and (
            attempted != md.get("generation")
            or status.get("lastAttemptedRevision") != desired.chart_version
            or status.get("lastAttemptedConfigDigest") != desired.config_digest
        )
        if (reset or changed) and any(counts.values()):
            handled.update(installFailures=None, upgradeFailures=None, failures=None)
            counts = {"install": 0, "upgrade": 0}
        return counts

    def _stall(
        self, obj: Mapping[str, Any], action: str, count: int, handled: dict[str, Any]
    ) -> None:
        """ErrExceededMaxRetries: Stalled=True RetriesExceeded, no Reconciling, no requeue;
        Ready keeps the failure (or the remediation) it summarised. A stalled object's
        generation counts as observed (the controller's deferred patch)."""
        generation = int(obj["metadata"].get("generation") or 1)
        status = obj.get("status") or {}
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "Reconciling"]
        conds = set_condition(
            conds,
            "Stalled",
            "True",
            "RetriesExceeded",
            f"Failed to {action} after {count} attempt(s)",
            generation,
            self.clock(),
        )
        self._patch_status(obj, {**handled, "conditions": conds, "observedGeneration": generation})

    async def _failed(self, obj: dict[str, Any], flight: _InFlight, failure: Failure) -> None:
        """The Helm action ended in ``failure`` (install.go/upgrade.go ``failure``): Released
        and Ready False with <Action>Failed and a Warning Event; a stored failure counts and
        goes on to remediation or a stall, one that stored nothing is retried after the
        controller's backoff."""
        desired, action, version = flight.desired, flight.action, flight.version
        generation = int(obj["metadata"].get("generation") or 1)
        status = obj.get("status") or {}
        now = self.clock()
        verb = "install" if action == "install" else "upgrade"
        reason = "InstallFailed" if verb == "install" else "UpgradeFailed"
        message = (
            f"Helm {verb} failed for release {desired.target_namespace}/{desired.release} "
            f"with chart {desired.versioned_chart}: {failure.error}"
        )
        conds = list(status.get("conditions") or [])
        conds = set_condition(conds, "Released", "False", reason, message, generation, now)
        conds = set_condition(conds, "Ready", "False", reason, message, generation, now)
        update: dict[str, Any] = {"conditions": conds}
        counter = "installFailures" if verb == "install" else "upgradeFailures"
        count = int(status.get(counter) or 0)
        if failure.stored:
            self._set_secret_status(desired, version, "failed")
            count += 1
            update[counter] = count
            update["failures"] = int(status.get("failures") or 0) + 1
            update["history"] = [
                {
                    **snapshot(
                        desired,
                        version,
                        action,
                        flight.first_deployed,
                        now,
                        _digest([desired.release, version, now]),
                    ),
                    "status": "failed",
                },
                *[h for h in status.get("history") or [] if isinstance(h, dict)],
            ][:MAX_HISTORY]
        obj = self._patch_status(obj, update)
        self.recorder.event(obj, WARNING, reason, message, desired.event_meta())
        key = flight.key
        if not failure.stored:
            self._retrying(obj, key, self.error_backoff)
            return
        remediation = Remediation.of(obj, verb)
        if remediation.exhausted(count) and not remediation.remediate_last_failure:
            self._stall(obj, verb, count, {})
            return
        self._remediate(obj, desired, verb, version, count, {})

    def _remediate(
        self,
        obj: Mapping[str, Any],
        desired: Desired,
        action: str,
        version: int,
        count: int,
        handled: dict[str, Any],
    ) -> None:
        """Remediate a stored failure: an install is uninstalled (its Secrets go), an upgrade
        rolled back to the previous release as a new revision. Remediated=True and Ready
        mirrors it (summarize: a remediated state is an error); then a retry, or a stall
        when that was the last failure (``MustStop``'s early stall)."""
        generation = int(obj["metadata"].get("generation") or 1)
        status = obj.get("status") or {}
        history = [h for h in status.get("history") or [] if isinstance(h, dict)]
        now = self.clock()
        update: dict[str, Any] = {**handled}
        target = f"{desired.full_release_name}.v{version}"
        if action == "install":
            for rel in self._stored(desired):
                with contextlib.suppress(ApiError):
                    self.store.delete(SECRETS, desired.storage_namespace, rel.secret_name)
            reason = "UninstallSucceeded"
            message = (
                f"Helm uninstall remediation for release {target} with chart "
                f"{desired.versioned_chart} succeeded"
            )
            if history:
                update["history"] = [{**history[0], "status": "uninstalled"}, *history[1:]]
        else:
            previous = next(
                (h for h in history if h.get("status") in ("deployed", "superseded")), None
            )
            if previous is None:
                self._stall(obj, action, count, handled)
                return
            rollback = max((r.version for r in self._stored(desired)), default=version) + 1
            chart = f"{previous.get('chartName')}@{previous.get('chartVersion')}"
            old = dataclasses.replace(
                desired,
                chart_version=str(previous.get("chartVersion") or desired.chart_version),
                config_digest=str(previous.get("configDigest") or desired.config_digest),
            )
            for rel in self._stored(desired):
                if rel.status == "deployed":
                    self._set_secret_status(desired, rel.version, "superseded")
            first = self._first_deployed(desired, self._stored(desired))
            self.store.create(
                SECRETS, helm_release_secret(old, rollback, "deployed", "upgrade", now, first)
            )
            reason = "RollbackSucceeded"
            message = (
                f"Helm rollback to previous release {desired.full_release_name}"
                f".v{previous.get('version')} with chart {chart} succeeded"
            )
            update["history"] = [
                snapshot(old, rollback, "upgrade", first, now, _digest([rollback, now])),
                *(
                    {**h, "status": "superseded"} if h.get("status") == "deployed" else h
                    for h in history
                ),
            ][:MAX_HISTORY]
        conds = list(status.get("conditions") or [])
        conds = set_condition(conds, "Remediated", "True", reason, message, generation, now)
        conds = set_condition(conds, "Ready", "False", reason, message, generation, now)
        obj = self._patch_status(obj, {**update, "conditions": conds})
        self.recorder.event(obj, NORMAL, reason, message, desired.event_meta())
        if Remediation.of(obj, action).exhausted(count):
            self._stall(obj, action, count, {})
            return
        self._retrying(obj, (desired.namespace, desired.name), self.remediation_requeue)

    def _retrying(self, obj: Mapping[str, Any], key: tuple[str, str], after: float) -> None:
        """Reconciling=True ProgressingWithRetry with Ready's message, and a requeue."""
        generation = int(obj["metadata"].get("generation") or 1)
        ready = _condition(obj, "Ready") or {}
        conds = set_condition(
            list((obj.get("status") or {}).get("conditions") or []),
            "Reconciling",
            "True",
            "ProgressingWithRetry",
            str(ready.get("message") or ""),
            generation,
            self.clock(),
        )
        self._patch_status(obj, {"conditions": conds})
        self._requeue(key, after)

    def _dependencies_ready(self, obj: Mapping[str, Any], generation: int) -> bool:
        md = obj["metadata"]
        for dep in (obj.get("spec") or {}).get("dependsOn") or ():
            ns = dep.get("namespace") or md["namespace"]
            name = dep.get("name")
            try:
                other = self.store.get(HELMRELEASES, ns, name)
                ready = _condition(other, "Ready")
                ok = (
                    ready is not None
                    and ready.get("status") == "True"
                    and (other.get("status") or {}).get("observedGeneration")
                    == other["metadata"].get("generation")
                )
            except ApiError:
                ok = False
            if not ok:
                now = self.clock()
                message = f"dependency '{ns}/{name}' is not ready"
                conds = set_condition(
                    list((obj.get("status") or {}).get("conditions") or []),
                    "Ready",
                    "False",
                    "DependencyNotReady",
                    message,
                    generation,
                    now,
                )
                obj = self._patch_status(obj, {"conditions": conds})
                # A normal wait, so a Normal Event (FLUX-FACTS §7); repeats fold into one.
                self.recorder.event(obj, NORMAL, "DependencyNotReady", message)
                self._requeue((md["namespace"], md["name"]), self.requeue_dependency)
                return False
        return True

    def _duration(self, obj: Mapping[str, Any]) -> float:
        d = self.install_duration
        return d(obj) if callable(d) else d

    async def _release(
        self,
        obj: dict[str, Any],
        desired: Desired,
        action: str,
        stored: list[StoredRelease],
        handled: dict[str, Any],
    ) -> None:
        """One Helm install or upgrade, written as v1.x writes it (FLUX-FACTS §2, §4)."""
        md = obj["metadata"]
        key = (md["namespace"], md["name"])
        generation = int(md.get("generation") or 1)
        now = self.clock()
        message = f"Running '{action}' action with timeout of {go_duration(desired.timeout)}"
        status = obj.get("status") or {}
        if status.get("helmChart") != desired.helm_chart:
            # The HelmChart template step runs first; a trace Event reaches Kubernetes as Normal.
            chart_ns = desired.source_namespace or desired.namespace
            self.recorder.event(
                obj,
                NORMAL,
                "HelmChartCreated",
                f"HelmChart/{desired.helm_chart} created with SourceRef "
                f"'{desired.source_kind}/{chart_ns}/{desired.source_name}'",
            )
        # A release action starts afresh: install.go/upgrade.go drop Remediated first.
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "Remediated"]
        conds = set_condition(conds, "Reconciling", "True", "Progressing", message, generation, now)
        conds = set_condition(conds, "Ready", "Unknown", "Progressing", message, generation, now)
        obj = self._patch_status(
            obj,
            {
                **handled,
                "conditions": conds,
                "helmChart": desired.helm_chart,
                "lastAttemptedConfigDigest": desired.config_digest,
                "lastAttemptedGeneration": generation,
                "lastAttemptedReleaseAction": action,
                "lastAttemptedRevision": desired.chart_version,
                "storageNamespace": desired.storage_namespace,
            },
        )
        version = max((r.version for r in stored), default=0) + 1
        first = self._first_deployed(desired, stored) if action == "upgrade" else now
        flight = _InFlight(key, desired, version, action, first)
        failure = self._failing.get(key)
        if failure is not None and not failure.stored:
            await self._failed(obj, flight, failure)  # Helm never reached its storage
            return
        pending = "pending-install" if action == "install" else "pending-upgrade"
        self.store.create(
            SECRETS, helm_release_secret(desired, version, pending, action, now, first)
        )
        self._inflight[key] = flight
        try:
            await asyncio.sleep(self._duration(obj) * self.time_scale)
        except asyncio.CancelledError:
            if self._losing:
                self._cut(flight)
            raise
        finally:
            self._inflight.pop(key, None)
        failure = self._failing.get(key)
        if failure is not None:
            # The cause is read when Helm ends: an action that outlived it succeeds.
            await self._failed(self.store.get(HELMRELEASES, *key), flight, failure)
            return
        self._helm_done(flight)
        obj = self.store.get(HELMRELEASES, *key)
        obj = self._write_success(obj, desired, version, None, {}, action=action, first=first)
        self.recorder.event(
            obj,
            NORMAL,
            success_reason(action),
            success_message(desired, version, action),
            desired.event_meta(),
        )

    def _first_deployed(self, desired: Desired, stored: list[StoredRelease]) -> float:
        oldest = min(stored, key=lambda r: r.version, default=None)
        if oldest is None:
            return self.clock()
        try:
            secret = self.store.get(SECRETS, desired.storage_namespace, oldest.secret_name)
            info = decode_release(secret["data"]["release"])["info"]
            return parse_rfc3339(info["first_deployed"])
        except (ApiError, KeyError, ValueError):
            return self.clock()

    def _helm_done(self, flight: _InFlight) -> None:
        """Helm finished: the new revision is deployed, the previous one superseded."""
        for rel in self._stored(flight.desired):
            if rel.version != flight.version and rel.status == "deployed":
                self._set_secret_status(flight.desired, rel.version, "superseded")
        self._set_secret_status(flight.desired, flight.version, "deployed")

    def _set_secret_status(self, desired: Desired, version: int, status: str) -> None:
        name = secret_name(desired.release, version)
        secret = self.store.get(SECRETS, desired.storage_namespace, name)
        payload = decode_release(secret["data"]["release"])
        payload["info"]["status"] = status
        labels = dict(secret["metadata"].get("labels") or {})
        labels.update(status=status, modifiedAt=str(int(self.clock())))
        secret["metadata"]["labels"] = labels
        secret["data"]["release"] = encode_release(payload)
        self.store.update(SECRETS, secret)

    def _cut(self, flight: _InFlight) -> None:
        """Leadership lost while Helm ran (FLUX-FACTS §1): Helm's storage write and the
        history landed, the final Ready write did not. The upstream shape: one condition,
        Ready=Unknown/Progressing, no Reconciling, no Released."""
        log.info("leadership lost during %s of %s/%s", flight.action, *flight.key)
        self._helm_done(flight)
        obj = self.store.get(HELMRELEASES, *flight.key)
        status = obj.get("status") or {}
        ready = _condition(obj, "Ready")
        now = self.clock()
        release_digest = _digest([flight.desired.release, flight.version, now])
        history = [
            snapshot(
                flight.desired,
                flight.version,
                flight.action,
                flight.first_deployed,
                now,
                release_digest,
            ),
            *[h for h in status.get("history") or [] if isinstance(h, dict)],
        ][:MAX_HISTORY]
        self._patch_status(obj, {"conditions": [ready] if ready else [], "history": history})

    def _write_success(
        self,
        obj: Mapping[str, Any],
        desired: Desired,
        version: int,
        latest: Mapping[str, Any] | None,
        handled: dict[str, Any],
        *,
        action: str | None = None,
        first: float | None = None,
    ) -> dict[str, Any]:
        md = obj["metadata"]
        status = obj.get("status") or {}
        generation = int(md.get("generation") or 1)
        now = self.clock()
        if action is None:
            action = (latest or {}).get("action") or status.get("lastAttemptedReleaseAction")
            action = action or "install"
        message = success_message(desired, version, action)
        reason = success_reason(action)
        conds = [
            c
            for c in status.get("conditions") or []
            if c.get("type") not in ("Reconciling", "Stalled", "Remediated")
        ]
        conds = set_condition(conds, "Released", "True", reason, message, generation, now)
        conds = set_condition(conds, "Ready", "True", reason, message, generation, now)
        update: dict[str, Any] = {
            **handled,
            "conditions": conds,
            "observedGeneration": generation,
            "lastAttemptedGeneration": generation,
            "installFailures": None,
            "upgradeFailures": None,
            "failures": None,
        }
        if first is not None:
            old = [h for h in status.get("history") or [] if isinstance(h, dict)]
            for h in old:
                if h.get("status") == "deployed":
                    h["status"] = "superseded"
            digest = _digest([desired.release, version, now])
            update["history"] = [
                snapshot(desired, version, action, first, now, digest),
                *old,
            ][:MAX_HISTORY]
        return self._patch_status(obj, update)

    def _uninstall(self, obj: Mapping[str, Any], *, helm: bool) -> None:
        """Deletion: uninstall the release (its storage Secrets go) and drop the finalizer."""
        md = obj["metadata"]
        finalizers = list(md.get("finalizers") or ())
        if FINALIZER not in finalizers:
            return
        if helm:
            desired = Desired.of(obj)
            stored = self._stored(desired)
            for rel in stored:
                with contextlib.suppress(ApiError):
                    self.store.delete(SECRETS, desired.storage_namespace, rel.secret_name)
            current = newest(stored)
            if current is not None:
                self.recorder.event(
                    obj,
                    NORMAL,
                    "UninstallSucceeded",
                    f"Helm uninstall succeeded for release {desired.full_release_name}"
                    f".v{current.version} with chart {desired.versioned_chart}",
                    desired.event_meta(),
                )
            chart = (obj.get("status") or {}).get("helmChart")
            if chart:
                self.recorder.event(obj, NORMAL, "HelmChartDeleted", f"deleted HelmChart '{chart}'")
        finalizers.remove(FINALIZER)
        self.store.patch(
            HELMRELEASES,
            md["namespace"],
            md["name"],
            {
                "metadata": {
                    "finalizers": finalizers or None,
                    "resourceVersion": md["resourceVersion"],
                }
            },
        )
