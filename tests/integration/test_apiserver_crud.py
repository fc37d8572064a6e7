"""Writes and reads over HTTP: server-set fields, generation, the status subresource,
patch types, preconditions, finalizers and the Status bodies of errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from fluxwatch.sim.apiserver import ApiServer

HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/flux-system/leases"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}

HR = Callable[..., dict[str, Any]]


async def create(http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(path, json=body) as resp:
        assert resp.status == 201, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result


async def call(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async with http.request(method, path, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_create_sets_uid_timestamps_version_and_generation_one(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    """The server owns uid, creationTimestamp, resourceVersion (a string) and generation."""
    body = hr("podinfo", "apps")
    body["metadata"]["uid"] = "client-chosen"
    created = await create(http, HRS, body)
    md = created["metadata"]
    assert md["uid"] != "client-chosen" and len(md["uid"]) == 36
    assert md["creationTimestamp"].endswith("Z")
    assert isinstance(md["resourceVersion"], str) and int(md["resourceVersion"]) > 0
    assert md["generation"] == 1
    assert created["kind"] == "HelmRelease"


async def test_create_drops_status_of_a_resource_with_status_subresource(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    """Like a CRD with a status subresource, POST ignores status; what is read back is
    defaulted from storage, so the CRD's status default (observedGeneration -1) shows."""
    body = hr("podinfo", "apps")
    body["status"] = {"observedGeneration": 7}
    created = await create(http, HRS, body)
    assert created["status"] == {"observedGeneration": -1}


async def test_create_twice_is_409_already_exists_with_status_body(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    await create(http, HRS, hr("podinfo", "apps"))
    code, body = await call(http, "POST", HRS, json=hr("podinfo", "apps"))
    assert code == 409
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'helmreleases.helm.toolkit.fluxcd.io "podinfo" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "podinfo", "group": "helm.toolkit.fluxcd.io", "kind": "helmreleases"},
        "code": 409,
    }


async def test_get_of_a_missing_object_is_404_not_found(http: aiohttp.ClientSession) -> None:
    code, body = await call(http, "GET", f"{HRS}/nope")
    assert code == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == 'helmreleases.helm.toolkit.fluxcd.io "nope" not found'


async def test_create_without_a_name_is_422_invalid(http: aiohttp.ClientSession, hr: HR) -> None:
    body = hr("x", "apps")
    del body["metadata"]["name"]
    code, status = await call(http, "POST", HRS, json=body)
    assert code == 422
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "metadata.name"


async def test_create_with_generate_name_gets_a_unique_name(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    body = hr("x", "apps")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "podinfo-"
    first = await create(http, HRS, body)
    second = await create(http, HRS, body)
    assert first["metadata"]["name"].startswith("podinfo-")
    assert first["metadata"]["name"] != second["metadata"]["name"]


async def test_create_with_an_uppercase_name_is_422(http: aiohttp.ClientSession, hr: HR) -> None:
    code, status = await call(http, "POST", HRS, json=hr("PodInfo", "apps"))
    assert code == 422
    assert "RFC 1123 subdomain" in status["message"]


async def test_create_with_a_namespace_other_than_the_url_is_400(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    code, status = await call(http, "POST", HRS, json=hr("podinfo", "other"))
    assert code == 400
    assert status["reason"] == "BadRequest"
    assert "does not match the namespace" in status["message"]


async def test_put_with_a_stale_resource_version_is_409_conflict(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    created = await create(http, HRS, hr("podinfo", "apps"))
    fresh = dict(created, spec={**created["spec"], "suspend": True})
    code, updated = await call(http, "PUT", f"{HRS}/podinfo", json=fresh)
    assert code == 200
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    code, status = await call(http, "PUT", f"{HRS}/podinfo", json=fresh)  # the old version
    assert code == 409
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on helmreleases.helm.toolkit.fluxcd.io "podinfo": the '
        "object has been modified; please apply your changes to the latest version and try again"
    )


async def test_put_of_a_custom_resource_without_resource_version_is_422(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    """CRDs do not allow unconditional updates."""
    await create(http, HRS, hr("podinfo", "apps"))
    code, status = await call(http, "PUT", f"{HRS}/podinfo", json=hr("podinfo", "apps"))
    assert code == 422
    assert "metadata.resourceVersion" in status["message"]


async def test_put_with_a_name_other_than_the_url_is_400(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    created = await create(http, HRS, hr("podinfo", "apps"))
    code, _ = await call(http, "PUT", f"{HRS}/other", json=created)
    assert code == 400


async def test_generation_moves_on_spec_changes_only(http: aiohttp.ClientSession, hr: HR) -> None:
    """Labels, annotations and status leave generation alone; spec bumps it by one."""
    await create(http, HRS, hr("podinfo", "apps"))
    _, obj = await call(
        http,
        "PATCH",
        f"{HRS}/podinfo",
        headers=MERGE,
        json={"metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}}},
    )
    assert obj["metadata"]["generation"] == 1
    _, obj = await call(
        http, "PATCH", f"{HRS}/podinfo/status", headers=MERGE, json={"status": {"x": 1}}
    )
    assert obj["metadata"]["generation"] == 1
    _, obj = await call(
        http, "PATCH", f"{HRS}/podinfo", headers=MERGE, json={"spec": {"suspend": True}}
    )
    assert obj["metadata"]["generation"] == 2


async def test_main_endpoint_ignores_status_changes(http: aiohttp.ClientSession, hr: HR) -> None:
    await create(http, HRS, hr("podinfo", "apps"))
    await call(
        http,
        "PATCH",
        f"{HRS}/podinfo/status",
        headers=MERGE,
        json={"status": {"observedGeneration": 1}},
    )
    code, obj = await call(
        http,
        "PATCH",
        f"{HRS}/podinfo",
        headers=MERGE,
        json={"status": {"observedGeneration": 2}, "spec": {"suspend": True}},
    )
    assert code == 200
    assert obj["status"] == {"observedGeneration": 1}
    assert obj["spec"]["suspend"] is True


async def test_status_endpoint_ignores_spec_and_metadata_changes(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    created = await create(http, HRS, hr("podinfo", "apps"))
    body = dict(created, spec={"changed": True}, status={"observedGeneration": 1})
    body["metadata"] = dict(created["metadata"], labels={"sneaky": "yes"})
    code, obj = await call(http, "PUT", f"{HRS}/podinfo/status", json=body)
    assert code == 200
    assert obj["status"] == {"observedGeneration": 1}
    assert obj["spec"] == created["spec"]
    assert "labels" not in obj["metadata"]  # the create's empty labels are omitted
    assert obj["metadata"]["generation"] == 1


async def test_status_get_returns_the_whole_object(http: aiohttp.ClientSession, hr: HR) -> None:
    await create(http, HRS, hr("podinfo", "apps"))
    code, obj = await call(http, "GET", f"{HRS}/podinfo/status")
    assert code == 200
    assert obj["metadata"]["name"] == "podinfo"


async def test_a_lease_has_no_generation_and_no_status_endpoint(
    http: aiohttp.ClientSession,
) -> None:
    """The Lease strategy (pkg/registry/coordination/lease) leaves metadata.generation
    alone: only kinds whose strategy sets it (Deployments, custom resources) have one."""
    lease = {
        "metadata": {"name": "helm-controller-leader-election"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 35},
    }
    await create(http, LEASES, lease)
    _, obj = await call(
        http,
        "PATCH",
        f"{LEASES}/helm-controller-leader-election",
        headers=MERGE,
        json={"spec": {"holderIdentity": "b"}},
    )
    assert obj["spec"]["holderIdentity"] == "b"
    assert "generation" not in obj["metadata"]
    code, _ = await call(http, "GET", f"{LEASES}/helm-controller-leader-election/status")
    assert code == 404


async def test_merge_patch_carrying_a_stale_resource_version_is_409(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    """A resourceVersion in a merge patch is a precondition, as on the real server."""
    created = await create(http, HRS, hr("podinfo", "apps"))
    rv = created["metadata"]["resourceVersion"]
    code, _ = await call(
        http,
        "PATCH",
        f"{HRS}/podinfo",
        headers=MERGE,
        json={"metadata": {"resourceVersion": rv, "labels": {"a": "1"}}},
    )
    assert code == 200
    code, status = await call(
        http,
        "PATCH",
        f"{HRS}/podinfo",
        headers=MERGE,
        json={"metadata": {"resourceVersion": rv, "labels": {"a": "2"}}},
    )
    assert code == 409
    assert status["reason"] == "Conflict"


async def test_a_patch_that_changes_nothing_keeps_the_resource_version(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    created = await create(http, HRS, hr("podinfo", "apps", suspend=False))
    _, obj = await call(
        http, "PATCH", f"{HRS}/podinfo", headers=MERGE, json={"spec": {"suspend": False}}
    )
    assert obj["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_json_patch_applies_operations_in_order(http: aiohttp.ClientSession, hr: HR) -> None:
    await create(http, HRS, hr("podinfo", "apps"))
    ops = [
        {"op": "add", "path": "/metadata/annotations", "value": {}},
        {
            "op": "add",
            "path": "/metadata/annotations/reconcile.fluxcd.io~1requestedAt",
            "value": "t1",
        },
        {"op": "replace", "path": "/spec/interval", "value": "1m"},
        {"op": "copy", "from": "/spec/interval", "path": "/spec/timeout"},
        {"op": "test", "path": "/spec/timeout", "value": "1m"},
    ]
    code, obj = await call(http, "PATCH", f"{HRS}/podinfo", headers=JSON_PATCH, json=ops)
    assert code == 200, obj
    assert obj["metadata"]["annotations"] == {"reconcile.fluxcd.io/requestedAt": "t1"}
    assert obj["spec"]["interval"] == obj["spec"]["timeout"] == "1m"


async def test_json_patch_failed_test_is_422_and_changes_nothing(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    created = await create(http, HRS, hr("podinfo", "apps"))
    ops = [
        {"op": "replace", "path": "/spec/interval", "value": "1m"},
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
    ]
    code, status = await call(http, "PATCH", f"{HRS}/podinfo", headers=JSON_PATCH, json=ops)
    assert code == 422
    assert status["reason"] == "Invalid"
    _, obj = await call(http, "GET", f"{HRS}/podinfo")
    assert obj == created


async def test_json_patch_that_is_not_a_list_is_400(http: aiohttp.ClientSession, hr: HR) -> None:
    """kubernetes_asyncio sends a dict body as json-patch to custom objects unless told
    otherwise; the real server answers 400, and so does the emulator."""
    await create(http, HRS, hr("podinfo", "apps"))
    code, status = await call(
        http, "PATCH", f"{HRS}/podinfo", headers=JSON_PATCH, json={"spec": {"suspend": True}}
    )
    assert code == 400
    assert status["reason"] == "BadRequest"


async def test_strategic_merge_patch_of_a_custom_resource_is_415(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    await create(http, HRS, hr("podinfo", "apps"))
    code, status = await call(
        http,
        "PATCH",
        f"{HRS}/podinfo",
        headers={"Content-Type": "application/strategic-merge-patch+json"},
        json={"spec": {"suspend": True}},
    )
    assert code == 415
    assert status["reason"] == "UnsupportedMediaType"


async def test_strategic_merge_patch_of_a_builtin_acts_as_merge(
    http: aiohttp.ClientSession,
) -> None:
    await create(http, LEASES, {"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}})
    code, obj = await call(
        http,
        "PATCH",
        f"{LEASES}/l",
        headers={"Content-Type": "application/strategic-merge-patch+json"},
        json={"spec": {"leaseTransitions": 1}},
    )
    assert code == 200
    assert obj["spec"] == {"holderIdentity": "a", "leaseTransitions": 1}


async def test_an_apply_patch_without_a_field_manager_is_422(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    """ValidatePatchOptions: server-side apply needs ?fieldManager=."""
    await create(http, HRS, hr("podinfo", "apps"))
    code, status = await call(
        http,
        "PATCH",
        f"{HRS}/podinfo",
        headers={"Content-Type": "application/apply-patch+yaml"},
        data=b"spec: {}",
    )
    assert code == 422
    assert status["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch"
    )


async def test_delete_without_finalizers_removes_the_object(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    await create(http, HRS, hr("podinfo", "apps"))
    code, obj = await call(http, "DELETE", f"{HRS}/podinfo")
    assert code == 200
    assert (obj["kind"], obj["status"], obj["details"]["name"]) == ("Status", "Success", "podinfo")
    code, _ = await call(http, "GET", f"{HRS}/podinfo")
    assert code == 404


async def test_finalizers_hold_a_deleted_object_until_the_last_one_is_removed(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    body = hr("podinfo", "apps")
    body["metadata"]["finalizers"] = ["finalizers.fluxcd.io"]
    created = await create(http, HRS, body)
    watcher = apiserver.store.watch(
        "helmreleases.helm.toolkit.fluxcd.io", "apps", created["metadata"]["resourceVersion"]
    )
    code, obj = await call(http, "DELETE", f"{HRS}/podinfo")
    assert code == 200
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["generation"] == 2  # graceful deletion bumps generation
    code, still = await call(http, "GET", f"{HRS}/podinfo")
    assert code == 200 and still["metadata"]["deletionTimestamp"]

    code, _ = await call(
        http,
        "PATCH",
        f"{HRS}/podinfo",
        headers=MERGE,
        json={"metadata": {"finalizers": ["finalizers.fluxcd.io", "another"]}},
    )
    assert code == 422, "no new finalizers on an object being deleted"

    code, _ = await call(
        http, "PATCH", f"{HRS}/podinfo", headers=MERGE, json={"metadata": {"finalizers": None}}
    )
    assert code == 200
    code, _ = await call(http, "GET", f"{HRS}/podinfo")
    assert code == 404
    events = [watcher.pop(), watcher.pop(), watcher.pop()]
    assert [e[0] if e else None for e in events] == ["MODIFIED", "DELETED", None]
    watcher.close()


async def test_delete_with_a_wrong_uid_precondition_is_409(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    await create(http, HRS, hr("podinfo", "apps"))
    code, status = await call(
        http, "DELETE", f"{HRS}/podinfo", json={"preconditions": {"uid": "not-it"}}
    )
    assert code == 409
    why = "the UID in the precondition (not-it) does not match the UID in record"
    assert why in status["message"]


async def test_dry_run_create_does_not_persist(http: aiohttp.ClientSession, hr: HR) -> None:
    code, _ = await call(http, "POST", f"{HRS}?dryRun=All", json=hr("podinfo", "apps"))
    assert code == 201
    code, _ = await call(http, "GET", f"{HRS}/podinfo")
    assert code == 404


async def test_delete_collection_removes_the_selected_objects(
    http: aiohttp.ClientSession, hr: HR
) -> None:
    await create(http, HRS, hr("a", "apps", labels={"team": "x"}))
    await create(http, HRS, hr("b", "apps", labels={"team": "y"}))
    code, _ = await call(http, "DELETE", f"{HRS}?labelSelector=team%3Dx")
    assert code == 200
    _, listed = await call(http, "GET", HRS)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["b"]


async def test_secret_string_data_is_stored_base64_in_data(http: aiohttp.ClientSession) -> None:
    created = await create(
        http,
        "/api/v1/namespaces/apps/secrets",
        {"metadata": {"name": "s"}, "stringData": {"token": "abc"}},
    )
    assert created["data"] == {"token": "YWJj"}
    assert created["type"] == "Opaque"
    assert "stringData" not in created


async def test_unknown_paths_are_404_and_wrong_methods_405(http: aiohttp.ClientSession) -> None:
    code, status = await call(http, "GET", "/apis/helm.toolkit.fluxcd.io/v2/widgets")
    assert (code, status["reason"]) == (404, "NotFound")
    code, status = await call(http, "POST", f"{HRS}/podinfo", json={})
    assert (code, status["reason"]) == (405, "MethodNotAllowed")
    code, _ = await call(http, "GET", "/api/v1/namespaces/apps/namespaces")
    assert code == 404
