"""``fluxwatch approve`` as a person runs it: a subprocess, a kubeconfig, the embedded
cluster over HTTP with RBAC enforced. ``by`` is whoever the API server says made the
request: the admin, a ServiceAccount token bound to ``config/components/approver``'s
rules, or a user impersonated with ``--as``."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxwatch.cli import main
from fluxwatch.kube.approvals import Approval, approvals
from fluxwatch.kube.approver import SELF_SUBJECT_REVIEWS, whoami
from fluxwatch.kube.client import Impersonation, KubeClient
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import find_kubectl
from tests.conftest import kustomize

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = ROOT / "config" / "components" / "approver" / "role.yaml"
LEASES = "leases.coordination.k8s.io"
NS, LEASE = "fluxwatch-system", "fluxwatch-leader-election"
INCIDENT = "inc-20260127t184512"
GUARDRAIL = '{"budget":[1769539512.0]}'
BOT = "system:serviceaccount:oncall:approver-bot"
NOBODY = "system:serviceaccount:oncall:nobody"

MakeServer = Callable[..., Awaitable[ApiServer]]


def _bindings(tmp_path: Path) -> Path:
    """The component's two roles bound to one ServiceAccount, as a cluster admin would."""
    subject = {"kind": "ServiceAccount", "name": "approver-bot", "namespace": "oncall"}
    docs = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": "approver-bot", **({"namespace": NS} if ns else {})},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": kind.removesuffix("Binding"),
                "name": "fluxwatch-approver",
            },
            "subjects": [subject],
        }
        for kind, ns in (("RoleBinding", True), ("ClusterRoleBinding", False))
    ]
    path = tmp_path / "bindings.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


@pytest.fixture
async def cluster(make_apiserver: MakeServer, tmp_path: Path) -> ApiServer:
    return await make_apiserver(rbac_files=[COMPONENT, _bindings(tmp_path)])


def _lease(server: ApiServer, holder: str = "fluxwatch-7d9f-abcde") -> dict[str, Any]:
    """fluxwatch's leader Lease as a leader leaves it: held, with its own hand-over."""
    return server.store.create(
        LEASES,
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": LEASE,
                "namespace": NS,
                "annotations": {"fluxwatch.io/guardrail": GUARDRAIL},
            },
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
        },
    )


def _annotations(server: ApiServer, name: str = LEASE) -> dict[str, str]:
    lease = server.store.get(LEASES, NS, name)
    return dict(lease["metadata"].get("annotations") or {})


async def approve(
    server: ApiServer, tmp_path: Path, *args: str, token: str | None = None
) -> tuple[int, str, str]:
    """``fluxwatch approve ARGS`` with a kubeconfig for ``token`` (the admin's by default),
    the command's own ``main`` in a thread of its own (its own event loop, as from a shell;
    a subprocess costs seconds to import on a busy machine): exit code, stdout, stderr."""
    kubeconfig = server.write_kubeconfig(tmp_path / f"kubeconfig-{time.monotonic_ns()}", token)
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                return main(["approve", "--kubeconfig", str(kubeconfig), *args])
            except SystemExit as exc:  # argparse's usage errors
                return int(exc.code or 0)

    code = await asyncio.wait_for(asyncio.to_thread(run), 30)
    return code, out.getvalue(), err.getvalue()


async def approve_process(server: ApiServer, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """The same as a person types it: ``python -m fluxwatch approve ...``."""
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig-process")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        "approve",
        "--kubeconfig",
        str(kubeconfig),
        *args,
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "POD_NAMESPACE": NS,
            "PYTHONPATH": str(ROOT),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture(autouse=True)
def _settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """fluxwatch's namespace as in its pod; nothing from the developer's environment."""
    for name in list(os.environ):
        if name.startswith("FLUXWATCH_") or name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("POD_NAMESPACE", NS)
    monkeypatch.setenv("HOME", str(tmp_path))


def _approval(server: ApiServer) -> Approval:
    found, problems = approvals(_annotations(server))
    assert problems == []
    [one] = found
    return one


async def test_the_admin_approves_with_one_annotation_beside_the_leaders_own(
    cluster: ApiServer, tmp_path: Path
) -> None:
    _lease(cluster)
    # The cluster's clock runs an hour ahead of this machine's: the approval is dated by
    # the API server (the SelfSubjectReview's creationTimestamp), the clock the leader has.
    cluster.store._clock = lambda: time.time() + 3600
    started = time.time()
    code, out, err = await approve_process(
        cluster, tmp_path, INCIDENT, "--reason", "API blip, deployed"
    )
    assert code == 0, err
    annotations = _annotations(cluster)
    assert annotations["fluxwatch.io/guardrail"] == GUARDRAIL, "the leader's own hand-over"
    raw = annotations[f"fluxwatch.io/approve.{INCIDENT}"]
    assert raw == raw.replace(" ", "").replace("APIblip,deployed", "API blip, deployed")
    approval = _approval(cluster)
    assert (approval.incident, approval.by, approval.reason) == (
        INCIDENT,
        "system:admin",
        "API blip, deployed",
    )
    assert int(started) + 3600 <= approval.at <= time.time() + 3600
    assert out.splitlines()[:3] == [
        f"approved incident {INCIDENT} as system:admin",
        f"  wrote annotation fluxwatch.io/approve.{INCIDENT} on Lease {NS}/{LEASE}",
        "  reason: API blip, deployed",
    ]
    assert "the leader, fluxwatch-7d9f-abcde, reads it at its next renewal" in out
    assert f"kubectl get events -n {NS} --field-selector reason=IncidentApproved" in out
    assert approval.token not in out + err, "the token is the leader's business"

    # Approving again writes a new token (the command says it replaces the first).
    code, out, err = await approve(cluster, tmp_path, INCIDENT)
    assert code == 0, err
    again = _approval(cluster)
    assert again.token != approval.token and again.reason == ""
    assert "replaces the approval of this incident" in out


async def test_by_is_who_the_api_server_says_made_the_request(
    cluster: ApiServer, tmp_path: Path
) -> None:
    """A ServiceAccount token with the component's rules; the admin impersonating a person
    of group fluxwatch-approvers (the component's own binding); and whoever lacks them."""
    _lease(cluster)
    code, out, err = await approve(cluster, tmp_path, INCIDENT, token=cluster.token_for(BOT))
    assert code == 0, err
    assert _approval(cluster).by == BOT
    assert out.startswith(f"approved incident {INCIDENT} as {BOT}\n")

    code, out, err = await approve(
        cluster, tmp_path, INCIDENT, "--as", "alice", "--as-group", "fluxwatch-approvers"
    )
    assert code == 0, err
    assert _approval(cluster).by == "alice"

    before = _annotations(cluster)
    for args, token in (((), cluster.token_for(NOBODY)), (("--as", "bob"), None)):
        code, out, err = await approve(cluster, tmp_path, INCIDENT, *args, token=token)
        assert code == 1, (out, err)
        assert out == ""
        assert "403 Forbidden" in err and f'"{LEASE}" is forbidden' in err
        assert "needs get and patch on Lease fluxwatch-system/fluxwatch-leader-election" in err
        assert "config/components/approver" in err
    assert _annotations(cluster) == before, "a refused approval writes nothing"


async def test_each_impersonated_group_is_a_header_of_its_own(
    cluster: ApiServer, tmp_path: Path
) -> None:
    """The API server reads every Impersonate-Group header; one header per name would
    keep one group."""
    impersonate = Impersonation("alice", ("fluxwatch-approvers", "dev"))
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    async with await KubeClient.from_config(kubeconfig, impersonate=impersonate) as client:
        assert (await whoami(client))[0] == "alice"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        review = await client.request("POST", SELF_SUBJECT_REVIEWS, body=body)
    groups = review["status"]["userInfo"]["groups"]
    assert groups[:2] == ["fluxwatch-approvers", "dev"], groups


async def test_the_rules_name_one_lease(cluster: ApiServer, tmp_path: Path) -> None:
    """The approver may read no other Lease, not even a shard's in the same namespace: the
    command run for a shard (``--watch-label-selector``) is refused, nothing is written."""
    _lease(cluster)
    code, _out, err = await approve(
        cluster,
        tmp_path,
        INCIDENT,
        "--watch-label-selector",
        "shard=a",
        token=cluster.token_for(BOT),
    )
    assert code == 1
    assert "is forbidden" in err and "fluxwatch-leader-election-" in err
    assert _annotations(cluster) == {"fluxwatch.io/guardrail": GUARDRAIL}


async def test_no_lease_no_leader_election_and_usage_errors(
    cluster: ApiServer, tmp_path: Path
) -> None:
    code, out, err = await approve(cluster, tmp_path, INCIDENT)
    assert (code, out) == (1, "")
    assert f"Lease {NS}/{LEASE} does not exist: no fluxwatch leads there" in err
    assert "leader.enabled" in err

    _lease(cluster, holder="")
    code, out, err = await approve(cluster, tmp_path, INCIDENT)
    assert code == 0, err
    assert "no replica leads right now: the next leader reads it" in out

    for args, env, message in [
        (("INC-1",), {}, "argument incident: incident 'INC-1': must be lowercase"),
        (("inc-",), {}, "ends with '-'"),
        ((INCIDENT, "--as-group", "ops"), {}, "--as-group needs --as"),
        ((INCIDENT, "--reason", "r" * 1025), {}, "--reason is 1025 characters long"),
        ((INCIDENT,), {"FLUXWATCH_LEADER__ENABLED": "false"}, "leader.enabled is false"),
    ]:
        before = cluster.store.get(LEASES, NS, LEASE)["metadata"]["resourceVersion"]
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            code, out, err = await approve(cluster, tmp_path, *args)
        assert (code, out) == (2, ""), (args, err)
        assert message in err, err
        assert cluster.store.get(LEASES, NS, LEASE)["metadata"]["resourceVersion"] == before


def test_the_component_renders_with_config_default(tmp_path: Path) -> None:
    """``components: [../components/approver]`` beside config/default, as an overlay adds
    it: its four objects come out as written (the rules the tests above run on)."""
    kubectl = find_kubectl()
    if kubectl is None:
        pytest.skip("kubectl is not installed: it renders config/")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(ROOT / "config" / "default", overlay)],
                "components": [os.path.relpath(COMPONENT.parent, overlay)],
            }
        )
    )
    rendered = kustomize(kubectl, overlay)
    mine = sorted(
        (d for d in rendered if d["metadata"]["name"] == "fluxwatch-approver"),
        key=lambda d: str(d["kind"]),
    )
    written = [d for d in yaml.safe_load_all(COMPONENT.read_text()) if d]
    assert mine == sorted(written, key=lambda d: str(d["kind"]))
    assert len(mine) == 4
    assert any(d["kind"] == "Deployment" for d in rendered)


async def test_approve_waits_out_a_throttled_api_server_and_says_so_when_it_gives_up(
    cluster: ApiServer, tmp_path: Path
) -> None:
    """APF's 429 with Retry-After is waited out (two here); a server that still throttles
    after the client's retries gets a message naming the 429 and the retries, exit 1."""
    _lease(cluster)
    cluster.faults.fail_next(2, code=429, retry_after=0, verb="patch", resource=LEASES)
    code, out, err = await approve(cluster, tmp_path, INCIDENT)
    assert code == 0, err
    assert out.startswith(f"approved incident {INCIDENT} as ")
    assert cluster.stats.requests[("patch", LEASES)] == 3

    cluster.faults.fail_next(10**6, code=429, retry_after=0)
    code, out, err = await approve(cluster, tmp_path, INCIDENT)
    assert code == 1 and out == ""
    *retries, last = err.strip().splitlines()
    assert len(retries) == 10
    assert all("429 TooManyRequests, retrying in 0s as asked" in line for line in retries)
    assert last == (
        "fluxwatch: approve: POST /apis/authentication.k8s.io/v1/selfsubjectreviews: 429 "
        "TooManyRequests: Too many requests, please try again later. (still refused after "
        "10 retries, as Retry-After asked)"
    )
    assert "Traceback" not in err
