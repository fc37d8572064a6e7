"""Every fluxwatch command a platform engineer runs works with the RBAC the manifests
create and nothing more, and says which permission is missing when one is.

``kubectl apply -k`` of ``config/default`` with the components that grant a command's
permissions, against the embedded cluster (which enforces the RBAC objects kubectl
created); each command then runs as a person runs it, a ``python -m fluxwatch``
process, with the token ``kubectl create token fluxwatch`` mints for the
ServiceAccount. The failure path takes one rule away with kubectl and reads what the
command prints: the verb, the resource and the 403 the API server gave, never a
traceback, a silent retry or a success.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from fluxwatch.sim import scenarios
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl, find_kubectl

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "fluxwatch-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:fluxwatch"
# The components that grant a command-line command's permissions (README "Running in a
# cluster"); monitoring and the NetworkPolicies grant none.
COMPONENTS = ("doctor", "provider-secrets", "status-correct", "approver")


@dataclass
class Installed:
    api: ApiServer
    admin: Kubectl
    kubeconfig: Path  # the ServiceAccount's token
    workdir: Path


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


def _overlay(tmp_path: Path, components: tuple[str, ...]) -> Path:
    """config/default with these components, as a user's overlay adds them."""
    base = tmp_path / "overlay"
    base.mkdir()
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(ROOT / "config" / "default", base)],
        "components": [
            os.path.relpath(ROOT / "config" / "components" / name, base) for name in components
        ],
    }
    (base / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    return base


@pytest.fixture
async def installed(tmp_path: Path) -> AsyncIterator[Installed]:
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed: it applies config/default")
    async with ApiServer(tls=True) as api:
        admin = Kubectl(binary, api.write_kubeconfig(tmp_path / "admin"), tmp_path / "cache")
        run = await scenarios.start("incident-925", api.store, time_scale=0.01)
        try:
            (await admin("apply", "-k", str(_overlay(tmp_path, COMPONENTS)))).check()
            token = (
                (await admin("create", "token", "fluxwatch", "-n", NAMESPACE))
                .check()
                .stdout.strip()
            )
            kubeconfig = api.write_kubeconfig(tmp_path / "fluxwatch", token=token)
            await run.wait()
            yield Installed(api, admin, kubeconfig, tmp_path)
        finally:
            await run.stop()


async def fluxwatch(installed: Installed, *args: str, timeout: float = 60) -> Ran:
    """``fluxwatch ARGS`` with the ServiceAccount's kubeconfig, as the pod runs it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        *args,
        "--kubeconfig",
        str(installed.kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "POD_NAMESPACE": NAMESPACE, "POD_NAME": "fluxwatch-0"},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        stuck = f"fluxwatch {args[0]} still running after {timeout}s: {err!r}"
        raise AssertionError(stuck) from None
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


async def test_scan_works_with_the_service_accounts_rbac(installed: Installed) -> None:
    ran = await fluxwatch(installed, "scan", "--output", "json")
    assert ran.code == 0, ran.stderr
    assert "bp-vpa" in ran.stdout
    assert "forbidden" not in ran.stderr.lower(), ran.stderr


async def test_scan_without_list_names_the_missing_permission(installed: Installed) -> None:
    (
        await installed.admin(
            "patch",
            "clusterrole",
            "fluxwatch",
            "--type=json",
            '-p=[{"op": "replace", "path": "/rules/0/verbs", "value": ["get", "watch", "patch"]}]',
        )
    ).check()
    ran = await fluxwatch(installed, "scan", timeout=20)
    assert ran.code != 0
    assert "Traceback" not in ran.stderr
    assert 'cannot list resource "helmreleases"' in ran.stderr
    assert SERVICE_ACCOUNT in ran.stderr
