"""The in-process Store API that the simulated controllers and scenarios call:
copies in and out, the global resourceVersion, preconditions and namespaces."""

from __future__ import annotations

import pytest

from fluxwatch.sim.resources import BY_KEY
from fluxwatch.sim.store import ApiError, Store
from tests.conftest import helmrelease

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
# Store semantics are the same for every kind; a ConfigMap takes any data keys.
CM = "configmaps"


def test_returned_objects_are_copies_safe_to_mutate() -> None:
    store = Store()
    body = {"metadata": {"name": "a", "namespace": "apps"}, "data": {"x": "1"}}
    created = store.create(CM, body)
    body["data"]["x"] = "2"
    created["data"]["x"] = "3"
    store.list(CM, "apps")[0][0]["data"]["x"] = "4"
    assert store.get(CM, "apps", "a")["data"] == {"x": "1"}


def test_resource_version_is_global_and_increasing_across_resources() -> None:
    store = Store()
    a = store.create(BY_KEY[CM], {"metadata": {"name": "a", "namespace": "apps"}})
    lease = store.create(
        "leases.coordination.k8s.io", {"metadata": {"name": "l", "namespace": "apps"}}
    )
    b = store.patch(CM, "apps", "a", {"data": {"x": "1"}})
    versions = [int(o["metadata"]["resourceVersion"]) for o in (a, lease, b)]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert store.resource_version == versions[-1]
    assert store.list(CM)[1] == str(store.resource_version)


def test_in_process_create_may_seed_status_but_update_cannot_change_it() -> None:
    store = Store()
    created = store.create(
        HR_KEY, {**helmrelease("a", "apps"), "status": {"observedGeneration": 1}}
    )
    assert created["status"] == {"observedGeneration": 1}
    created["status"] = {"observedGeneration": 9}
    assert store.update(HR_KEY, created)["status"] == {"observedGeneration": 1}
    assert store.update(
        HR_KEY,
        store.get(HR_KEY, "apps", "a") | {"status": {"observedGeneration": 2}},
        subresource="status",
    )["status"] == {"observedGeneration": 2}


def test_update_with_a_stale_resource_version_is_a_conflict() -> None:
    store = Store()
    old = store.create(CM, {"metadata": {"name": "a", "namespace": "apps"}})
    store.patch(CM, "apps", "a", {"data": {"x": "1"}})
    with pytest.raises(ApiError) as info:
        store.update(CM, old)
    assert (info.value.code, info.value.reason) == (409, "Conflict")
    assert info.value.status()["kind"] == "Status"


def test_patch_with_resource_version_precondition() -> None:
    store = Store()
    rv = store.create(CM, {"metadata": {"name": "a", "namespace": "apps"}})["metadata"][
        "resourceVersion"
    ]
    store.patch(CM, "apps", "a", {"metadata": {"resourceVersion": rv}, "data": {"x": "1"}})
    with pytest.raises(ApiError) as info:
        store.patch(CM, "apps", "a", {"metadata": {"resourceVersion": rv}, "data": {"x": "2"}})
    assert info.value.code == 409


def test_json_patch_in_process() -> None:
    store = Store()
    store.create(HR_KEY, helmrelease("a", "apps", dependsOn=[{"name": "x"}]))
    patched = store.patch(
        HR_KEY,
        "apps",
        "a",
        [{"op": "add", "path": "/spec/dependsOn/-", "value": {"name": "y"}}],
        patch_type="json",
    )
    assert patched["spec"]["dependsOn"] == [{"name": "x"}, {"name": "y"}]


def test_creating_in_a_new_namespace_creates_the_namespace() -> None:
    store = Store()
    store.create(HR_KEY, helmrelease("a", "team-x"))
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
    store.create(CM, {"metadata": {"name": "a", "namespace": "apps"}})
    store.delete(CM, "apps", "a")
    with pytest.raises(ApiError) as info:
        store.delete(CM, "apps", "a")
    assert info.value.code == 404
