"""``fluxwatch doctor`` against the emulator: Flux Deployments in the store, RBAC from
``config/``, a local receiver standing in for notification-controller.

FLUX-FACTS §5: the controllers' leader-election flags default to 35s/30s/5s; §1:
the seed advises 60s/40s/5s and memory limits of 512Mi (helm-controller) and
384Mi (kustomize- and source-controller).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from fluxwatch.doctor import CONTROLLERS, Finding, Level, exit_code, run_doctor
from fluxwatch.kube.client import KubeClient
from fluxwatch.kube.probe import PROBE_NAME
from fluxwatch.settings import Settings
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.fluxinstall import DEFAULT, SEED_MITIGATED, FluxInstall, deployment
from fluxwatch.sim.fluxinstall import install_flux as sim_install_flux
from fluxwatch.sim.receiver import Receiver
from fluxwatch.sim.scenarios import FLUX_CONTROLLERS

ROOT = Path(__file__).resolve().parents[2]
SERVICE_ACCOUNT = "system:serviceaccount:fluxwatch-system:fluxwatch"
DEPLOYMENTS = "deployments.apps"
# The seed's cluster before its fix: Flux's flags, and its chart's 256Mi memory limits.
BEFORE_THE_FIX = FluxInstall(memory_limits=dict.fromkeys(CONTROLLERS, "256Mi"))


def install_flux(api: ApiServer, install: FluxInstall) -> None:
    """Flux's controllers as `flux install` creates them (fluxwatch.sim.fluxinstall)."""
    sim_install_flux(api.store, FLUX_CONTROLLERS, install)


def settings(**data: Any) -> Settings:
    return Settings.model_validate({"leader": {"namespace": "fluxwatch-system"}, **data})


def lines(findings: list[Finding], check: str) -> list[tuple[Level, str]]:
    return [(f.level, f.message) for f in findings if f.check == check]


@pytest.fixture
async def nc() -> AsyncIterator[Receiver]:
    """Stands in for notification-controller's event address."""
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


ClientFor = Callable[[ApiServer, str | None], Awaitable[KubeClient]]


@pytest.fixture
async def client_for(tmp_path: Path) -> AsyncIterator[ClientFor]:
    """Clients on an emulator, with the token of a subject (None: the admin)."""
    opened: list[KubeClient] = []

    async def make(api: ApiServer, subject: str | None = None) -> KubeClient:
        token = api.token_for(subject) if subject else None
        path = api.write_kubeconfig(tmp_path / f"kubeconfig-{len(opened)}", token=token)
        client = await KubeClient.from_config(path)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()


async def test_a_default_flux_install_warns_about_leader_election_only(
    apiserver: ApiServer, client_for: ClientFor, nc: Receiver
) -> None:
    """FLUX-FACTS §5: `flux install` sets no leader-election flags, so 35s/30s/5s; its 1Gi
    memory limits are above the advice; its helm-controller (v1.6.3) has #1411."""
    install_flux(apiserver, DEFAULT)
    findings = await run_doctor(settings(), await client_for(apiserver, None), events_addr=nc.url)
    leader = lines(findings, "leader-election")
    assert [level for level, _ in leader] == [Level.WARN] * 3
    assert all("35s/30s/5s (Flux's defaults)" in message for _, message in leader)
    assert [m.split(":")[0] for _, m in leader] == [
        "helm-controller",
        "kustomize-controller",
        "source-controller",
    ]
    assert (
        "set --leader-election-lease-duration=60s --leader-election-renew-deadline=40s"
        in (leader[0][1])
    )
    assert lines(findings, "memory") == [
        (Level.PASS, f"{c}: memory limit 1Gi (advice: at least {m})")
        for c, m in (
            ("helm-controller", "512Mi"),
            ("kustomize-controller", "384Mi"),
            ("source-controller", "384Mi"),
        )
    ]
    versions = lines(findings, "version")
    assert [level for level, _ in versions] == [Level.PASS] * 3
    assert versions[0][1].startswith("helm-controller v1.6.3 has helm-controller#1411")
    assert versions[1][1] == (
        "kustomize-controller v1.9.4 (ghcr.io/fluxcd/kustomize-controller:v1.9.4)"
    )
    assert exit_code(findings) == 0  # warnings only


async def test_the_seeds_cluster_before_its_fix_warns_about_memory_too(
    apiserver: ApiServer, client_for: ClientFor, nc: Receiver
) -> None:
    """FLUX-FACTS §1: 256Mi limits are below the seed's 512Mi/384Mi: an OOM kill costs the
    Lease like an API blip does."""
    install_flux(apiserver, BEFORE_THE_FIX)
    findings = await run_doctor(settings(), await client_for(apiserver, None), events_addr=nc.url)
    memory = lines(findings, "memory")
    assert [level for level, _ in memory] == [Level.WARN] * 3
    assert "memory limit 256Mi is below the advised 512Mi" in memory[0][1]


def upstream_rows(findings: list[Finding]) -> dict[str, tuple[Level, str]]:
    """The upstream table's rows as doctor reported them: "ref kind" -> (level, applies)."""
    return {
        f"{f.detail['ref']} {f.detail['kind']}": (f.level, f.detail["applies"])
        for f in findings
        if f.check == "upstream" and f.detail is not None
    }


async def test_a_helm_controller_before_the_upstream_fix_warns(
    apiserver: ApiServer, client_for: ClientFor, nc: Receiver
) -> None:
    """FLUX-FACTS §1: helm-controller#1411 is first in v1.5.0. A cluster still on Flux
    v2.7's helm-controller v1.4.1 lacks it and has the retry-wrapper memory leak (v1.2.0
    until v1.5.5); it is past v1.4.0's Ready=Unknown at every reconcile (#1320)."""
    install_flux(apiserver, replace(SEED_MITIGATED, versions={"helm-controller": "v1.4.1"}))
    findings = await run_doctor(settings(), await client_for(apiserver, None), events_addr=nc.url)
    [(level, message), *_] = lines(findings, "version")
    assert level is Level.WARN
    assert message.startswith("helm-controller v1.4.1 predates v1.5.0")
    rows = upstream_rows(findings)
    assert {ref for ref, (level, _) in rows.items() if level is Level.WARN} == {
        "helm-controller#1411 fix",
        "helm-controller#1485 regression",
    }
    assert rows["helm-controller#1320 regression"] == (Level.PASS, "fixed")
    assert rows["helm-controller#1409 report"] == (Level.PASS, "not-yet")
    assert any(
        m.startswith("helm-controller v1.4.1 lacks helm-controller#1411 (v1.5.0 of 2026-02-20)")
        for _, m in lines(findings, "upstream")
    )
    # Only helm-controller is held against the table.
    assert all(m.startswith("helm-controller v1.4.1 ") for _, m in lines(findings, "upstream"))


async def test_a_current_helm_controller_has_every_fix_and_still_the_reported_shape(
    apiserver: ApiServer, client_for: ClientFor, nc: Receiver
) -> None:
    """FLUX-FACTS §1: v1.6.3 (Flux v2.9.4) has #1411, and the #1409 shape was reported after
    it: every row passes, and the report's row says fluxwatch keeps watching."""
    install_flux(apiserver, SEED_MITIGATED)
    findings = await run_doctor(settings(), await client_for(apiserver, None), events_addr=nc.url)
    rows = upstream_rows(findings)
    assert rows["helm-controller#1411 fix"] == (Level.PASS, "in")
    assert rows["helm-controller#1409 report"] == (Level.PASS, "in")
    assert rows["helm-controller#1485 regression"] == (Level.PASS, "fixed")
    assert {level for level, _ in rows.values()} == {Level.PASS}
    report = next(m for _, m in lines(findings, "upstream") if "is among the releases of" in m)
    assert report.startswith("helm-controller v1.6.3 is among the releases of helm-controller#1409")
    assert "fluxwatch: the failure fluxwatch exists for is not fixed in this release" in report


async def test_a_helm_controller_pinned_by_digest_only_cannot_be_placed(
    apiserver: ApiServer, client_for: ClientFor, nc: Receiver
) -> None:
    digest = "ghcr.io/fluxcd/helm-controller@sha256:" + "b" * 64
    install_flux(apiserver, replace(SEED_MITIGATED, versions={"helm-controller": digest}))
    findings = await run_doctor(settings(), await client_for(apiserver, None), events_addr=nc.url)
    [(level, message)] = lines(findings, "upstream")
    assert level is Level.WARN
    assert message.startswith(f"helm-controller: image {digest!r} has no version tag")
    assert lines(findings, "version")[0][0] is Level.WARN


async def test_the_seeds_values_pass_everything(
    apiserver: ApiServer, client_for: ClientFor, nc: Receiver
) -> None:
    install_flux(apiserver, SEED_MITIGATED)
    findings = await run_doctor(settings(), await client_for(apiserver, None), events_addr=nc.url)
    assert [(f.check, f.message) for f in findings if f.level is not Level.PASS] == []
    assert {f.check for f in findings} == {
        "api",
        "leader-election",
        "memory",
        "version",
        "upstream",
        "rbac",
        "notification-controller",
    }
    assert lines(findings, "leader-election")[0] == (
        Level.PASS,
        "helm-controller: lease/renew/retry 60s/40s/5s (advice 60s/40s/5s)",
    )
    assert lines(findings, "notification-controller") == [
        (Level.PASS, f"{nc.url.rstrip('/')} answers (HTTP 405)")
    ]
    assert exit_code(findings) == 0


async def test_a_missing_helm_controller_fails(
    apiserver: ApiServer, client_for: ClientFor, nc: Receiver
) -> None:
    apiserver.store.create(DEPLOYMENTS, deployment("source-controller", SEED_MITIGATED))
    findings = await run_doctor(settings(), await client_for(apiserver, None), events_addr=nc.url)
    leader = lines(findings, "leader-election")
    assert leader[0][0] is Level.FAIL and "helm-controller" in leader[0][1]
    assert leader[1][0] is Level.WARN and "kustomize-controller" in leader[1][1]
    assert leader[2][0] is Level.PASS
    assert exit_code(findings) == 1


async def test_as_fluxwatch_with_the_shipped_rbac(
    make_apiserver: Callable[..., Awaitable[ApiServer]], client_for: ClientFor, nc: Receiver
) -> None:
    """Every permission fluxwatch uses is probed and granted; Helm storage (an optional
    component) is a warning; nothing was written by the dry-run probes."""
    api = await make_apiserver(rbac_files=[ROOT / "config" / "rbac"])
    install_flux(api, SEED_MITIGATED)
    client = await client_for(api, SERVICE_ACCOUNT)
    findings = await run_doctor(settings(), client, events_addr=nc.url)
    rbac = lines(findings, "rbac")
    assert [m for level, m in rbac if level is Level.FAIL] == []
    assert [m.split(",")[0] for level, m in rbac if level is Level.WARN] == [
        "may not list secrets cluster-wide"
    ]
    granted = {m.split(" (")[0] for level, m in rbac if level is Level.PASS}
    assert granted == {
        "may list helmreleases.helm.toolkit.fluxcd.io cluster-wide",
        "may watch helmreleases.helm.toolkit.fluxcd.io cluster-wide",
        "may get helmreleases.helm.toolkit.fluxcd.io in flux-system",
        "may patch helmreleases.helm.toolkit.fluxcd.io in flux-system",
        "may list leases.coordination.k8s.io in flux-system",
        "may watch leases.coordination.k8s.io in flux-system",
        "may get leases.coordination.k8s.io in fluxwatch-system",
        "may create leases.coordination.k8s.io in fluxwatch-system",
        "may update leases.coordination.k8s.io in fluxwatch-system",
        # Recording Events (on by default): on the releases and Flux's Leases, on its own.
        "may create events in flux-system",
        "may patch events in flux-system",
        "may create events in fluxwatch-system",
        "may patch events in fluxwatch-system",
    }
    # The Deployments are not fluxwatch's to read without the doctor component.
    assert [level for level, _ in lines(findings, "leader-election")] == [Level.WARN] * 3
    assert "config/components/doctor" in lines(findings, "leader-election")[0][1]
    assert exit_code(findings) == 0
    # dryRun=All: the probes left nothing behind.
    for key in ("leases.coordination.k8s.io", "events"):
        names = [o["metadata"]["name"] for o in api.store.list(key)[0]]
        assert PROBE_NAME not in names


async def test_the_doctor_component_lets_fluxwatch_read_the_controllers(
    make_apiserver: Callable[..., Awaitable[ApiServer]], client_for: ClientFor, nc: Receiver
) -> None:
    config = ROOT / "config"
    api = await make_apiserver(
        rbac_files=[
            config / "rbac",
            config / "components" / "doctor",
            config / "components" / "helm-storage",
            config / "components" / "status-correct",
        ]
    )
    install_flux(api, DEFAULT)
    client = await client_for(api, SERVICE_ACCOUNT)
    findings = await run_doctor(
        settings(recovery={"statusCorrect": True}), client, events_addr=nc.url
    )
    assert [level for level, _ in lines(findings, "leader-election")] == [Level.WARN] * 3
    assert all("Flux's defaults" in m for _, m in lines(findings, "leader-election"))
    assert all(level is Level.PASS for level, _ in lines(findings, "rbac"))
    assert any(
        "helmreleases.helm.toolkit.fluxcd.io/status" in m for _, m in lines(findings, "rbac")
    )


async def test_missing_permissions_fail(
    apiserver: ApiServer, client_for: ClientFor, nc: Receiver
) -> None:
    """A subject no binding names: every probe is a 403; the status-correct and leader
    Lease permissions fail, the optional Helm storage list only warns."""
    install_flux(apiserver, SEED_MITIGATED)
    client = await client_for(apiserver, "system:serviceaccount:default:nobody")
    findings = await run_doctor(
        settings(recovery={"statusCorrect": True}), client, events_addr=nc.url
    )
    rbac = lines(findings, "rbac")
    assert all(level is not Level.PASS for level, _ in rbac)
    failed = [m for level, m in rbac if level is Level.FAIL]
    assert any(
        m.startswith("may not patch helmreleases.helm.toolkit.fluxcd.io/status") for m in failed
    )
    assert any(
        m.startswith("may not create leases.coordination.k8s.io in fluxwatch-system")
        for m in failed
    )
    assert all("403 Forbidden" in m for m in failed)
    assert exit_code(findings) == 1


async def test_a_flux_provider_whose_address_does_not_answer_fails(
    apiserver: ApiServer, client_for: ClientFor, nc: Receiver
) -> None:
    install_flux(apiserver, SEED_MITIGATED)
    await nc.stop()  # nobody listens there any more
    forwarding = settings(
        notify={"providers": [{"name": "flux", "type": "flux", "address": nc.url}]}
    )
    findings = await run_doctor(forwarding, await client_for(apiserver, None))
    [(level, message)] = lines(findings, "notification-controller")
    assert level is Level.FAIL
    assert "the flux provider forwards events there" in message
    # Without a flux provider the same silence is only a warning.
    findings = await run_doctor(settings(), await client_for(apiserver, None), events_addr=nc.url)
    assert lines(findings, "notification-controller")[0][0] is Level.WARN


async def test_the_command_line(apiserver: ApiServer, tmp_path: Path, nc: Receiver) -> None:
    """``fluxwatch doctor`` prints one line per check and exits 0 without failures."""
    install_flux(apiserver, DEFAULT)
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    common = [sys.executable, "-m", "fluxwatch", "doctor", "--kubeconfig", str(kubeconfig)]
    proc = await asyncio.create_subprocess_exec(
        *common,
        "--events-address",
        nc.url,
        "--log-level",
        "error",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "POD_NAMESPACE": "fluxwatch-system"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    text = out.decode().splitlines()
    assert text[-1].endswith("0 failed")
    assert ["WARN", "leader-election", "helm-controller:"] in [line.split()[:3] for line in text]

    proc = await asyncio.create_subprocess_exec(
        *common,
        "--flux-namespace",
        "elsewhere",
        "--output",
        "json",
        "--log-level",
        "error",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "POD_NAMESPACE": "fluxwatch-system"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 1, err.decode()  # no helm-controller in "elsewhere"
    doc = orjson.loads(out)
    assert {"check": "leader-election", "level": "fail"}.items() <= doc[2].items()
