"""The simulated helm-controller's failed releases: remediation, RetriesExceeded, reset.

helm-controller v1.x (internal/reconcile/atomic_release.go, install.go,
upgrade.go, uninstall_remediation.go, rollback_remediation.go,
internal/action/reset.go; fluxcd/pkg apis/meta HandleAnnotationRequest) as
FLUX-FACTS §2 and §3 name it: a failed install or upgrade is Released=False
and Ready=False with InstallFailed/UpgradeFailed, counted in
``status.installFailures``/``upgradeFailures``, remediated and retried per
``spec.<action>.remediation.retries``, and Stalled=True RetriesExceeded once
they are spent; ``reconcile.fluxcd.io/resetAt`` with an equal new
``requestedAt`` clears the counters and tries again. In looptime.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fluxwatch.kube.helmrelease import (
    ANNOTATION_REQUESTED_AT,
    ANNOTATION_RESET_AT,
    hr_view,
)
from fluxwatch.kube.helmstorage import from_metadata, label_selector, newest
from fluxwatch.sim import scenarios
from fluxwatch.sim.events import EVENTS
from fluxwatch.sim.helmcontroller import HELMRELEASES, SECRETS, HelmController
from fluxwatch.sim.scenarios import CATALOG
from fluxwatch.sim.store import Store

pytestmark = pytest.mark.looptime

CILIUM = ("flux-system", "bp-cilium")  # the catalog's root: no dependsOn to wait for
TIMEOUT = "context deadline exceeded"


@pytest.fixture
async def helm() -> AsyncIterator[HelmController]:
    store = Store()
    scenarios.ensure_namespaces(store, ["flux-system", "kube-system"])
    controller = HelmController(store, install_duration=10.0)
    await controller.start()
    await controller.wait_leader()
    try:
        yield controller
    finally:
        await controller.stop()


def create(helm: HelmController, *, install: int = 0, upgrade: int = 0) -> dict[str, Any]:
    obj = scenarios.helmrelease(CATALOG[0])
    obj["spec"]["install"]["remediation"]["retries"] = install
    obj["spec"]["upgrade"]["remediation"]["retries"] = upgrade
    return helm.store.create(HELMRELEASES, obj)


async def settle(helm: HelmController, seconds: float = 120) -> dict[str, Any]:
    async with asyncio.timeout(3600):
        await asyncio.sleep(seconds)  # the watch delivers, requeues fire
        await helm.wait_idle()
    return helm.store.get(HELMRELEASES, *CILIUM)


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {
        c["type"]: (c["status"], c["reason"], c["message"]) for c in obj["status"]["conditions"]
    }


def events(helm: HelmController) -> list[tuple[str, str, str]]:
    items, _ = helm.store.list(EVENTS, "flux-system")
    items.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [(e["type"], e["reason"], e["message"]) for e in items]


def newest_secret(helm: HelmController) -> tuple[int, str]:
    items, _ = helm.store.list(
        SECRETS, "flux-system", label_selector=label_selector("kube-system-bp-cilium")
    )
    top = newest(r for r in map(from_metadata, items) if r is not None)
    assert top is not None
    return top.version, top.status


def reset(helm: HelmController, token: str) -> None:
    helm.store.patch(
        HELMRELEASES,
        *CILIUM,
        {"metadata": {"annotations": {ANNOTATION_REQUESTED_AT: token, ANNOTATION_RESET_AT: token}}},
    )


FAILED = (
    "Helm install failed for release kube-system/kube-system-bp-cilium with chart "
    f"cilium@1.16.5: {TIMEOUT}"
)


async def test_install_failure_without_retries_stalls_and_a_reset_recovers(
    helm: HelmController,
) -> None:
    """Install retries 0 (the default): one failure exhausts them; the last failure is not
    remediated (install's remediateLastFailure defaults to false), so Ready stays
    InstallFailed, Stalled=True RetriesExceeded, and nothing is retried, not even on a
    plain requestedAt. A reset (resetAt = requestedAt, new) clears installFailures, records
    lastHandledResetAt and, the cause gone, the release installs (as an upgrade of the
    failed revision: ReleaseStatusFailed with no failures counted)."""
    helm.fail(*CILIUM, TIMEOUT)
    create(helm)
    obj = await settle(helm)
    conds = conditions(obj)
    assert conds["Ready"] == ("False", "InstallFailed", FAILED)
    assert conds["Released"] == ("False", "InstallFailed", FAILED)
    assert conds["Stalled"] == ("True", "RetriesExceeded", "Failed to install after 1 attempt(s)")
    assert "Reconciling" not in conds and "Remediated" not in conds
    assert obj["status"]["installFailures"] == 1
    assert obj["status"]["history"][0]["status"] == "failed"
    assert newest_secret(helm) == (1, "failed")
    assert ("Warning", "InstallFailed", FAILED) in events(helm)
    view = hr_view(obj)
    assert view.malformed is None and view.ready is not None
    assert (view.ready.status, view.ready.reason) == ("False", "InstallFailed")

    helm.heal(*CILIUM)
    helm.store.patch(
        HELMRELEASES, *CILIUM, {"metadata": {"annotations": {ANNOTATION_REQUESTED_AT: "t1"}}}
    )
    obj = await settle(helm)
    assert conditions(obj)["Stalled"][1] == "RetriesExceeded"  # a requestedAt alone: no retry
    assert obj["status"]["lastHandledReconcileAt"] == "t1"
    assert newest_secret(helm) == (1, "failed")

    reset(helm, "t2")
    obj = await settle(helm)
    conds = conditions(obj)
    assert conds["Ready"][:2] == ("True", "UpgradeSucceeded")
    assert "Stalled" not in conds
    assert obj["status"]["lastHandledResetAt"] == "t2"
    assert obj["status"]["lastHandledReconcileAt"] == "t2"
    assert "installFailures" not in obj["status"]
    assert newest_secret(helm) == (2, "deployed")


async def test_install_retries_uninstall_and_retry_until_exhausted(
    helm: HelmController,
) -> None:
    """Install retries 2: each failure is remediated by an uninstall (UninstallSucceeded,
    Remediated=True, Ready mirrors it) and retried; the third failure exceeds the retries
    and stalls with Ready=InstallFailed and installFailures 3."""
    helm.fail(*CILIUM, TIMEOUT)
    create(helm, install=2)
    obj = await settle(helm)
    conds = conditions(obj)
    assert conds["Stalled"][1:] == ("RetriesExceeded", "Failed to install after 3 attempt(s)")
    assert conds["Ready"][:2] == ("False", "InstallFailed")
    assert obj["status"]["installFailures"] == 3
    # Repeats fold into one Event with a count, as client-go's recorder folds them.
    items, _ = helm.store.list(EVENTS, "flux-system")
    counts = {(e["type"], e["reason"]): e["count"] for e in items}
    assert counts == {
        ("Normal", "HelmChartCreated"): 1,
        ("Warning", "InstallFailed"): 3,
        ("Normal", "UninstallSucceeded"): 2,
    }
    uninstalled = next(m for _, r, m in events(helm) if r == "UninstallSucceeded")
    assert uninstalled == (
        "Helm uninstall remediation for release kube-system/kube-system-bp-cilium.v1 with "
        "chart cilium@1.16.5 succeeded"
    )
    # The last failure's revision stays; the remediated ones were uninstalled.
    assert newest_secret(helm) == (1, "failed")


async def test_upgrade_failure_rolls_back_and_stalls_then_reset_upgrades(
    helm: HelmController,
) -> None:
    """An upgrade failing with retries 1: rolled back (RollbackSucceeded, a new deployed
    revision from the previous chart), retried, rolled back again (upgrade's
    remediateLastFailure defaults to retries > 0) and stalled: Ready=False
    RollbackSucceeded, Stalled RetriesExceeded, upgradeFailures 2. A reset with the cause
    gone upgrades to the new chart."""
    create(helm, upgrade=1)
    obj = await settle(helm)
    assert conditions(obj)["Ready"][:2] == ("True", "InstallSucceeded")
    helm.fail(*CILIUM, TIMEOUT)
    helm.store.patch(HELMRELEASES, *CILIUM, {"spec": {"chart": {"spec": {"version": "1.17.0"}}}})
    obj = await settle(helm)
    conds = conditions(obj)
    assert conds["Stalled"][1:] == ("RetriesExceeded", "Failed to upgrade after 2 attempt(s)")
    assert conds["Ready"][:2] == ("False", "RollbackSucceeded")
    assert conds["Released"][:2] == ("False", "UpgradeFailed")
    assert conds["Remediated"][:2] == ("True", "RollbackSucceeded")
    assert obj["status"]["upgradeFailures"] == 2
    assert obj["status"]["history"][0]["chartVersion"] == "1.16.5"
    assert newest_secret(helm) == (5, "deployed")  # v1, v2 failed, v3 rollback, v4, v5
    items, _ = helm.store.list(EVENTS, "flux-system")
    assert sum(e["count"] for e in items if e["reason"] == "UpgradeFailed") == 2
    rollbacks = sorted(m for _, r, m in events(helm) if r == "RollbackSucceeded")
    assert rollbacks == [
        f"Helm rollback to previous release kube-system/kube-system-bp-cilium.v{v} with chart "
        "cilium@1.16.5 succeeded"
        for v in (1, 3)
    ]
    assert (
        "Helm upgrade failed for release kube-system/kube-system-bp-cilium with chart "
        f"cilium@1.17.0: {TIMEOUT}"
    ) in [m for _, _, m in events(helm)]

    helm.heal(*CILIUM)
    reset(helm, "r1")
    obj = await settle(helm)
    conds = conditions(obj)
    assert conds["Ready"][:2] == ("True", "UpgradeSucceeded")
    assert set(conds) == {"Ready", "Released"}
    assert obj["status"]["history"][0]["chartVersion"] == "1.17.0"
    assert obj["status"]["lastHandledResetAt"] == "r1"


async def test_reset_needs_the_same_new_token(helm: HelmController) -> None:
    """HandleAnnotationRequest: resetAt counts only with an equal requestedAt; one already
    handled is recorded but resets nothing."""
    helm.fail(*CILIUM, TIMEOUT)
    create(helm)
    await settle(helm)
    helm.heal(*CILIUM)
    helm.store.patch(
        HELMRELEASES,
        *CILIUM,
        {"metadata": {"annotations": {ANNOTATION_REQUESTED_AT: "a", ANNOTATION_RESET_AT: "b"}}},
    )
    obj = await settle(helm)
    assert conditions(obj)["Stalled"][1] == "RetriesExceeded"
    assert obj["status"]["installFailures"] == 1
    assert obj["status"]["lastHandledResetAt"] == "b"


async def test_a_failure_that_stored_nothing_is_not_counted(helm: HelmController) -> None:
    """upgrade.go/install.go: when Helm stored no release (the API was away) the failure is
    not counted and nothing is remediated; the controller retries after its backoff and,
    the cause gone by then, succeeds by itself."""
    helm.fail(*CILIUM, "Kubernetes cluster unreachable", stored=False)
    create(helm, install=0)
    obj = await settle(helm, 30)
    conds = conditions(obj)
    assert conds["Ready"][:2] == ("False", "InstallFailed")
    assert conds["Reconciling"][:2] == ("True", "ProgressingWithRetry")
    assert "Stalled" not in conds and "installFailures" not in obj["status"]
    assert helm.store.list(SECRETS, "flux-system")[0] == []
    helm.heal(*CILIUM)
    obj = await settle(helm, helm.error_backoff + 60)
    assert conditions(obj)["Ready"][:2] == ("True", "InstallSucceeded")


async def test_blip_failures_leaves_stuck_and_failed_releases_and_a_reset_recovers() -> None:
    """The scenario of issue 12's casualties: the Lease lost during an upgrade wave leaves
    the running upgrades stuck (FLUX-FACTS §1, the upgrade's Running message); the blip
    failed others: Stalled RetriesExceeded after 4 upgrade attempts (Ready mirrors the last
    rollback, or stays UpgradeFailed where remediateLastFailure is false), or Ready=False
    UpgradeFailed with nothing stored or counted. Every cause is gone at the end: a reset
    recovers each failed one to the new chart version, while a stuck one stays stuck."""
    store = Store()
    run = await scenarios.start("blip-failures", store)
    try:
        async with asyncio.timeout(3600):
            await run.wait()
        assert len(run.expected_stuck) == 2 and len(run.expected_failed) == 5
        views = {v.key: v for v in map(hr_view, store.list(HELMRELEASES)[0])}
        not_ready = {k for k, v in views.items() if v.ready is None or v.ready.status != "True"}
        assert not_ready == set(run.expected_stuck) | set(run.expected_failed)
        for key in run.expected_stuck:
            v = views[key]
            assert v.ready is not None and (v.ready.status, v.ready.reason) == (
                "Unknown",
                "Progressing",
            )
            assert v.ready.message.startswith("Running 'upgrade' action")
            assert v.last_release is not None and v.last_release.status == "deployed"
        stalled = [k for k in run.expected_failed if views[k].stalled is not None]
        assert len(stalled) == 3
        ready_reasons = sorted(
            views[k].ready.reason  # type: ignore[union-attr]
            for k in stalled
        )
        assert ready_reasons == ["RollbackSucceeded", "RollbackSucceeded", "UpgradeFailed"]
        for key in stalled:
            assert views[key].upgrade_failures == 4
            assert views[key].stalled.reason == "RetriesExceeded"  # type: ignore[union-attr]
        for key in set(run.expected_failed) - set(stalled):
            v = views[key]
            assert v.ready is not None and (v.ready.status, v.ready.reason) == (
                "False",
                "UpgradeFailed",
            )
            assert "Kubernetes cluster unreachable" in v.ready.message
            assert v.upgrade_failures == 0

        assert run.helm is not None
        for n, key in enumerate(run.expected_failed):
            token = f"2026-11-27T19:00:0{n}.000000Z"
            store.patch(
                HELMRELEASES,
                *key,
                {
                    "metadata": {
                        "annotations": {ANNOTATION_REQUESTED_AT: token, ANNOTATION_RESET_AT: token}
                    }
                },
            )
        async with asyncio.timeout(3600):
            await asyncio.sleep(5)
            await run.helm.wait_idle()
        for key in run.expected_failed:
            obj = store.get(HELMRELEASES, *key)
            v = hr_view(obj)
            assert v.ready is not None and v.ready.status == "True", (key, v.ready)
            assert v.stalled is None and v.upgrade_failures == 0
            assert v.last_handled_reset_at is not None
            assert v.last_release is not None
            assert v.last_release.chart_version == obj["spec"]["chart"]["spec"]["version"]
        for key in run.expected_stuck:
            v = hr_view(store.get(HELMRELEASES, *key))
            assert v.ready is not None and v.ready.status == "Unknown"
    finally:
        await run.stop()
