"""The machine's kubectl against the embedded cluster when it pushes back: the real
client-go reads API Priority and Fairness' plain-text 429 and waits its Retry-After
(so the sim's answer is one client-go understands), prints what a server that does
not give in says, and ``kubectl create token --duration`` meets TokenRequest's bounds.
"""

from __future__ import annotations

from conftest import Cluster

SA = {"metadata": {"name": "bot", "namespace": "default"}}


async def test_kubectl_waits_out_a_throttled_get(cluster: Cluster) -> None:
    cluster.api.faults.fail_next(2, code=429, retry_after=1, verb="list", resource="namespaces")
    result = (await cluster.kubectl("get", "namespaces", "-o", "name")).check()
    assert "namespace/default" in result.stdout.split()
    assert cluster.api.stats.requests[("list", "namespaces")] == 3


async def test_kubectl_prints_an_etcd_timeout_as_the_server_said_it(cluster: Cluster) -> None:
    cluster.api.faults.fail_next(1, code=500, verb="list", resource="namespaces")
    result = await cluster.kubectl("get", "namespaces")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error from server: etcdserver: request timed out"


async def test_kubectl_create_token_with_a_duration_under_ten_minutes_is_refused(
    cluster: Cluster,
) -> None:
    cluster.api.store.create("serviceaccounts", SA)
    result = await cluster.kubectl("create", "token", "bot", "--duration=5m")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'error: failed to create token: TokenRequest.authentication.k8s.io "bot" is invalid: '
        "spec.expirationSeconds: Invalid value: 300: may not specify a duration less than "
        "10 minutes"
    )
    token = (await cluster.kubectl("create", "token", "bot", "--duration=10m")).check().stdout
    assert token.strip().count(".") == 2
