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
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxwatch.app import Daemon, build_recorder, build_router
from fluxwatch.demo import compressed
from fluxwatch.kube.client import HELMRELEASES, LEASES, SECRETS, KubeApiError, KubeClient
from fluxwatch.kube.patch import KubeEventWriter
from fluxwatch.notify.event import Event
from fluxwatch.notify.metrics import PrometheusMetrics
from fluxwatch.settings import load_settings
from fluxwatch.sim import scenarios
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl, find_kubectl
from fluxwatch.sim.receiver import Receiver
from fluxwatch.telemetry.metrics import Metrics
from tests.conftest import kustomize, one_of

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
    return kustomize(kubectl, ROOT / "config" / "default")


def test_the_deployment_matches_its_rbac_and_settings(rendered: list[dict[str, Any]]) -> None:
    """The pod runs as the ServiceAccount the RBAC binds, with the ConfigMap it mounts."""
    deploy = one_of(rendered, "Deployment", "fluxwatch")
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
    config_map = one_of(rendered, "ConfigMap", "fluxwatch-config")
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    pdb = one_of(rendered, "PodDisruptionBudget", "fluxwatch")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]
    service = one_of(rendered, "Service", "fluxwatch-metrics")
    assert service["spec"]["selector"] == deploy["spec"]["selector"]["matchLabels"]
    account = one_of(rendered, "ServiceAccount", "fluxwatch")
    assert account["metadata"]["namespace"] == "fluxwatch-system"


SHAPES = ["default", "namespaced", "cluster"]


@pytest.mark.parametrize("shape", SHAPES)
async def test_each_rbac_shape_is_enough_to_recover_and_no_more(
    shape: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The three Helm storage shapes of the README, each installed with kubectl:

    - ``default``: ``config/default`` as shipped, no Secret readable; status.history
      decides (``verifyStorage: auto`` falls back to it);
    - ``namespaced``: plus ``fluxwatch rbac --helm-storage namespaced --storage-namespace
      flux-system`` (the Role per storage namespace, and the provider Secret by name);
    - ``cluster``: plus ``components/helm-storage``.

    Each also applies what ``fluxwatch rbac`` prints for its settings (a provider whose
    address is in a Secret, granted by name). Both storage shapes run with
    ``verifyStorage: always``, so the recovery itself proves the storage list was
    allowed; each test then shows what the shape exposes.
    """
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed: it applies config/default")
    hook = Receiver()
    await hook.start()
    try:
        await _install_and_recover(shape, binary, hook, tmp_path, monkeypatch, caplog)
    finally:
        await hook.stop()


def _with_helm_storage(tmp_path: Path) -> Path:
    """config/default with components/helm-storage, as a user's overlay would add it."""
    base = tmp_path / "with-helm-storage"
    base.mkdir()
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(ROOT / "config" / "default", base)],
        "components": [os.path.relpath(ROOT / "config" / "components" / "helm-storage", base)],
    }
    (base / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    return base


async def _fluxwatch_rbac(*args: str) -> str:
    """``fluxwatch rbac`` as a person runs it, in fluxwatch's namespace."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        "rbac",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "POD_NAMESPACE": "fluxwatch-system"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def _install_and_recover(
    shape: str,
    binary: str,
    hook: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with ApiServer(tls=True) as api:
        admin = Kubectl(binary, api.write_kubeconfig(tmp_path / "admin"), tmp_path / "cache")
        # Flux is installed first: config/default's Role for Flux's Leases lives in its
        # namespace.
        (await admin("create", "namespace", "flux-system")).check()
        base = _with_helm_storage(tmp_path) if shape == "cluster" else ROOT / "config" / "default"
        applied = (await admin("apply", "-k", str(base))).check()
        assert "serviceaccount/fluxwatch created" in applied.stdout.splitlines()
        token = (
            (await admin("create", "token", "fluxwatch", "-n", "fluxwatch-system"))
            .check()
            .stdout.strip()
        )
        listed = await admin("get", "configmaps", "-n", "fluxwatch-system", "-o", "json")
        config_maps = json.loads(listed.check().stdout)["items"]
        config = yaml.safe_load(
            one_of(config_maps, "ConfigMap", "fluxwatch-config")["data"]["config.yaml"]
        )
        # A provider whose address is in a Secret, and a Secret it must not read.
        for name, address in (("fluxwatch-hook", hook.url), ("someone-elses", "http://x/")):
            (
                await admin(
                    "create",
                    "secret",
                    "generic",
                    name,
                    "-n",
                    "fluxwatch-system",
                    f"--from-literal=address={address}",
                )
            ).check()
        providers = [
            {"name": "events", "type": "kubernetes-event"},
            {"name": "hook", "type": "generic", "secretRef": {"name": "fluxwatch-hook"}},
        ]
        config["notify"] = {
            "providers": providers,
            "alerts": [
                {
                    "name": f"everything-to-{name}",
                    "providerRef": {"name": name},
                    "eventSources": [{"kind": "*", "name": "*", "namespace": "*"}],
                }
                for name in ("events", "hook")
            ],
        }
        if shape != "default":
            config["watch"]["verifyStorage"] = "always"
        settings_file = tmp_path / "config.yaml"
        settings_file.write_text(yaml.safe_dump(config))
        storage = "namespaced" if shape == "namespaced" else "none"
        generated = await _fluxwatch_rbac(
            "--config",
            str(settings_file),
            "--helm-storage",
            storage,
            "--storage-namespace",
            "flux-system",
        )
        (tmp_path / "rbac.yaml").write_text(generated)
        (await admin("apply", "-f", str(tmp_path / "rbac.yaml"))).check()

        async def exposed(client: KubeClient) -> None:
            await _what_the_shape_exposes(shape, client, api)

        await _recover_with(api, token, settings_file, tmp_path, monkeypatch, caplog, exposed)
        # The provider read its Secret (by name) and delivered.
        assert any(doc.get("reason") == "RecoverySucceeded" for doc in hook.received)


async def _what_the_shape_exposes(shape: str, client: KubeClient, api: ApiServer) -> None:
    """Allowed and refused, as the README says for the shape, asked with the daemon's token."""

    async def may(method: str, path: str, body: Any = None) -> bool:
        try:
            await client.request(method, path, body=body)
        except KubeApiError as exc:
            if exc.code != 403:
                raise
            assert SERVICE_ACCOUNT in exc.message
            return False
        return True

    # Outside every shape: deleting a HelmRelease; another Secret or Lease in its namespace.
    assert not await may("DELETE", HELMRELEASES.path(*STUCK))
    assert not await may("GET", SECRETS.path("fluxwatch-system", "someone-elses"))
    assert await may("GET", SECRETS.path("fluxwatch-system", "fluxwatch-hook"))
    other = api.store.create(
        "leases.coordination.k8s.io",
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "someone-elses", "namespace": "fluxwatch-system"},
            "spec": {"holderIdentity": "them"},
        },
    )
    lease_path = LEASES.path("fluxwatch-system", "someone-elses")
    assert not await may("GET", lease_path)
    assert not await may("PUT", lease_path, other)
    # Secrets lists: the one question the shapes answer differently.
    in_flux = await may("GET", SECRETS.path("flux-system"))
    elsewhere = await may("GET", SECRETS.path("fluxwatch-system"))
    everywhere = await may("GET", SECRETS.path(None))
    assert (in_flux, elsewhere, everywhere) == {
        "default": (False, False, False),
        "namespaced": (True, False, False),
        "cluster": (True, True, True),
    }[shape]


async def _recover_with(
    api: ApiServer,
    token: str,
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    checks: Callable[[KubeClient], Awaitable[None]],
) -> None:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", token=token)
    run = await scenarios.start("incident-925", api.store, time_scale=TIME_SCALE)

    # What the Deployment gives the pod: its settings file and the downward API.
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

        await checks(client)

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
