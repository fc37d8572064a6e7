"""``fluxwatch scan`` on the strict embedded cluster: remote releases and helm-controller's
normal waits are named as Flux names them (FLUX-FACTS §7)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from fluxwatch.scan import run_scan
from fluxwatch.settings import load_settings
from fluxwatch.sim.apiserver import ApiServer

HR = "helmreleases.helm.toolkit.fluxcd.io"
STUCK_SINCE = "2026-01-01T00:00:00Z"  # long past any threshold


def condition(type_: str, status: str, message: str, reason: str = "Progressing") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-27T00:00:00Z",
    }


def _status(ready: dict[str, Any], release: str, namespace: str) -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "conditions": [ready],
        "history": [
            {
                "name": release,
                "namespace": namespace,
                "version": 1,
                "status": "deployed",
                "chartName": "podinfo",
                "chartVersion": "6.5.0",
                "configDigest": "sha256:0",
                "digest": "sha256:0",
                "firstDeployed": STUCK_SINCE,
                "lastDeployed": STUCK_SINCE,
            }
        ],
    }


def _unknown() -> dict[str, Any]:
    ready = condition("Ready", "Unknown", "Running 'install' action with timeout of 5m0s")
    ready["lastTransitionTime"] = STUCK_SINCE
    return ready


def _helm_secret(release: str, namespace: str, status: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v1",
            "namespace": namespace,
            "labels": {"owner": "helm", "name": release, "status": status, "version": "1"},
        },
        "data": {"release": ""},
    }


async def _scan(apiserver: ApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    settings = load_settings(None, {"kubeconfig": str(kubeconfig)})
    capsys.readouterr()
    assert await run_scan(settings, output="json") == 0
    doc = orjson.loads(capsys.readouterr().out)
    return {r["name"]: r for r in doc["releases"]}


async def test_remote_release_is_judged_by_history_not_local_secrets(
    apiserver: ApiServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    hr: Callable[..., dict[str, Any]],
) -> None:
    """A HelmRelease with spec.kubeConfig installs on another cluster: a local Secret of
    the same release name, failed, decides nothing; the local twin without kubeConfig
    is judged by that Secret."""
    store = apiserver.store
    for name, remote in (("remote", True), ("local", False)):
        extra = {"kubeConfig": {"secretRef": {"name": "prod-kubeconfig"}}} if remote else {}
        body = hr(name, "default", releaseName="podinfo", **extra)
        body["status"] = _status(_unknown(), "podinfo", "default")
        store.create(HR, body)
    store.create("secrets", _helm_secret("podinfo", "default", "failed"))
    apiserver.stats.reset()
    rows = await _scan(apiserver, tmp_path, capsys)
    # One storage lookup, the local release's: the remote one's is never made.
    assert apiserver.stats.requests[("list", "secrets")] == 1
    assert rows["local"]["skip"] == "not-deployed", rows["local"]
    assert rows["remote"]["verdict"] == "stuck", rows["remote"]
    assert "spec.kubeConfig" in rows["remote"]["reason"]
    assert "local Helm Secrets are no evidence" in rows["remote"]["reason"]


async def test_dependency_not_ready_is_a_wait_not_a_failure(
    apiserver: ApiServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    hr: Callable[..., dict[str, Any]],
) -> None:
    """helm-controller marks Ready=False/DependencyNotReady and records a Normal event
    while a dependsOn release is not Ready; an InstallFailed is still a failure."""
    store = apiserver.store
    waiting = hr("app", "default", dependsOn=[{"name": "db"}])
    waiting["status"] = _status(
        condition("Ready", "False", "dependency 'default/db' is not ready", "DependencyNotReady"),
        "app",
        "default",
    )
    failed = hr("db", "default")
    failed["status"] = _status(
        condition("Ready", "False", "install retries exhausted", "InstallFailed"), "db", "default"
    )
    store.create(HR, waiting)
    store.create(HR, failed)
    rows = await _scan(apiserver, tmp_path, capsys)
    assert rows["app"]["verdict"] == "skipped" and rows["app"]["skip"] == "waiting"
    assert "DependencyNotReady" in rows["app"]["reason"]
    assert "not a failure" in rows["app"]["reason"]
    assert rows["db"]["skip"] == "failed"
