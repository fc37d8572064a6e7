"""The shipped deployment is enough, and no more: ``kubectl apply -k config/default``
against the embedded cluster, the daemon's token minted by ``kubectl create token
fluxwatch -n fluxwatch-system`` (a TokenRequest for the ServiceAccount the Deployment
runs as), and a real daemon run with that token through the seed's incident.

The RBAC the daemon is held to is the objects kubectl created, nothing loaded beside
the API. The daemon's settings are the applied ConfigMap's ``config.yaml`` (durations
compressed, telemetry on loopback), its identity and namespace come from ``POD_NAME``
and ``POD_NAMESPACE`` as the Deployment's downward API sets them, and its events are
recorded as core/v1 Events by default, so Event writes (create, and the patch that folds
a repeat) are exercised with that token too. FLUX-FACTS §1:
incident-925 leaves ``flux-system/bp-vpa`` stuck; §3: force-reconcile is a patch of two
annotations, which the ClusterRole allows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxwatch.app import Daemon, build_recorder, build_router
from fluxwatch.demo import compressed
from fluxwatch.kube.client import HELMRELEASES, SECRETS, KubeApiError, KubeClient
from fluxwatch.kube.patch import KubeEventWriter
from fluxwatch.notify.event import Event
from fluxwatch.notify.metrics import PrometheusMetrics
from fluxwatch.settings import load_settings
from fluxwatch.sim import scenarios
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl, find_kubectl
from fluxwatch.telemetry.metrics import Metrics

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SERVICE_ACCOUNT = "system:serviceaccount:fluxwatch-system:fluxwatch"
STUCK = ("flux-system", "bp-vpa")
TIME_SCALE = 0.01


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    kubectl = find_kubectl()
    if kubectl is None:
        pytest.skip("kubectl is not installed: it renders config/default (kubectl kustomize)")
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "config" / "default")],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"{kind} {name}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def test_the_deployment_matches_its_rbac_and_settings(rendered: list[dict[str, Any]]) -> None:
    """The pod runs as the ServiceAccount the RBAC binds, with the ConfigMap it mounts."""
    deploy = _one(rendered, "Deployment", "fluxwatch")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "fluxwatch"
    assert deploy["metadata"]["namespace"] == "fluxwatch-system"
    assert deploy["spec"]["replicas"] == 2
    container = pod["containers"][0]
    assert container["args"][:2] == ["run", "--config=/etc/fluxwatch/config.yaml"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 65532
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http-prom": 8080, "healthz": 9440}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_map = _one(rendered, "ConfigMap", "fluxwatch-config")
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    pdb = _one(rendered, "PodDisruptionBudget", "fluxwatch")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]
    service = _one(rendered, "Service", "fluxwatch-metrics")
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    account = _one(rendered, "ServiceAccount", "fluxwatch")
    assert account["metadata"]["namespace"] == "fluxwatch-system"


async def test_the_shipped_rbac_is_enough_to_recover_and_no_more(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed: it applies config/default")
    async with ApiServer(tls=True) as api:
        admin = Kubectl(binary, api.write_kubeconfig(tmp_path / "admin"), tmp_path / "cache")
        # Flux is installed first: config/default's Role for Flux's Leases lives in its
        # namespace.
        (await admin("create", "namespace", "flux-system")).check()
        applied = (await admin("apply", "-k", str(ROOT / "config" / "default"))).check()
        assert "serviceaccount/fluxwatch created" in applied.stdout.splitlines()
        token = (
            (await admin("create", "token", "fluxwatch", "-n", "fluxwatch-system"))
            .check()
            .stdout.strip()
        )
        listed = await admin("get", "configmaps", "-n", "fluxwatch-system", "-o", "json")
        config_maps = json.loads(listed.check().stdout)["items"]
        await _recover_with(api, token, config_maps, tmp_path, monkeypatch, caplog)


async def _recover_with(
    api: ApiServer,
    token: str,
    config_maps: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", token=token)
    run = await scenarios.start("incident-925", api.store, time_scale=TIME_SCALE)

    # What the Deployment gives the pod: its settings file and the downward API.
    config = tmp_path / "config.yaml"
    config.write_text(_one(config_maps, "ConfigMap", "fluxwatch-config")["data"]["config.yaml"])
    monkeypatch.setenv("POD_NAME", "fluxwatch-7d9c5b6f4-abcde")
    monkeypatch.setenv("POD_NAMESPACE", "fluxwatch-system")
    settings = load_settings(
        config,
        compressed(
            TIME_SCALE,
            {
                "kubeconfig": str(kubeconfig),
                "shutdown_timeout": 5.0,
                "leader": {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.5},
                "telemetry": {"metrics_addr": "127.0.0.1:0", "health_addr": "127.0.0.1:0"},
            },
        ),
    )
    assert settings.leader.namespace == "fluxwatch-system"
    assert settings.leader.identity == "fluxwatch-7d9c5b6f4-abcde"

    caplog.set_level(logging.INFO, logger="fluxwatch")
    events: list[Event] = []
    recovered = asyncio.Event()

    def on_event(event: Event) -> None:
        events.append(event)
        obj = event.involved_object
        if event.reason == "RecoverySucceeded" and (obj.namespace, obj.name) == STUCK:
            recovered.set()

    client = await KubeClient.from_config(kubeconfig)
    try:
        metrics = Metrics()
        notify_metrics = PrometheusMetrics(metrics.registry)
        daemon = Daemon(
            settings,
            client,
            metrics=metrics,
            router=await build_router(settings, client, metrics, notify_metrics),
            recorder=build_recorder(settings, client, notify_metrics),
            on_event=on_event,
        )
        task = asyncio.create_task(daemon.run(install_signals=False))
        waiter = asyncio.create_task(recovered.wait())
        await asyncio.wait([waiter, task], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        assert recovered.is_set(), [e.reason for e in events]

        # fluxwatch's own leader Lease, in its own namespace, held by this pod.
        lease = api.store.get(
            "leases.coordination.k8s.io", "fluxwatch-system", "fluxwatch-leader-election"
        )
        assert lease["spec"]["holderIdentity"] == "fluxwatch-7d9c5b6f4-abcde"

        # Outside the RBAC: deleting a HelmRelease, reading Flux's Secrets.
        with pytest.raises(KubeApiError) as denied:
            await client.request("DELETE", HELMRELEASES.path(*STUCK))
        assert denied.value.code == 403
        assert SERVICE_ACCOUNT in denied.value.message
        with pytest.raises(KubeApiError) as denied:
            await client.request("GET", SECRETS.path("flux-system"))
        assert denied.value.code == 403

        daemon.stop()
        assert await asyncio.wait_for(task, 15) == 0

        # A repeat folds into its Event with a strategic merge patch: allowed. The
        # events.k8s.io API is not used, and not granted.
        written, _ = api.store.list("events", "flux-system")
        mine = next(e for e in written if e["source"]["component"] == "fluxwatch")
        folded = await KubeEventWriter(client).patch_event(
            "flux-system", mine["metadata"]["name"], {"count": 2}
        )
        assert folded is not None and folded["count"] == 2
        with pytest.raises(KubeApiError) as denied:
            await client.request(
                "POST",
                "/apis/events.k8s.io/v1/namespaces/flux-system/events",
                body={"metadata": {"generateName": "x-"}},
                content_type="application/json",
            )
        assert denied.value.code == 403
    finally:
        await run.stop()
        await client.close()

    # The events became core/v1 Events on the release and on helm-controller's Lease,
    # written with the same token.
    written, _ = api.store.list("events", "flux-system")
    ours = [e for e in written if e["source"]["component"] == "fluxwatch"]
    reasons = {e["reason"] for e in ours if e["involvedObject"]["name"] == STUCK[1]}
    assert {"StuckDetected", "RecoveryStarted", "RecoverySucceeded"} <= reasons
    lease_reasons = {e["reason"] for e in ours if e["involvedObject"]["kind"] == "Lease"}
    assert "LeaderChanged" in lease_reasons
    assert all(e["involvedObject"].get("uid") for e in ours), ours
    # Nothing the daemon needed was refused: a 403 Status says "... is forbidden: User ...".
    # (The optional Helm storage list is refused too, and logged as "not readable (403)".)
    refused = [r.getMessage() for r in caplog.records if "forbidden" in r.getMessage().lower()]
    assert not refused, refused
