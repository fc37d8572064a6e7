"""fluxwatch in a pod whose ServiceAccount token the kubelet rotates, over real HTTPS
against the embedded cluster: the tokens are TokenRequest's (they expire on the
server's clock, which the test moves), the pod's mount is a temporary directory
(``KubeClient.from_config(service_account=...)``) and KUBERNETES_SERVICE_HOST/PORT
point at the server, so kubernetes_asyncio's own in-cluster loader and refresh hook
do the work.

The loader reads the token file again a minute (wall clock) after it last read it;
the tests shorten that period to nothing, the one library constant they change, so
that a rotation is seen by the next request instead of a minute later.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes_asyncio.config import incluster_config

from fluxwatch.kube.client import HELMRELEASES, KubeApiError, KubeClient
from fluxwatch.kube.helmrelease import HELMRELEASES_CODEC
from fluxwatch.kube.informer import Backoff, Informer
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.store import Store
from tests.conftest import helmrelease

HR = "helmreleases.helm.toolkit.fluxcd.io"
SA_NAMESPACE, SA_NAME = "fluxwatch-system", "fluxwatch"
FAST = Backoff(base=0.05, factor=2.0, cap=0.2, jitter=0.0)


@dataclass
class Pod:
    """The embedded cluster, its clock, and the pod's ServiceAccount mount."""

    api: ApiServer
    now: list[float]
    mount: Path

    def mint(self) -> str:
        """A 10-minute token for the pod's ServiceAccount, as the kubelet requests it."""
        answer = self.api.authenticator.request_token(
            SA_NAMESPACE, SA_NAME, {"spec": {"expirationSeconds": 600}}
        )
        return str(answer["status"]["token"])

    def rotate(self, token: str) -> None:
        """Write the token as the kubelet does: a new file renamed over the old."""
        fresh = self.mount / ".token.new"
        fresh.write_text(token)
        fresh.replace(self.mount / "token")


@pytest.fixture
async def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Pod]:
    now = [time.time()]
    async with ApiServer(Store(clock=lambda: now[0]), tls=True) as api:
        store = api.store
        for ns in (SA_NAMESPACE, "apps"):
            store.create("namespaces", {"metadata": {"name": ns}})
        store.create("serviceaccounts", {"metadata": {"name": SA_NAME, "namespace": SA_NAMESPACE}})
        store.create(
            "clusterrolebindings.rbac.authorization.k8s.io",
            {
                "metadata": {"name": "fluxwatch-admin"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NAMESPACE}
                ],
            },
        )
        mount = tmp_path / "serviceaccount"
        mount.mkdir()
        assert api.ca_pem is not None
        (mount / "ca.crt").write_bytes(api.ca_pem)
        monkeypatch.delenv("KUBECONFIG", raising=False)
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", api.host)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
        monkeypatch.setattr(incluster_config, "TOKEN_REFRESH_PERIOD", datetime.timedelta(0))
        yield Pod(api, now, mount)


async def test_every_request_and_watch_sends_the_token_the_kubelet_rotated_in(pod: Pod) -> None:
    pod.rotate(pod.mint())
    client = await KubeClient.from_config(service_account=pod.mount)
    try:
        assert client.host == f"https://{pod.api.host}:{pod.api.port}"
        await client.request("GET", "/api/v1/namespaces")

        pod.now[0] += 480  # the kubelet rotates at 80% of the token's lifetime
        pod.rotate(pod.mint())
        pod.now[0] += 120  # the first token has expired; the file holds the second
        await client.request("GET", "/api/v1/namespaces")
        stream = await client.stream(
            HELMRELEASES.path("apps"),
            query={"watch": "true", "timeoutSeconds": 1},
            accept="application/json",
            read_timeout=5,
        )
        stream.release()

        pod.now[0] += 600  # the second has expired too, and nothing rotated it
        with pytest.raises(KubeApiError) as caught:
            await client.request("GET", "/api/v1/namespaces")
        assert (caught.value.code, caught.value.reason, caught.value.message) == (
            401,
            "Unauthorized",
            "Unauthorized",
        )
    finally:
        await client.close()


async def test_an_informer_whose_token_expired_says_401_goes_unready_and_recovers(
    pod: Pod, caplog: pytest.LogCaptureFixture
) -> None:
    """The daemon's informer in a pod whose token expired before the kubelet rotated
    it: every list or watch is a 401, logged, retried with backoff (never a hot
    loop), the informer not ready past its grace; the rotation brings it back, and
    what changed meanwhile arrives."""
    pod.api.store.create(HR, helmrelease("before", "apps"))
    pod.rotate(pod.mint())
    client = await KubeClient.from_config(service_account=pod.mount)
    restarts: list[str] = []

    class Observer:
        def on_event(self, resource: str, event_type: str) -> None: ...

        def on_restart(self, resource: str, reason: str) -> None:
            restarts.append(reason)

        def on_synced(self, resource: str, count: int, seconds: float) -> None: ...

    informer = Informer(
        client,
        HELMRELEASES,
        HELMRELEASES_CODEC,
        namespace="apps",
        backoff=FAST,
        ready_grace=0.3,
        observer=Observer(),
    )
    caplog.set_level(logging.WARNING, "fluxwatch.kube.informer")
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 10)
        assert informer.ready()

        pod.now[0] += 600  # expired; the kubelet did not rotate it in time
        pod.api.faults.drop_watches()
        await asyncio.sleep(1.5)
        assert not informer.ready()
        assert informer.refused is not None and informer.refused.code == 401
        tries = restarts.count("http-401")
        assert 3 <= tries <= 12, f"backoff 0.05..0.2 s over 1.5 s, not a hot loop: {tries}"
        logged = [r for r in caplog.records if "401" in r.getMessage()]
        assert logged and "Unauthorized" in logged[0].getMessage()

        pod.api.store.create(HR, helmrelease("meanwhile", "apps"))
        pod.rotate(pod.mint())
        async with asyncio.timeout(5):
            while not (informer.ready() and ("apps", "meanwhile") in informer.cache):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert set(informer.cache) == {("apps", "before"), ("apps", "meanwhile")}
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.close()
