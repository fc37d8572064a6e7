"""Shared fixtures: the Kubernetes API emulator over real HTTP, its kubeconfig, kubectl."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from fluxwatch.kube.client import KubeClient
from fluxwatch.kube.patch import KubeEventWriter
from fluxwatch.notify.config import NotifySettings
from fluxwatch.notify.router import Router
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl, find_kubectl

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
# Flux's published CRDs: shared/ sits beside the checkout (CI's clone, or /work/main).
FLUX_CRDS = Path(__file__).resolve().parents[2] / "shared" / "flux-crds"
# The namespaces a test cluster has besides the built-in ones: the API answers 404 for
# content in a namespace that does not exist, as a real one does.
TEST_NAMESPACES = ("apps", "infra", "flux-system", "fluxwatch-system")


def seed_namespaces(server: ApiServer, names: tuple[str, ...] = TEST_NAMESPACES) -> ApiServer:
    for name in names:
        if name not in server.store.table("namespaces").objs:
            server.store.create("namespaces", {"metadata": {"name": name}})
    return server


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    """An emulator on a free loopback port (plain HTTP, admin token in ``.admin_token``)."""
    async with ApiServer() as server:
        yield seed_namespaces(server)


@pytest.fixture
async def http(apiserver: ApiServer) -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session on ``apiserver`` with the admin token; paths like ``/api/v1/...``."""
    async with aiohttp.ClientSession(
        base_url=apiserver.url,
        headers={"Authorization": f"Bearer {apiserver.admin_token}"},
    ) as session:
        yield session


@pytest.fixture
async def make_apiserver() -> AsyncIterator[Callable[..., Awaitable[ApiServer]]]:
    """A factory for emulators with other settings (``rbac_files``, ``bookmark_interval``,
    ``tls``, ...); each is stopped at teardown."""
    started: list[ApiServer] = []

    async def make(**kwargs: Any) -> ApiServer:
        server = ApiServer(**kwargs)
        await server.start()
        started.append(server)
        return seed_namespaces(server)

    yield make
    for server in reversed(started):
        await server.stop()


@pytest.fixture
def kubeconfig(apiserver: ApiServer, tmp_path: Path) -> Path:
    """The ``apiserver``'s kubeconfig (admin token) in ``tmp_path``."""
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
async def client(kubeconfig: Path) -> AsyncIterator[KubeClient]:
    """fluxwatch's real client on ``apiserver``, over HTTP, with the admin token."""
    kube = await KubeClient.from_config(kubeconfig)
    yield kube
    await kube.close()


@pytest.fixture
async def tls_apiserver() -> AsyncIterator[ApiServer]:
    """An emulator serving HTTPS: kubectl sends its bearer token only over TLS."""
    async with ApiServer(tls=True) as server:
        yield seed_namespaces(server)


@pytest.fixture
def kubectl(tls_apiserver: ApiServer, tmp_path: Path) -> Kubectl:
    """The machine's kubectl pointed at ``tls_apiserver`` (admin token); skipped only
    when no kubectl is installed."""
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (looked for /usr/bin/kubectl and on PATH)")
    config = tls_apiserver.write_kubeconfig(tmp_path / "kubectl-kubeconfig")
    return Kubectl(binary, config, tmp_path / "kube-cache")


def helmrelease(
    name: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A HelmRelease as Flux users write it."""
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {
            "interval": "10m",
            "chart": {
                "spec": {
                    "chart": "podinfo",
                    "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                }
            },
            **spec,
        },
    }


def condition(type_: str, status: str, message: str = "", reason: str = "") -> dict[str, Any]:
    """A metav1.Condition as the HelmRelease CRD requires it (reason, message and
    lastTransitionTime are required fields)."""
    return {
        "type": type_,
        "status": status,
        "reason": reason or {"True": "Succeeded", "False": "Failed"}.get(status, "Progressing"),
        "message": message or f"{type_} is {status}",
        "lastTransitionTime": "2026-11-27T00:00:00Z",
    }


@pytest.fixture
def hr() -> Callable[..., dict[str, Any]]:
    """Build a HelmRelease body: ``hr("podinfo", "apps", labels={...}, suspend=True)``."""
    return helmrelease


async def kubernetes_event_router(client: KubeClient) -> Router:
    """A Router whose one alert sends every HelmRelease event to the ``kubernetes-event``
    provider, which writes Events through ``client``."""
    settings = NotifySettings.model_validate(
        {
            "providers": [{"name": "k8s", "type": "kubernetes-event"}],
            "alerts": [
                {
                    "name": "all",
                    "providerRef": {"name": "k8s"},
                    "eventSources": [{"kind": "HelmRelease", "name": "*", "namespace": "*"}],
                }
            ],
        }
    )
    return await Router.from_settings(settings, event_writer=KubeEventWriter(client))


def kustomize(kubectl: Path | str, directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIRECTORY``: the documents it renders."""
    out = subprocess.run(
        [str(kubectl), "kustomize", str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def one_of(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one document of ``kind`` whose name starts with ``name`` (kustomize's hash
    suffixes ConfigMap names)."""
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"{kind} {name}: {[d['metadata']['name'] for d in found]}"
    return found[0]
