"""A fresh cluster for the first commands: an HTTPS emulator with only the namespaces a
new cluster has (default, kube-system, kube-public, kube-node-lease), and kubectl on it
with the admin kubeconfig."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl, find_kubectl


@dataclass(frozen=True)
class Cluster:
    api: ApiServer
    kubectl: Kubectl
    workdir: Path

    def manifest(self, name: str, text: str) -> str:
        """Write ``text`` to ``name`` where kubectl runs, and return the bare name, which
        kubectl repeats in its messages (``error when creating "hr.yaml"``)."""
        (self.workdir / name).write_text(text)
        return name

    def kubectl_with(self, token: str, name: str) -> Kubectl:
        """kubectl with a second kubeconfig whose user is ``token``."""
        config = self.api.write_kubeconfig(self.workdir / f"{name}.kubeconfig", token=token)
        return Kubectl(self.kubectl.binary, config, self.kubectl.cache_dir, cwd=self.workdir)


async def _cluster(workdir: Path) -> AsyncIterator[Cluster]:
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (looked for /usr/bin/kubectl and on PATH)")
    async with ApiServer(tls=True) as api:
        config = api.write_kubeconfig(workdir / "admin.kubeconfig")
        kubectl = Kubectl(binary, config, workdir / "kube-cache", cwd=workdir)
        yield Cluster(api, kubectl, workdir)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async for made in _cluster(tmp_path):
        yield made


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """One cluster for a module whose tests each work in a namespace of their own, with
    its loop (mark the module ``pytest.mark.asyncio(loop_scope="module")``): kubectl's
    discovery is fetched once, not per test."""
    async for made in _cluster(tmp_path_factory.mktemp("kubectl")):
        yield made
