"""Failed releases the reset strategy may act on: ``resettable``, ``failed_at``, ``casualty``.

Realistic objects: the stalled upgrade the simulated helm-controller writes
(``hr_stalled_upgrade.json``: Ready=False UpgradeFailed, Stalled=True
RetriesExceeded, upgradeFailures 3) and the upstream stuck object turned into
the shapes helm-controller v1.x leaves after other failures (FLUX-FACTS §2, §3).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from engine_objects import T0, load, stuck_obj

from fluxwatch.engine.config import EngineSettings
from fluxwatch.engine.policy import Kind, Skip, Verdict, casualty, decide
from fluxwatch.kube.fields import format_rfc3339, parse_rfc3339
from fluxwatch.kube.helmrelease import HRView, hr_view

NOW = T0 + 3600


def judge(view: HRView) -> Verdict:
    return decide(view, None, EngineSettings(), NOW)


def failed(
    reason: str, *, stalled: str | None = None, message: str = "boom", **status: Any
) -> HRView:
    obj: dict[str, Any] = stuck_obj()
    obj["status"].update(status)
    obj["status"]["conditions"][0].update(status="False", reason=reason, message=message)
    if stalled is not None:
        obj["status"]["conditions"].append(
            {
                "type": "Stalled",
                "status": "True",
                "reason": stalled,
                "message": "Failed to upgrade after 4 attempt(s)",
                "observedGeneration": 1,
                "lastTransitionTime": format_rfc3339(T0 + 5),
            }
        )
    return hr_view(obj)


def test_a_stalled_upgrade_is_failed_and_resettable() -> None:
    """atomic_release.go: RetriesExceeded, Ready=False UpgradeFailed; failed_at is Ready's
    own lastTransitionTime."""
    obj = load("hr_stalled_upgrade.json")
    verdict = judge(hr_view(obj))
    assert (verdict.kind, verdict.skip) == (Kind.SKIPPED, Skip.FAILED)
    assert verdict.resettable is True
    assert verdict.failed_at == parse_rfc3339(obj["status"]["conditions"][0]["lastTransitionTime"])
    assert verdict.reason == (
        "Ready=False (UpgradeFailed): a failure helm-controller reports itself; "
        "Stalled (RetriesExceeded): it retries no more"
    )
    assert verdict.due_at is None


@pytest.mark.parametrize(
    ("view", "resettable"),
    [
        (lambda: failed("InstallFailed"), True),
        (lambda: failed("UpgradeFailed"), True),
        # Upgrade retries spent after a rollback: Ready mirrors Remediated.
        (lambda: failed("RollbackSucceeded", stalled="RetriesExceeded"), True),
        (lambda: failed("RollbackSucceeded"), False),  # still retrying by itself
        (lambda: failed("ArtifactFailed"), False),
        (lambda: failed("InstallFailed", stalled="MissingRollbackTarget"), True),
        (lambda: failed("TestFailed", stalled="MissingRollbackTarget"), False),
    ],
)
def test_resettable_is_a_failed_helm_action_or_spent_retries(view: Any, resettable: bool) -> None:
    verdict = judge(view())
    assert verdict.skip is Skip.FAILED
    assert verdict.resettable is resettable
    assert verdict.failed_at == T0


def test_other_verdicts_are_never_resettable() -> None:
    obj = stuck_obj()
    assert judge(hr_view(obj)).resettable is False  # stuck
    obj["status"]["conditions"][0].update(status="False", reason="DependencyNotReady")
    waiting = judge(hr_view(obj))
    assert waiting.skip is Skip.WAITING and not waiting.resettable
    assert waiting.failed_at is None
    obj["spec"]["suspend"] = True
    obj["status"]["conditions"][0]["reason"] = "InstallFailed"
    suspended = judge(hr_view(obj))
    assert suspended.skip is Skip.SUSPENDED and not suspended.resettable


def test_casualty_is_due_now_and_says_why() -> None:
    obj = load("hr_stalled_upgrade.json")
    view = hr_view(obj)
    verdict = casualty(view, judge(view), NOW)
    assert verdict.kind is Kind.CASUALTY and verdict.label is Kind.CASUALTY
    assert (verdict.due_at, verdict.resettable, verdict.skip) == (NOW, True, None)
    since = obj["status"]["conditions"][0]["lastTransitionTime"]
    assert verdict.failed_at == parse_rfc3339(since)
    assert verdict.reason == (
        f"Ready=False (UpgradeFailed) since {since} (Helm upgrade failed for release "
        "kube-system/kube-system-bp-cilium with chart cilium@1.17.0: context deadline "
        "exceeded); Stalled (RetriesExceeded): helm-controller retries no more; "
        "3 upgrade failures counted; it failed inside an incident window, a casualty of the "
        "incident: a reset (flux reconcile hr --reset) lets helm-controller try again"
    )


def test_casualty_refuses_what_a_reset_does_not_undo() -> None:
    view = failed("ArtifactFailed")
    with pytest.raises(ValueError, match=r"flux-system/bp-vpa: only a resettable failed verdict"):
        casualty(view, judge(view), NOW)
    stuck = hr_view(stuck_obj())
    with pytest.raises(ValueError, match="got stuck"):
        casualty(stuck, judge(stuck), NOW)


_TAIL = (
    "; it failed inside an incident window, a casualty of the incident: a reset "
    "(flux reconcile hr --reset) lets helm-controller try again"
)


def test_casualty_counts_each_kind_of_failure_in_the_singular_or_plural() -> None:
    view = failed("InstallFailed", message="", installFailures=1, upgradeFailures=2)
    assert casualty(view, judge(view), NOW).reason == (
        f"Ready=False (InstallFailed) since {format_rfc3339(T0)}; "
        "1 install failure and 2 upgrade failures counted" + _TAIL
    )


def test_casualty_without_a_failure_time_or_counts_says_only_the_condition() -> None:
    view = failed("UpgradeFailed", message="boom")
    verdict = replace(judge(view), failed_at=None)
    assert casualty(view, verdict, NOW).reason == "Ready=False (UpgradeFailed) (boom)" + _TAIL


def test_casualty_of_a_release_without_ready_names_it() -> None:
    obj = stuck_obj()
    obj["status"]["conditions"] = []
    with pytest.raises(ValueError) as raised:
        casualty(hr_view(obj), judge(failed("InstallFailed")), NOW)
    assert str(raised.value) == "HelmRelease flux-system/bp-vpa: no Ready condition"


def test_a_failure_that_helm_controller_still_retries_says_only_that() -> None:
    verdict = judge(failed("InstallFailed"))
    assert verdict.reason == (
        "Ready=False (InstallFailed): a failure helm-controller reports itself"
    )
