"""The in-process Store API that the simulated controllers and scenarios call:
copies in and out, the global resourceVersion, preconditions and namespaces."""

from __future__ import annotations

import pytest

from fluxwatch.sim.resources import BY_KEY
from fluxwatch.sim.store import ApiError, Store

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"


def test_returned_objects_are_copies_safe_to_mutate() -> None:
    store = Store()
    body = {"metadata": {"name": "a", "namespace": "apps"}, "spec": {"x": 1}}
    created = store.create(HR_KEY, body)
    body["spec"]["x"] = 2
    created["spec"]["x"] = 3
    store.list(HR_KEY)[0][0]["spec"]["x"] = 4
    assert store.get(HR_KEY, "apps", "a")["spec"] == {"x": 1}


def test_resource_version_is_global_and_increasing_across_resources() -> None:
    store = Store()
    a = store.create(BY_KEY[HR_KEY], {"metadata": {"name": "a", "namespace": "apps"}})
    lease = store.create(
        "leases.coordination.k8s.io", {"metadata": {"name": "l", "namespace": "apps"}}
    )
    b = store.patch(HR_KEY, "apps", "a", {"spec": {"x": 1}})
    versions = [int(o["metadata"]["resourceVersion"]) for o in (a, lease, b)]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert store.resource_version == versions[-1]
    assert store.list(HR_KEY)[1] == str(store.resource_version)


def test_in_process_create_may_seed_status_but_update_cannot_change_it() -> None:
    store = Store()
    created = store.create(
        HR_KEY,
        {"metadata": {"name": "a", "namespace": "apps"}, "status": {"observedGeneration": 1}},
    )
    assert created["status"] == {"observedGeneration": 1}
    created["status"] = {"observedGeneration": 9}
    assert store.update(HR_KEY, created)["status"] == {"observedGeneration": 1}
    assert store.update(
        HR_KEY, store.get(HR_KEY, "apps", "a") | {"status": {"x": 1}}, subresource="status"
    )["status"] == {"x": 1}


def test_update_with_a_stale_resource_version_is_a_conflict() -> None:
    store = Store()
    old = store.create(HR_KEY, {"metadata": {"name": "a", "namespace": "apps"}})
    store.patch(HR_KEY, "apps", "a", {"spec": {"x": 1}})
    with pytest.raises(ApiError) as info:
        store.update(HR_KEY, old)
    assert (info.value.code, info.value.reason) == (409, "Conflict")
    assert info.value.status()["kind"] == "Status"


def test_patch_with_resource_version_precondition() -> None:
    store = Store()
    rv = store.create(HR_KEY, {"metadata": {"name": "a", "namespace": "apps"}})["metadata"][
        "resourceVersion"
    ]
    store.patch(HR_KEY, "apps", "a", {"metadata": {"resourceVersion": rv}, "spec": {"x": 1}})
    with pytest.raises(ApiError) as info:
        store.patch(HR_KEY, "apps", "a", {"metadata": {"resourceVersion": rv}, "spec": {"x": 2}})
    assert info.value.code == 409


def test_json_patch_in_process() -> None:
    store = Store()
    store.create(HR_KEY, {"metadata": {"name": "a", "namespace": "apps"}, "spec": {"l": [1]}})
    patched = store.patch(
        HR_KEY, "apps", "a", [{"op": "add", "path": "/spec/l/-", "value": 2}], patch_type="json"
    )
    assert patched["spec"]["l"] == [1, 2]


def test_creating_in_a_new_namespace_creates_the_namespace() -> None:
    store = Store()
    store.create(HR_KEY, {"metadata": {"name": "a", "namespace": "team-x"}})
    ns = store.get("namespaces", None, "team-x")
    assert ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-x"}


def test_an_unknown_resource_is_404() -> None:
    with pytest.raises(ApiError) as info:
        Store().get("widgets.example.com", "apps", "a")
    assert info.value.code == 404


def test_create_with_a_resource_version_is_refused_like_the_real_server() -> None:
    with pytest.raises(ApiError) as info:
        Store().create(
            HR_KEY, {"metadata": {"name": "a", "namespace": "apps", "resourceVersion": "5"}}
        )
    assert info.value.code == 500
    assert "resourceVersion should not be set" in info.value.message


def test_deleting_twice_is_404() -> None:
    store = Store()
    store.create(HR_KEY, {"metadata": {"name": "a", "namespace": "apps"}})
    store.delete(HR_KEY, "apps", "a")
    with pytest.raises(ApiError) as info:
        store.delete(HR_KEY, "apps", "a")
    assert info.value.code == 404
