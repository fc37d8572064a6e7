"""kubectl's typed commands send protobuf bodies; the embedded cluster stores what they
mean, answers in JSON (which kubectl accepts), and refuses broken bodies as
kube-apiserver does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl

FIXTURES = Path(__file__).parent.parent / "fixtures" / "protobuf"
PROTOBUF = "application/vnd.kubernetes.protobuf"
# What kubectl's typed clients send.
HEADERS = {"Content-Type": PROTOBUF, "Accept": f"{PROTOBUF},application/json"}


def recorded(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (payloads here are shorter than 128 bytes)."""
    return bytes([number << 3 | 2, len(payload)]) + payload


async def post(
    http: aiohttp.ClientSession, path: str, body: bytes, method: str = "POST"
) -> tuple[int, str, dict[str, Any]]:
    async with http.request(method, path, data=body, headers=HEADERS) as resp:
        return resp.status, resp.content_type, await resp.json(content_type=None)


async def test_kubectl_creates_namespace_secret_configmap_and_serviceaccount(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    store = tls_apiserver.store
    (await kubectl("create", "namespace", "x")).check()
    (await kubectl("create", "secret", "generic", "s", "--from-literal=a=b", "-n", "x")).check()
    (await kubectl("create", "configmap", "c", "--from-literal=k=v", "-n", "x")).check()
    (await kubectl("create", "serviceaccount", "sa", "-n", "x")).check()

    ns = store.get("namespaces", None, "x")
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "x"}
    secret = store.get("secrets", "x", "s")
    assert (secret["data"], secret["type"]) == ({"a": "Yg=="}, "Opaque")
    assert store.get("configmaps", "x", "c")["data"] == {"k": "v"}
    assert store.get("serviceaccounts", "x", "sa")["metadata"]["namespace"] == "x"


async def test_kubectl_creates_rbac_objects(tls_apiserver: ApiServer, kubectl: Kubectl) -> None:
    store = tls_apiserver.store
    rbac = "rbac.authorization.k8s.io"
    for args in (
        ("role", "r", "--verb=get,list", "--resource=secrets", "--resource-name=a"),
        ("rolebinding", "rb", "--role=r", "--serviceaccount=default:sa"),
        ("clusterrole", "cr", "--verb=get", "--non-resource-url=/logs/*"),
        ("clusterrolebinding", "crb", "--clusterrole=cr", "--group=g"),
    ):
        (await kubectl("create", *args)).check()

    assert store.get(f"roles.{rbac}", "default", "r")["rules"] == [
        {
            "verbs": ["get", "list"],
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["a"],
        }
    ]
    binding = store.get(f"rolebindings.{rbac}", "default", "rb")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sa", "namespace": "default"}]
    assert binding["roleRef"] == {"apiGroup": rbac, "kind": "Role", "name": "r"}
    cluster_role = store.get(f"clusterroles.{rbac}", None, "cr")
    assert cluster_role["rules"] == [{"verbs": ["get"], "nonResourceURLs": ["/logs/*"]}]
    cluster_binding = store.get(f"clusterrolebindings.{rbac}", None, "crb")
    assert cluster_binding["subjects"] == [{"kind": "Group", "apiGroup": rbac, "name": "g"}]


async def test_kubectl_creates_deployment_service_and_pdb(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    store = tls_apiserver.store
    (await kubectl("create", "deployment", "web", "--image=nginx", "--replicas=2")).check()
    (await kubectl("create", "service", "clusterip", "web", "--tcp=80:8080")).check()
    (await kubectl("create", "pdb", "web", "--selector=app=web", "--min-available=50%")).check()

    deployment = store.get("deployments.apps", "default", "web")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    ports = store.get("services", "default", "web")["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in ports] == [(80, 8080)]
    assert store.get("poddisruptionbudgets.policy", "default", "web")["spec"]["minAvailable"] == (
        "50%"
    )


async def test_a_protobuf_create_is_answered_in_json(http: aiohttp.ClientSession) -> None:
    code, content_type, created = await post(http, "/api/v1/namespaces", recorded("namespace"))
    assert (code, content_type) == (201, "application/json")
    assert created["metadata"]["name"] == "x"


async def test_a_truncated_body_is_a_bad_request(http: aiohttp.ClientSession) -> None:
    body = recorded("namespace")[:-3]
    code, _, status = await post(http, "/api/v1/namespaces", body)
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == (
        "the object provided is unrecognized (must be of type Namespace): unexpected EOF "
        f"({body[:30].hex()} ...)"
    )


async def test_a_body_of_another_kind_is_refused(http: aiohttp.ClientSession) -> None:
    code, _, status = await post(
        http, "/api/v1/namespaces/x/configmaps", recorded("secret-generic")
    )
    assert (code, status["reason"]) == (400, "BadRequest")
    assert "Secret" in status["message"]


async def test_custom_resources_take_no_protobuf(http: aiohttp.ClientSession) -> None:
    path = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases"
    code, _, status = await post(http, path, recorded("namespace"))
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    assert status["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml"
    )


async def test_protobuf_delete_options_carry_preconditions(
    http: aiohttp.ClientSession,
) -> None:
    code, _, _ = await post(http, "/api/v1/namespaces/default/configmaps", recorded("configmap"))
    assert code == 201
    stale = ld(2, ld(2, b"1"))  # preconditions.resourceVersion = "1"
    type_meta = ld(1, b"v1") + ld(2, b"DeleteOptions")
    body = b"k8s\x00" + ld(1, type_meta) + ld(2, stale)
    code, _, status = await post(http, "/api/v1/namespaces/default/configmaps/c", body, "DELETE")
    assert (code, status["reason"]) == (409, "Conflict")
