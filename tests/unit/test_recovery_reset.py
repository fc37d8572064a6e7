"""Recovery of a casualty (Kind.CASUALTY) through the Writer seam, in looptime.

The release failed inside an incident window: Ready=False UpgradeFailed and
Stalled=True RetriesExceeded (FLUX-FACTS §3). The reset strategy writes
``requestedAt`` and ``resetAt`` to one token (``flux reconcile hr --reset``)
and is verified when Ready=True and ``status.lastHandledResetAt`` is that token.
``Api`` (test_recovery) plays the API server and helm-controller.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_objects import T0, stuck_obj
from test_recovery import DUE, Api, Standing, conflict

from fluxwatch.announce import EventAnnouncer
from fluxwatch.engine.clock import Clock
from fluxwatch.engine.config import EngineSettings, GuardrailSettings
from fluxwatch.engine.policy import Kind, Verdict, casualty, decide
from fluxwatch.engine.recovery import RESET, Recovery, RecoveryOptions, ViewWaiter
from fluxwatch.kube.fields import format_rfc3339
from fluxwatch.kube.helmrelease import ANNOTATION_REQUESTED_AT, ANNOTATION_RESET_AT, hr_view
from fluxwatch.notify.event import Event, Meta

pytestmark = pytest.mark.looptime

FAILED_AT = T0 + 10
MESSAGE = (
    "Helm upgrade failed for release vpa/vpa-bp-vpa with chart "
    "vertical-pod-autoscaler@4.7.1: context deadline exceeded"
)


def failed_obj() -> dict[str, Any]:
    obj = stuck_obj()
    obj["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "UpgradeFailed",
            "message": MESSAGE,
            "observedGeneration": 1,
            "lastTransitionTime": format_rfc3339(FAILED_AT),
        },
        {
            "type": "Stalled",
            "status": "True",
            "reason": "RetriesExceeded",
            "message": "Failed to upgrade after 4 attempt(s)",
            "observedGeneration": 1,
            "lastTransitionTime": format_rfc3339(FAILED_AT),
        },
    ]
    obj["status"]["upgradeFailures"] = 4
    return obj


class Rig:
    def __init__(self, *, reset: bool = True, dry_run: bool = False) -> None:
        self.settings = EngineSettings(
            guardrail=GuardrailSettings(dry_run=dry_run), verify_storage="never"
        )
        self.waiter = ViewWaiter()
        self.api = Api(self.waiter, obj=failed_obj())
        self.events: list[Event] = []
        self.standing = Standing()
        self.recovery = Recovery(
            self.api,
            self.waiter,
            self.settings,
            RecoveryOptions(reset=reset, verify_timeout=120.0),
            EventAnnouncer(self.events.append),
            clock=Clock(epoch=DUE),
            standing=self.standing,
        )

    def verdict(self) -> Verdict:
        view = self.api.view
        return casualty(view, decide(view, None, self.settings, DUE), DUE)

    async def run(self) -> None:
        await self.recovery(self.api.view, self.verdict())

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]


async def test_reset_is_written_once_and_verified_by_the_watch(looptime: float) -> None:
    rig = Rig()
    rig.api.heal[RESET] = 30
    await rig.run()
    assert rig.api.calls == [(0, "reset")]
    annotations = rig.api.obj["metadata"]["annotations"]
    token = annotations[ANNOTATION_RESET_AT]
    assert annotations[ANNOTATION_REQUESTED_AT] == token and token.endswith("Z")
    assert rig.reasons() == ["CasualtyDetected", "RecoveryStarted", "RecoverySucceeded"]
    detected, started, succeeded = rig.events
    assert detected.message.startswith(
        "HelmRelease flux-system/bp-vpa failed during an incident and has been Ready=False "
        f"(UpgradeFailed) for 4m50s: {MESSAGE}. helm-controller has spent its remediation "
        "retries (Stalled, RetriesExceeded)"
    )
    assert "fluxwatch resets its failure counts" in detected.message
    assert detected.metadata[Meta.FAILURES] == "4"
    assert started.metadata[Meta.STRATEGY] == succeeded.metadata[Meta.STRATEGY] == "reset"
    assert succeeded.metadata[Meta.DURATION] == "30s"
    assert looptime == 30


async def test_a_reset_helm_controller_did_not_handle_is_not_verified(looptime: float) -> None:
    """Ready=True alone is not the reset's work: the token must be the one written."""
    rig = Rig()
    rig.api.heal[RESET] = 10
    original = rig.api._ready

    def ready_without_handling_the_reset() -> None:
        rig.api.obj["metadata"]["annotations"][ANNOTATION_RESET_AT] = "someone-else"
        original()

    rig.api._ready = ready_without_handling_the_reset  # type: ignore[method-assign]
    await rig.run()
    assert rig.reasons() == ["CasualtyDetected", "RecoveryStarted", "RecoveryFailed"]
    failed = rig.events[-1]
    assert failed.metadata[Meta.ERROR] == (
        "not Ready=True within 120s of the reset; helm-controller has not handled the reset; "
        "Ready=True (UpgradeSucceeded)"
    )
    assert "fluxwatch has given up on it; it needs a person." in failed.message
    assert looptime == 120


async def test_still_failing_after_the_reset_fails_after_verify_timeout(looptime: float) -> None:
    rig = Rig()
    await rig.run()
    assert rig.api.verbs() == ["reset"]
    assert rig.reasons() == ["CasualtyDetected", "RecoveryStarted", "RecoveryFailed"]
    assert rig.events[-1].metadata[Meta.ERROR].endswith("Ready=False (UpgradeFailed)")
    assert looptime == 120


async def test_without_the_setting_it_is_announced_with_the_command_and_untouched() -> None:
    rig = Rig(reset=False)
    await rig.run()
    assert rig.api.calls == [] and rig.recovery.writes == 0
    assert rig.reasons() == ["CasualtyDetected"]
    assert rig.events[0].message.endswith(
        "Once the cause is gone, `flux reconcile hr bp-vpa -n flux-system --reset` lets "
        "helm-controller try again (fluxwatch does it itself with recovery.reset: true)."
    )


async def test_dry_run_writes_nothing_and_alerts() -> None:
    rig = Rig(dry_run=True)
    await rig.run()
    assert rig.api.calls == [] and rig.recovery.writes == 0
    assert rig.reasons() == ["CasualtyDetected", "RecoverySkipped"]
    assert "`flux reconcile hr bp-vpa -n flux-system --reset`" in rig.events[0].message
    assert rig.events[1].message.startswith(
        "fluxwatch did not recover failed HelmRelease flux-system/bp-vpa: dry run"
    )


async def test_a_conflict_rejudges_and_writes_again_on_the_fresh_view() -> None:
    rig = Rig()
    rig.api.heal[RESET] = 5
    rig.api.fail["reset"] = [conflict()]
    await rig.run()
    assert rig.api.verbs() == ["reset", "get", "reset"]
    assert rig.reasons()[-1] == "RecoverySucceeded"


async def test_a_conflict_from_a_person_suspending_it_stops_without_a_write() -> None:
    """Never act on a release a person suspended: the 409 re-reads and finds it suspended."""
    rig = Rig()
    rig.api.fail["reset"] = [conflict()]
    suspended = failed_obj()
    suspended["spec"]["suspend"] = True
    rig.api.elsewhere = hr_view(suspended)
    await rig.run()
    assert rig.api.verbs() == ["reset", "get"]
    assert rig.reasons() == ["CasualtyDetected", "RecoveryStarted"]
    assert "suspend" not in rig.api.obj["spec"] or rig.api.obj["spec"]["suspend"] is False


async def test_a_follower_writes_nothing() -> None:
    rig = Rig()
    rig.standing.leading = False
    await rig.run()
    assert rig.api.calls == [] and rig.events == []


def test_a_stuck_verdict_never_takes_the_reset_path() -> None:
    assert Kind.CASUALTY != Kind.STUCK and RESET not in RecoveryOptions(reset=True).ladder
