"""Namespaces as kube-apiserver and the namespace controller treat them."""

from __future__ import annotations

import asyncio

from tests.conformance.conftest import Api

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}


async def wait_gone(api: Api, path: str) -> None:
    for _ in range(200):
        code, _ = await api.get(path)
        if code == 404:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} still there")


async def test_content_in_a_missing_namespace_is_404_namespace_not_found(api: Api) -> None:
    code, body = await api.post("/api/v1/namespaces/nowhere/configmaps", CM)
    assert code == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == 'namespaces "nowhere" not found'
    assert body["details"] == {"name": "nowhere", "kind": "namespaces"}


async def test_a_new_namespace_is_active_with_the_kubernetes_finalizer_and_name_label(
    api: Api,
) -> None:
    code, ns = await api.post("/api/v1/namespaces", {"metadata": {"name": "team-a"}})
    assert code == 201
    assert ns["status"] == {"phase": "Active"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert "generation" not in ns["metadata"]


async def test_deleting_a_namespace_answers_terminating_then_removes_content_and_itself(
    api: Api,
) -> None:
    await api.post("/api/v1/namespaces", {"metadata": {"name": "team-a"}})
    assert (await api.post("/api/v1/namespaces/team-a/configmaps", CM))[0] == 201
    code, ns = await api.delete("/api/v1/namespaces/team-a")
    assert code == 200
    assert ns["status"]["phase"] == "Terminating"
    assert ns["metadata"]["deletionTimestamp"]
    await wait_gone(api, "/api/v1/namespaces/team-a")
    code, _ = await api.get("/api/v1/namespaces/team-a/configmaps/c")
    assert code == 404


async def test_content_in_a_terminating_namespace_is_403_namespace_terminating(
    api: Api,
) -> None:
    await api.post("/api/v1/namespaces", {"metadata": {"name": "team-a"}})
    held = {**CM, "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    assert (await api.post("/api/v1/namespaces/team-a/configmaps", held))[0] == 201
    await api.delete("/api/v1/namespaces/team-a")
    await asyncio.sleep(0.05)
    code, body = await api.post("/api/v1/namespaces/team-a/configmaps", CM)
    assert code == 403
    assert body["reason"] == "Forbidden"
    # admission.NewForbidden: the object's resource and name, then the plugin's reason.
    assert body["message"] == (
        'configmaps "c" is forbidden: unable to create new content in namespace team-a '
        "because it is being terminated"
    )
    assert body["details"]["name"] == "c" and body["details"]["kind"] == "configmaps"
    assert body["details"]["causes"][0]["reason"] == "NamespaceTerminating"


async def test_an_object_with_a_finalizer_holds_its_namespace_until_it_is_released(
    api: Api,
) -> None:
    await api.post("/api/v1/namespaces", {"metadata": {"name": "team-a"}})
    held = {**CM, "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    await api.post("/api/v1/namespaces/team-a/configmaps", held)
    await api.delete("/api/v1/namespaces/team-a")
    await asyncio.sleep(0.05)
    code, ns = await api.get("/api/v1/namespaces/team-a")
    assert code == 200 and ns["status"]["phase"] == "Terminating"
    assert ns["status"]["conditions"][0]["type"] == "NamespaceContentRemaining"
    code, cm = await api.get("/api/v1/namespaces/team-a/configmaps/held")
    assert code == 200 and cm["metadata"]["deletionTimestamp"]
    await api.patch("/api/v1/namespaces/team-a/configmaps/held", {"metadata": {"finalizers": None}})
    await wait_gone(api, "/api/v1/namespaces/team-a")
