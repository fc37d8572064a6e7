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
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from fluxwatch.sim import scenarios
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl, find_kubectl
from fluxwatch.sim.receiver import Receiver
from tests.rbac_table import readme_grants

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "fluxwatch-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:fluxwatch"
INCIDENT = "inc-20260127t184512"
STUCK = ("flux-system", "bp-vpa")  # FLUX-FACTS §1: incident-925 leaves it stuck
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


async def fluxwatch(
    installed: Installed, *args: str, timeout: float = 60, kubeconfig: Path | None = None
) -> Ran:
    """``fluxwatch ARGS`` with the ServiceAccount's kubeconfig (by default), as the pod
    runs it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        *args,
        "--kubeconfig",
        str(kubeconfig or installed.kubeconfig),
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


async def _take_away(installed: Installed, kind: str, name: str, *where: str) -> None:
    """Delete one RBAC object the manifests created, as an admin would by mistake."""
    (await installed.admin("delete", kind, name, *where)).check()


def _settings(installed: Installed, hook: Receiver) -> Path:
    """The shipped settings plus a provider whose address is in a Secret the
    provider-secrets component names, and a flux provider (doctor then checks the
    NetworkPolicies of flux-system)."""
    config = yaml.safe_load((ROOT / "config" / "manager" / "config.yaml").read_text())
    config["notify"] = {
        "providers": [
            {"name": "audit", "type": "generic", "secretRef": {"name": "fluxwatch-audit-webhook"}},
            {"name": "flux", "type": "flux", "address": hook.url},
        ],
        "alerts": [],
    }
    path = installed.workdir / "settings.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


async def _secret(installed: Installed, name: str, address: str) -> None:
    created = await installed.admin(
        "create", "secret", "generic", name, "-n", NAMESPACE, f"--from-literal=address={address}"
    )
    created.check()


async def test_doctor_finds_every_permission_it_probes_granted(
    installed: Installed, hook: Receiver
) -> None:
    """With config/default and the doctor component, doctor reads the Flux Deployments
    and NetworkPolicies, and every permission it probes is granted but the one the
    README leaves out by default (listing Secrets for the Helm storage check)."""
    await _secret(installed, "fluxwatch-audit-webhook", hook.url)
    settings = _settings(installed, hook)
    ran = await fluxwatch(installed, "doctor", "--config", str(settings), "--output", "json")
    findings = json.loads(ran.stdout)
    refused = [f["message"] for f in findings if "forbidden" in f["message"].lower()]
    assert refused == [
        "may not list secrets cluster-wide, needed for the Helm storage check "
        "(watch.verifyStorage: auto); grant a Helm storage shape (fluxwatch rbac "
        "--helm-storage), or status.history alone decides (403 Forbidden: secrets is "
        f'forbidden: User "{SERVICE_ACCOUNT}" cannot list resource "secrets" in API group '
        '"" at the cluster scope)'
    ]
    checks = {f["check"] for f in findings}
    assert {"memory", "flux-ingress"} <= checks, checks
    secret = [f for f in findings if "secrets" in f["message"] and "get" in f["message"]]
    assert secret and all(f["level"] == "pass" for f in secret), secret


async def test_doctor_without_its_component_names_the_deployment_and_the_403(
    installed: Installed,
) -> None:
    await _take_away(installed, "rolebinding", "fluxwatch-doctor", "-n", "flux-system")
    ran = await fluxwatch(installed, "doctor", "--output", "json")
    assert "Traceback" not in ran.stderr
    findings = json.loads(ran.stdout)
    unread = [f for f in findings if "Deployment flux-system/helm-controller" in f["message"]]
    assert len(unread) == 1 and unread[0]["level"] == "warn", unread
    assert (
        'deployments.apps "helm-controller" is forbidden: User '
        f'"{SERVICE_ACCOUNT}" cannot get resource "deployments" in API group "apps" in the '
        'namespace "flux-system"'
    ) in unread[0]["message"]
    assert "config/components/doctor" in unread[0]["message"]


async def test_test_alert_reads_the_provider_secret_by_name(
    installed: Installed, hook: Receiver
) -> None:
    await _secret(installed, "fluxwatch-audit-webhook", hook.url)
    settings = _settings(installed, hook)
    ran = await fluxwatch(installed, "test-alert", "--config", str(settings), "--provider", "audit")
    assert ran.code == 0, (ran.stdout, ran.stderr)
    assert ran.stdout.startswith("audit: delivered"), ran.stdout
    assert len(hook.received) == 1


async def test_test_alert_without_the_secret_names_it_and_the_403(
    installed: Installed, hook: Receiver
) -> None:
    await _secret(installed, "fluxwatch-audit-webhook", hook.url)
    await _take_away(installed, "rolebinding", "fluxwatch-provider-secrets", "-n", NAMESPACE)
    settings = _settings(installed, hook)
    ran = await fluxwatch(installed, "test-alert", "--config", str(settings), "--provider", "audit")
    assert ran.code == 1
    assert "Traceback" not in ran.stderr + ran.stdout
    assert ran.stdout.startswith("audit: FAILED"), ran.stdout
    assert (
        'secrets "fluxwatch-audit-webhook" is forbidden: User '
        f'"{SERVICE_ACCOUNT}" cannot get resource "secrets" in API group "" in the namespace '
        f'"{NAMESPACE}"'
    ) in ran.stdout
    assert hook.received == []


async def test_scan_recover_without_patch_fails_and_says_which_verb(installed: Installed) -> None:
    """The ClusterRole without patch: both rungs of the ladder are refused, the events
    name the 403 (verb, resource, user), the release is not left suspended, and the
    exit code says the recovery did not succeed."""
    no_patch = '-p=[{"op": "replace", "path": "/rules/0/verbs", "value": ["get", "list", "watch"]}]'
    patched = await installed.admin("patch", "clusterrole", "fluxwatch", "--type=json", no_patch)
    patched.check()
    ran = await fluxwatch(installed, "scan", "--recover", "--threshold", "1s")
    assert ran.code == 1, ran.stdout[-2000:]
    assert "Traceback" not in ran.stderr
    refused = (
        '403 Forbidden: helmreleases.helm.toolkit.fluxcd.io "bp-vpa" is forbidden: User '
        f'"{SERVICE_ACCOUNT}" cannot patch resource "helmreleases" in API group '
        '"helm.toolkit.fluxcd.io" in the namespace "flux-system"'
    )
    failed = [line for line in ran.stdout.splitlines() if line.startswith("RecoveryFailed:")]
    assert len(failed) == 2 and all(refused in line for line in failed), failed
    assert "1 of 1 recoveries did not succeed: flux-system/bp-vpa" in ran.stderr
    release = installed.api.store.get("helmreleases.helm.toolkit.fluxcd.io", *STUCK)
    assert not release["spec"].get("suspend")


async def test_scan_recover_with_the_rbac_recovers(installed: Installed) -> None:
    ran = await fluxwatch(installed, "scan", "--recover", "--threshold", "1s")
    assert ran.code == 0, (ran.stdout[-2000:], ran.stderr[-2000:])
    assert "RecoverySucceeded: " in ran.stdout
    # Only the optional Helm storage read is refused ("not readable (403 Forbidden)").
    assert " is forbidden: " not in ran.stdout + ran.stderr


async def _leader_lease(installed: Installed) -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "fluxwatch-leader-election", "namespace": NAMESPACE},
        "spec": {"holderIdentity": "fluxwatch-0", "leaseDurationSeconds": 15},
    }
    path = installed.workdir / "lease.yaml"
    path.write_text(yaml.safe_dump(lease))
    (await installed.admin("create", "-f", str(path))).check()


async def _approve(installed: Installed, *groups: str) -> Ran:
    """``fluxwatch approve`` as user alice in ``groups`` (impersonated by the admin, as
    ``kubectl --as --as-group``), held to the RBAC of those groups alone."""
    admin = installed.workdir / "admin"
    as_groups = [arg for group in groups for arg in ("--as-group", group)]
    return await fluxwatch(
        installed, "approve", INCIDENT, "--as", "alice", *as_groups, kubeconfig=admin
    )


async def test_approve_works_for_the_approver_group(installed: Installed) -> None:
    """components/approver's group may approve: get and patch of the leader Lease, by
    name, and a SelfSubjectReview."""
    await _leader_lease(installed)
    ran = await _approve(installed, "fluxwatch-approvers")
    assert ran.code == 0, ran.stderr
    assert ran.stdout.startswith(f"approved incident {INCIDENT} as alice"), ran.stdout
    lease = installed.api.store.get(
        "leases.coordination.k8s.io", NAMESPACE, "fluxwatch-leader-election"
    )
    assert f"fluxwatch.io/approve.{INCIDENT}" in lease["metadata"]["annotations"]


async def test_approve_outside_the_group_names_the_lease_and_the_403(
    installed: Installed,
) -> None:
    await _leader_lease(installed)
    ran = await _approve(installed, "on-call")
    assert ran.code == 1
    assert "Traceback" not in ran.stderr
    assert (
        'leases.coordination.k8s.io "fluxwatch-leader-election" is forbidden: User "alice" '
        'cannot get resource "leases" in API group "coordination.k8s.io" in the namespace '
        f'"{NAMESPACE}"'
    ) in ran.stderr
    assert "config/components/approver" in ran.stderr
    lease = installed.api.store.get(
        "leases.coordination.k8s.io", NAMESPACE, "fluxwatch-leader-election"
    )
    assert "annotations" not in lease["metadata"]


# What system:basic-user gives every authenticated user; not fluxwatch's RBAC.
BASIC_USER = {
    "selfsubjectreviews.authentication.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
}
CAN_I_ROW = re.compile(r"^(\S+)\s+\[\]\s+\[([^\]]*)\]\s+\[([^\]]*)\]$")


def _rows(
    grants: list[tuple[str, tuple[str, ...], frozenset[str]]],
) -> dict[tuple[str, str], frozenset[str]]:
    """Resource rows as kubectl prints them: one per resourceName, verbs merged."""
    rows: dict[tuple[str, str], set[str]] = {}
    for resource, names, verbs in grants:
        for name in names or ("",):
            rows.setdefault((resource, name), set()).update(verbs)
    return {key: frozenset(verbs) for key, verbs in rows.items()}


@pytest.mark.parametrize("namespace", ["flux-system", NAMESPACE, "default"])
async def test_can_i_list_reads_like_the_readme(installed: Installed, namespace: str) -> None:
    """``kubectl auth can-i --list`` of the ServiceAccount, in the Flux namespace, its
    own and any other, is the README's table for the components installed."""
    listed = await installed.admin(
        "auth", "can-i", "--list", f"--as={SERVICE_ACCOUNT}", "-n", namespace
    )
    seen = []
    for line in listed.check().stdout.splitlines()[1:]:
        found = CAN_I_ROW.match(line.strip())
        if found and found[1] not in BASIC_USER:
            names = tuple(found[2].split()) if found[2] else ()
            seen.append((found[1], names, frozenset(found[3].split())))
    sources = {f"components/{name}" for name in COMPONENTS} | {"config/rbac"}
    claimed = [
        (g.resource, g.names, g.verbs)
        for g in readme_grants()
        if g.subject == ("ServiceAccount", f"{NAMESPACE}/fluxwatch")
        and g.source in sources
        and g.namespace in (None, namespace)
    ]
    assert _rows(seen) == _rows(claimed)


async def test_scan_recover_says_a_release_is_left_suspended_when_its_resume_is_refused(
    installed: Installed,
) -> None:
    """Patch taken away between suspend-toggle's suspend and its resume: the resume's 403
    is reported (a RecoveryFailed that says the release is suspended by fluxwatch and
    why), the exit code is 1, and the marker stays for the next run to resume it."""
    config = yaml.safe_load((ROOT / "config" / "manager" / "config.yaml").read_text())
    config["recovery"].update(strategies=["suspend-toggle"], suspendPause="3s")
    config["shutdownTimeout"] = "3s"
    settings = installed.workdir / "settings.yaml"
    settings.write_text(yaml.safe_dump(config))
    scan = asyncio.create_task(
        fluxwatch(installed, "scan", "--config", str(settings), "--recover", "--threshold", "1s")
    )
    store = installed.api.store
    for _ in range(200):
        if store.get("helmreleases.helm.toolkit.fluxcd.io", *STUCK)["spec"].get("suspend"):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("scan --recover never suspended the release")
    no_patch = '-p=[{"op": "replace", "path": "/rules/0/verbs", "value": ["get", "list", "watch"]}]'
    patched = await installed.admin("patch", "clusterrole", "fluxwatch", "--type=json", no_patch)
    patched.check()
    ran = await scan
    assert ran.code == 1, ran.stdout[-2000:]
    assert "Traceback" not in ran.stderr
    refused = (
        f'"bp-vpa" is forbidden: User "{SERVICE_ACCOUNT}" cannot patch resource "helmreleases"'
    )
    told = [
        line
        for line in ran.stdout.splitlines()
        if line.startswith("RecoveryFailed: ") and "refused the resume" in line
    ]
    assert len(told) == 1 and refused in told[0], ran.stdout[-2000:]
    assert "HelmRelease flux-system/bp-vpa is left suspended by fluxwatch" in ran.stderr
    release = store.get("helmreleases.helm.toolkit.fluxcd.io", *STUCK)
    assert release["spec"]["suspend"] is True
    assert "fluxwatch.io/suspended-at" in release["metadata"]["annotations"]
    # Patch granted again: the next pass resumes what fluxwatch suspended.
    (await installed.admin("apply", "-k", str(installed.workdir / "overlay"))).check()
    again = await fluxwatch(installed, "scan", "--config", str(settings), "--recover")
    assert "Traceback" not in again.stderr
    release = store.get("helmreleases.helm.toolkit.fluxcd.io", *STUCK)
    assert not release["spec"]["suspend"], again.stdout[-2000:]
    assert "fluxwatch.io/suspended-at" not in (release["metadata"].get("annotations") or {})


def _status_correct_only(installed: Installed) -> Path:
    config = yaml.safe_load((ROOT / "config" / "manager" / "config.yaml").read_text())
    config["recovery"].update(strategies=["status-correct"], statusCorrect=True)
    settings = installed.workdir / "status-correct.yaml"
    settings.write_text(yaml.safe_dump(config))
    return settings


async def test_status_correct_patches_status_with_its_component(installed: Installed) -> None:
    settings = _status_correct_only(installed)
    ran = await fluxwatch(
        installed, "scan", "--config", str(settings), "--recover", "--threshold", "1s"
    )
    assert ran.code == 0, (ran.stdout[-2000:], ran.stderr[-2000:])
    assert "RecoverySucceeded: " in ran.stdout
    assert "status-correct" in ran.stdout


async def test_status_correct_without_its_component_names_the_status_subresource(
    installed: Installed,
) -> None:
    await _take_away(installed, "clusterrolebinding", "fluxwatch-status-correct")
    settings = _status_correct_only(installed)
    ran = await fluxwatch(
        installed, "scan", "--config", str(settings), "--recover", "--threshold", "1s"
    )
    assert ran.code == 1
    assert "Traceback" not in ran.stderr
    refused = (
        f'"bp-vpa" is forbidden: User "{SERVICE_ACCOUNT}" cannot patch resource '
        '"helmreleases/status" in API group "helm.toolkit.fluxcd.io" in the namespace '
        '"flux-system"'
    )
    failed = [line for line in ran.stdout.splitlines() if line.startswith("RecoveryFailed:")]
    assert len(failed) == 1 and refused in failed[0], ran.stdout[-2000:]


@pytest.mark.parametrize("command", [["check-config"], ["rbac"]])
async def test_check_config_and_rbac_make_no_api_call(tmp_path: Path, command: list[str]) -> None:
    """Both read settings only: they work with no cluster to talk to."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "POD_NAMESPACE": NAMESPACE,
            "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
        },
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out


NO_LIST = '-p=[{"op": "replace", "path": "/rules/0/verbs", "value": ["get", "watch", "patch"]}]'
TAKEN = {
    "helmreleases-list": (
        ("patch", "clusterrole", "fluxwatch", "--type=json", NO_LIST),
        'cannot list resource "helmreleases" in API group "helm.toolkit.fluxcd.io" at the '
        "cluster scope",
    ),
    "own-lease": (
        ("delete", "rolebinding", "fluxwatch-leader-election", "-n", NAMESPACE),
        'leases.coordination.k8s.io "fluxwatch-leader-election" is forbidden: User '
        f'"{SERVICE_ACCOUNT}" cannot get resource "leases" in API group '
        f'"coordination.k8s.io" in the namespace "{NAMESPACE}"',
    ),
    "flux-leases": (
        ("delete", "rolebinding", "fluxwatch-flux-leases", "-n", "flux-system"),
        'cannot list resource "leases" in API group "coordination.k8s.io" in the namespace '
        '"flux-system"',
    ),
}


@pytest.mark.parametrize("taken", sorted(TAKEN))
async def test_the_daemon_logs_the_403_of_a_permission_taken_away(
    installed: Installed, taken: str
) -> None:
    """``fluxwatch run`` as the ServiceAccount with one rule gone: it keeps running (RBAC
    may be fixed without a restart) and its log carries the API server's 403, which
    names the verb, the resource and where; a SIGTERM still stops it cleanly."""
    command, refused = TAKEN[taken]
    (await installed.admin(*command)).check()
    config = yaml.safe_load((ROOT / "config" / "manager" / "config.yaml").read_text())
    config["telemetry"]["logEncoding"] = "console"
    settings = installed.workdir / "run.yaml"
    settings.write_text(yaml.safe_dump(config))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        "run",
        "--config",
        str(settings),
        "--kubeconfig",
        str(installed.kubeconfig),
        "--metrics-addr",
        "127.0.0.1:0",
        "--health-addr",
        "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "POD_NAMESPACE": NAMESPACE, "POD_NAME": "fluxwatch-0"},
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not any(refused in line for line in seen):
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(seen)
                seen.append(line)
    finally:
        proc.terminate()
        rest, _ = await proc.communicate()
    seen.append(rest.decode())
    assert proc.returncode == 0, "".join(seen)
    assert "Traceback" not in "".join(seen)
