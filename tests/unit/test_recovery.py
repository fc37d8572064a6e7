"""Recovery through its Writer seam under looptime: the ladder's timing without waiting.

``Api`` is the Writer the daemon would get from ``kube.patch``, played against one
HelmRelease object: each write changes the object as the API server would (the
resourceVersion; ``spec`` writes bump ``generation``), a script can refuse the next
writes with the Status errors the client raises, and ``heal`` plays helm-controller
answering a strategy with Ready=True after a delay, delivered the way the informer
delivers it (:meth:`ViewWaiter.notify`). Loop time 0 is the moment the release is due.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from engine_objects import T0, stuck_obj

from fluxwatch.announce import EventAnnouncer
from fluxwatch.engine.clock import Clock
from fluxwatch.engine.config import EngineSettings, GuardrailSettings
from fluxwatch.engine.policy import Kind, Verdict, decide
from fluxwatch.engine.recovery import (
    FORCE_RECONCILE,
    RESET,
    STATUS_CORRECT,
    SUSPEND_TOGGLE,
    Recovery,
    RecoveryOptions,
    ViewWaiter,
)
from fluxwatch.kube.client import KubeApiError, KubeConnectionError, KubeError
from fluxwatch.kube.helmrelease import (
    ANNOTATION_REQUESTED_AT,
    ANNOTATION_RESET_AT,
    ANNOTATION_SUSPENDED_AT,
    HRView,
    hr_view,
)
from fluxwatch.kube.helmstorage import StoredRelease
from fluxwatch.notify.event import Event, Meta
from fluxwatch.telemetry.metrics import Metrics

pytestmark = pytest.mark.looptime

DUE = T0 + 300  # the default threshold after the upstream object's transition


def conflict() -> KubeApiError:
    return KubeApiError(409, "Conflict", "the object has been modified")


def refused() -> KubeApiError:
    return KubeApiError(500, "InternalError", "failed calling webhook")


@dataclass
class Api:
    """One HelmRelease behind the Writer protocol; see the module docstring."""

    waiter: ViewWaiter
    obj: dict[str, Any] = field(default_factory=stuck_obj)
    fail: dict[str, list[KubeError]] = field(default_factory=dict)  # verb -> next errors
    heal: dict[str, float] = field(default_factory=dict)  # strategy -> Ready after seconds
    calls: list[tuple[float, str]] = field(default_factory=list)  # (loop time, verb)
    # What a GET answers instead of the object (a person's change meanwhile).
    elsewhere: HRView | None = None

    @property
    def view(self) -> HRView:
        return hr_view(self.obj)

    def _call(self, verb: str) -> None:
        self.calls.append((asyncio.get_running_loop().time(), verb))
        errors = self.fail.get(verb)
        if errors:
            raise errors.pop(0)

    def _write(self, view: HRView, change: dict[str, Any], strategy: str, spec: bool) -> HRView:
        if view.resource_version != self.obj["metadata"]["resourceVersion"]:
            raise conflict()
        meta = self.obj["metadata"]
        for k, v in change.get("annotations", {}).items():
            if v is None:
                meta.setdefault("annotations", {}).pop(k, None)
            else:
                meta.setdefault("annotations", {})[k] = v
        self.obj["spec"].update(change.get("spec", {}))
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        if spec:
            meta["generation"] += 1
        if strategy in self.heal:
            asyncio.get_running_loop().call_later(self.heal[strategy], self._ready)
        return self.view

    def _ready(self) -> None:
        status = self.obj["status"]
        status["observedGeneration"] = self.obj["metadata"]["generation"]
        status["conditions"] = [
            {
                "type": "Ready",
                "status": "True",
                "reason": "UpgradeSucceeded",
                "message": "Helm upgrade succeeded",
                "observedGeneration": self.obj["metadata"]["generation"],
                "lastTransitionTime": "2026-05-05T08:00:00Z",
            }
        ]
        reset_at = (self.obj["metadata"].get("annotations") or {}).get(ANNOTATION_RESET_AT)
        if reset_at is not None:
            status["lastHandledResetAt"] = reset_at  # helm-controller acknowledges the reset
        self.obj["metadata"]["resourceVersion"] = str(
            int(self.obj["metadata"]["resourceVersion"]) + 1
        )
        self.waiter.notify(self.view)

    async def get(self, namespace: str, name: str) -> HRView:
        self._call("get")
        meta = self.obj["metadata"]
        if (namespace, name) != (meta["namespace"], meta["name"]):
            raise KubeApiError(404, "NotFound", f'helmreleases "{name}" not found')
        return self.elsewhere if self.elsewhere is not None else self.view

    async def force_reconcile(self, view: HRView, token: str) -> HRView:
        self._call("force-reconcile")
        change = {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}
        return self._write(view, change, FORCE_RECONCILE, spec=False)

    async def reset(self, view: HRView, token: str) -> HRView:
        self._call("reset")
        change = {"annotations": {ANNOTATION_REQUESTED_AT: token, ANNOTATION_RESET_AT: token}}
        return self._write(view, change, RESET, spec=False)

    async def suspend(self, view: HRView, marker: str) -> HRView:
        self._call("suspend")
        change = {"annotations": {ANNOTATION_SUSPENDED_AT: marker}, "spec": {"suspend": True}}
        return self._write(view, change, "suspend", spec=True)

    async def resume(self, view: HRView) -> HRView:
        self._call("resume")
        change = {"annotations": {ANNOTATION_SUSPENDED_AT: None}, "spec": {"suspend": False}}
        return self._write(view, change, SUSPEND_TOGGLE, spec=True)

    async def correct_status(self, view: HRView, now: float) -> HRView:
        self._call("status-correct")
        return self._write(view, {}, STATUS_CORRECT, spec=False)

    def verbs(self) -> list[str]:
        return [verb for _t, verb in self.calls]


@dataclass
class Standing:
    leading: bool = True
    recorded: bool = True
    halt: str | None = None  # why the next step must not be taken (a tripped incident)
    blocks: tuple[tuple[str, str], ...] = ()  # what waits for the release (dependsOn)

    def is_leader(self) -> bool:
        return self.leading

    def attempt_of(self, key: tuple[str, str]) -> int:
        return 1

    def suspicion_of(self, key: tuple[str, str]) -> str | None:
        return None

    def halted(self, key: tuple[str, str]) -> str | None:
        return self.halt

    def blocking(self, key: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        return self.blocks

    async def record(self) -> bool:
        return self.recorded


@dataclass
class Storage:
    """Helm's release Secrets, answered in turn; the last answer repeats."""

    answers: list[list[StoredRelease]]
    reads: list[float] = field(default_factory=list)

    async def releases(self, namespace: str, release: str) -> list[StoredRelease]:
        self.reads.append(asyncio.get_running_loop().time())
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def secret(version: int, status: str) -> StoredRelease:
    return StoredRelease("vpa-bp-vpa", "flux-system", version, status)


class Rig:
    def __init__(
        self,
        strategies: tuple[str, ...] = (FORCE_RECONCILE, SUSPEND_TOGGLE),
        *,
        dry_run: bool = False,
        storage: Storage | None = None,
        standing: Standing | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        verify = "auto" if storage is not None else "never"
        self.settings = EngineSettings(
            guardrail=GuardrailSettings(dry_run=dry_run), verify_storage=verify
        )
        self.waiter = ViewWaiter()
        self.api = Api(self.waiter)
        self.events: list[Event] = []
        self.standing = standing or Standing()
        self.recovery = Recovery(
            self.api,
            self.waiter,
            self.settings,
            RecoveryOptions(strategies=strategies, status_correct=True),
            EventAnnouncer(self.events.append),
            clock=Clock(epoch=DUE),
            storage=storage,
            standing=self.standing,
            metrics=metrics,
        )

    def verdict(self) -> Verdict:
        return decide(self.api.view, None, self.settings, DUE)

    async def run(self) -> None:
        await self.recovery(self.api.view, self.verdict())

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]


# -- the ladder -----------------------------------------------------------------------------


async def test_first_step_verifies() -> None:
    rig = Rig()
    rig.api.heal[FORCE_RECONCILE] = 7.0
    await rig.run()
    assert rig.reasons() == ["StuckDetected", "RecoveryStarted", "RecoverySucceeded"]
    assert asyncio.get_running_loop().time() == 7.0
    assert rig.recovery.writes == 1


async def test_409_twice_fails_the_step_and_the_next_one_recovers() -> None:
    """A 409 re-reads and repeats the step once; a second 409 fails the step (the release
    keeps changing under every write) and the ladder goes on to suspend-toggle."""
    rig = Rig()
    rig.api.fail["force-reconcile"] = [conflict(), conflict()]
    rig.api.heal[SUSPEND_TOGGLE] = 3.0
    await rig.run()
    assert rig.api.verbs() == [
        "force-reconcile",
        "get",
        "force-reconcile",
        "get",
        "suspend",
        "resume",
    ]
    assert rig.reasons() == [
        "StuckDetected",
        "RecoveryStarted",
        "RecoveryFailed",
        "RecoveryStarted",
        "RecoverySucceeded",
    ]
    failed = rig.events[2]
    assert "409 Conflict twice" in failed.metadata[Meta.ERROR]
    assert failed.metadata[Meta.NEXT_STRATEGY] == SUSPEND_TOGGLE
    assert asyncio.get_running_loop().time() == 5.0 + 3.0  # the pause, then Ready
    assert rig.api.view.suspend is False


async def test_409_and_no_longer_stuck_stops_without_writing() -> None:
    rig = Rig()
    rig.api.fail["force-reconcile"] = [conflict()]
    person = copy.deepcopy(rig.api.obj)
    person["spec"]["suspend"] = True
    rig.api.elsewhere = hr_view(person)
    await rig.run()
    assert rig.api.verbs() == ["force-reconcile", "get"]
    assert rig.reasons() == ["StuckDetected", "RecoveryStarted"]
    assert rig.recovery.writes == 1  # the refused one was tried


async def test_a_step_that_does_not_verify_fails_after_verify_timeout() -> None:
    rig = Rig((FORCE_RECONCILE,))
    await rig.run()
    assert rig.reasons() == ["StuckDetected", "RecoveryStarted", "RecoveryFailed"]
    assert asyncio.get_running_loop().time() == 120.0
    assert "not Ready=True within 120s" in rig.events[-1].metadata[Meta.ERROR]
    assert "given up" in rig.events[-1].message
    assert not rig.events[-1].metadata.get(Meta.NEXT_STRATEGY)


async def test_a_tripped_incident_freezes_the_ladder_at_its_step() -> None:
    """Issue 12: a trip while force-reconcile verifies stops there; suspend-toggle is not
    taken, and the failure says why."""
    rig = Rig(standing=Standing(halt="incident inc-1 tripped the batch guard"))
    await rig.run()
    assert rig.api.verbs() == ["force-reconcile"]
    assert rig.reasons() == ["StuckDetected", "RecoveryStarted", "RecoveryFailed"]
    failed = rig.events[-1]
    assert "not escalating: incident inc-1 tripped" in failed.metadata[Meta.ERROR]
    assert not failed.metadata.get(Meta.NEXT_STRATEGY)


async def test_an_api_error_mid_ladder_fails_that_step_and_escalates() -> None:
    """suspend-toggle's suspend is refused (500): that step fails naming the error, and
    status-correct, next on the ladder, recovers the release."""
    rig = Rig((SUSPEND_TOGGLE, STATUS_CORRECT))
    rig.api.fail["suspend"] = [refused()]
    rig.api.heal[STATUS_CORRECT] = 1.0
    await rig.run()
    assert rig.api.verbs() == ["suspend", "status-correct"]
    assert rig.reasons() == [
        "StuckDetected",
        "RecoveryStarted",
        "RecoveryFailed",
        "RecoveryStarted",
        "RecoverySucceeded",
    ]
    assert rig.events[2].metadata[Meta.ERROR].startswith("500 InternalError")


async def test_a_broken_connection_mid_ladder_stops_the_attempt_with_an_alert() -> None:
    rig = Rig()
    rig.api.fail["force-reconcile"] = [KubeConnectionError("connection reset")]
    await rig.run()
    assert rig.reasons() == ["StuckDetected", "RecoveryStarted", "RecoveryFailed"]
    assert "Kubernetes API error: connection reset" in rig.events[-1].message
    assert rig.api.verbs() == ["force-reconcile"]


async def test_metrics_count_each_step_and_time_from_threshold_to_verified() -> None:
    """Through the RecoveryObserver seam: the delay from the threshold to the first write,
    each step by strategy and result, and the ladder from first write to Ready=True."""
    metrics = Metrics()
    rig = Rig(metrics=metrics)
    rig.api.heal[SUSPEND_TOGGLE] = 3.0
    await asyncio.sleep(2.0)  # the tracker called on_due 2s after the release fell due
    await rig.run()
    sample = metrics.registry.get_sample_value
    assert sample("fluxwatch_detection_delay_seconds_count") == 1
    assert sample("fluxwatch_detection_delay_seconds_sum") == 2.0
    steps = "fluxwatch_recoveries_total"
    assert sample(steps, {"strategy": FORCE_RECONCILE, "result": "failed"}) == 1
    assert sample(steps, {"strategy": FORCE_RECONCILE, "result": "succeeded"}) is None
    assert sample(steps, {"strategy": SUSPEND_TOGGLE, "result": "succeeded"}) == 1
    took = "fluxwatch_recovery_duration_seconds"
    assert sample(f"{took}_count", {"result": "succeeded"}) == 1
    assert sample(f"{took}_sum", {"result": "succeeded"}) == 120.0 + 5.0 + 3.0
    assert sample(f"{took}_count", {"result": "failed"}) is None


# -- the resume: a debt ----------------------------------------------------------------------


async def test_a_refused_resume_is_retried_with_backoff_until_it_goes_through() -> None:
    """The resume after the pause is refused three times: tried again after 1, 2 and 4 s
    (re-reading the release before each try), one alert says it is suspended by fluxwatch
    meanwhile, and SuspendResumed says when it was resumed."""
    rig = Rig((SUSPEND_TOGGLE,))
    rig.api.fail["resume"] = [refused(), refused(), refused()]
    rig.api.heal[SUSPEND_TOGGLE] = 1.0
    await rig.run()
    resumes = [t for t, verb in rig.api.calls if verb == "resume"]
    assert resumes == [5.0, 6.0, 8.0, 12.0]
    assert rig.reasons() == [
        "StuckDetected",
        "RecoveryStarted",
        "RecoveryFailed",  # suspended by fluxwatch until the resume goes through
        "SuspendResumed",
        "RecoverySucceeded",
    ]
    assert "is suspended by fluxwatch" in rig.events[2].message
    assert rig.api.view.suspend is False
    assert rig.api.view.suspended_at is None


async def test_a_refused_resume_stops_when_a_person_took_the_release_over() -> None:
    rig = Rig((SUSPEND_TOGGLE,))
    rig.api.fail["resume"] = [refused()]

    async def person_resumes() -> None:
        await asyncio.sleep(5.5)
        rig.api.obj["spec"]["suspend"] = False
        rig.api.obj["metadata"]["annotations"].pop(ANNOTATION_SUSPENDED_AT)

    helper = asyncio.create_task(person_resumes())
    await rig.run()
    await helper
    assert [v for v in rig.api.verbs() if v == "resume"] == ["resume"]
    assert "SuspendResumed" not in rig.reasons()


async def test_a_resume_stops_retrying_when_leadership_is_lost() -> None:
    rig = Rig((SUSPEND_TOGGLE,))
    rig.api.fail["resume"] = [refused()] * 100

    async def lose() -> None:
        await asyncio.sleep(10)
        rig.standing.leading = False

    helper = asyncio.create_task(lose())
    await rig.run()
    await helper
    # 5, 6, 8: the retry at 12 finds this replica no longer leads; the marker stays.
    assert [t for t, v in rig.api.calls if v == "resume"] == [5.0, 6.0, 8.0]
    assert rig.api.view.suspended_at is not None


async def test_an_interrupted_suspend_is_resumed_on_a_conflict_too() -> None:
    rig = Rig()
    obj = rig.api.obj
    obj["spec"]["suspend"] = True
    obj["metadata"].setdefault("annotations", {})[ANNOTATION_SUSPENDED_AT] = "2026-05-05T07:50Z"
    stale = rig.api.view
    obj["metadata"]["resourceVersion"] = "1848391"  # changed since the tracker's view
    verdict = decide(stale, None, rig.settings, DUE)
    assert verdict.kind is Kind.RESUME_PENDING
    await rig.recovery(stale, verdict)
    assert rig.api.verbs() == ["resume", "get", "resume"]
    assert rig.reasons() == ["SuspendResumed"]
    assert rig.api.view.suspend is False


# -- dry run, write-ahead, leadership -----------------------------------------------------------


async def test_dry_run_alerts_and_writes_nothing() -> None:
    rig = Rig(dry_run=True)
    await rig.run()
    assert rig.reasons() == ["StuckDetected", "RecoverySkipped"]
    assert "dry run" in rig.events[-1].message
    assert rig.api.calls == []


async def test_dry_run_resumes_an_interrupted_suspend() -> None:
    rig = Rig(dry_run=True)
    rig.api.obj["spec"]["suspend"] = True
    rig.api.obj["metadata"].setdefault("annotations", {})[ANNOTATION_SUSPENDED_AT] = "x"
    await rig.run()
    assert rig.api.verbs() == ["resume"]
    assert rig.reasons() == ["SuspendResumed"]


async def test_nothing_is_written_when_the_guardrail_state_cannot_be_recorded() -> None:
    rig = Rig(standing=Standing(recorded=False))
    await rig.run()
    assert rig.reasons() == ["StuckDetected"]
    assert rig.api.calls == []


async def test_a_follower_does_nothing() -> None:
    rig = Rig(standing=Standing(leading=False))
    await rig.run()
    assert rig.events == []
    assert rig.api.calls == []


# -- the pending-Helm wait ----------------------------------------------------------------------


async def test_while_helm_is_at_work_the_storage_is_read_again_then_acted_on() -> None:
    """The newest Secret is pending-upgrade at first: not the stuck bug yet. It is read
    again every threshold/10 (30 s); once Helm finished (deployed) the release is stuck
    by storage too and the ladder runs."""
    storage = Storage(
        [
            [secret(1, "deployed"), secret(2, "pending-upgrade")],
            [secret(1, "deployed"), secret(2, "pending-upgrade")],
            [secret(1, "superseded"), secret(2, "deployed")],
        ]
    )
    rig = Rig(storage=storage)
    rig.api.obj["status"]["history"][0]["version"] = 2
    rig.api.heal[FORCE_RECONCILE] = 1.0
    await rig.run()
    assert storage.reads == [0.0, 30.0, 60.0]
    assert rig.reasons() == ["StuckDetected", "RecoveryStarted", "RecoverySucceeded"]
    assert rig.api.calls[0] == (60.0, "force-reconcile")


async def test_helm_at_work_past_verify_timeout_is_skipped_not_recovered() -> None:
    storage = Storage([[secret(1, "deployed"), secret(2, "pending-upgrade")]])
    rig = Rig(storage=storage)
    await rig.run()
    assert storage.reads[-1] == 120.0
    assert rig.reasons() == ["RecoverySkipped"]
    assert "Helm is still at work" in rig.events[0].message
    assert rig.api.calls == []


@dataclass
class Forbidden:
    """Helm storage behind RBAC that does not grant Secrets (403)."""

    async def releases(self, namespace: str, release: str) -> list[StoredRelease]:
        raise KubeApiError(403, "Forbidden", 'secrets is forbidden: cannot list resource "secrets"')


@pytest.mark.parametrize(("verify", "acts"), [("auto", True), ("always", False)])
async def test_unreadable_storage_auto_trusts_history_always_refuses(
    verify: str, acts: bool
) -> None:
    rig = Rig(storage=Storage([[]]))
    rig.recovery.storage = Forbidden()
    rig.recovery.settings = rig.settings = EngineSettings(verify_storage=verify)
    rig.api.heal[FORCE_RECONCILE] = 1.0
    await rig.run()
    if acts:
        assert rig.reasons() == ["StuckDetected", "RecoveryStarted", "RecoverySucceeded"]
    else:
        assert rig.reasons() == ["RecoverySkipped"]
        assert "403" in rig.events[0].message
        assert rig.api.calls == []


async def test_drain_waits_for_the_resume_of_a_cancelled_attempt() -> None:
    """Shutdown cancels the attempt during the suspend pause; the resume still runs, and
    drain() returns once it has."""
    rig = Rig((SUSPEND_TOGGLE,))
    attempt = asyncio.create_task(rig.run())
    await asyncio.sleep(1.0)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    assert rig.api.view.suspend is True
    await rig.recovery.drain(timeout=60)
    assert asyncio.get_running_loop().time() == 5.0
    assert rig.api.view.suspend is False
    assert rig.api.view.suspended_at is None
