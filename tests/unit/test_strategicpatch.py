"""Strategic merge patch as kube-apiserver applies it: maps, lists merged by key or as
sets, the ``$patch``/``$setElementOrder``/``$deleteFromPrimitiveList``/``$retainKeys``
directives, and the malformed patches the real server refuses (with its wording)."""

from __future__ import annotations

from typing import Any

import pytest

from fluxwatch.sim import openapi
from fluxwatch.sim.patching import deep_copy
from fluxwatch.sim.resources import BY_KEY
from fluxwatch.sim.strategicpatch import StrategicPatchError, strategic_merge

DEPLOYMENT = BY_KEY["deployments.apps"]
SERVICE = BY_KEY["services"]


def deploy_merge(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return strategic_merge(original, patch, lambda path: openapi.list_strategy(DEPLOYMENT, path))


def pod(**spec: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


def containers(result: dict[str, Any]) -> list[dict[str, Any]]:
    return result["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


# A small schema of its own for the list shapes the built-in kinds rarely combine.
_MARKERS = {
    ("items",): openapi.ListStrategy("merge", "name"),
    ("items", "tags"): openapi.ListStrategy("merge"),
    ("ints",): openapi.ListStrategy("merge"),
    ("plain",): openapi.ListStrategy(),
    ("grid",): openapi.ListStrategy("merge"),
}


def merge(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return strategic_merge(original, patch, _MARKERS.get)


# ---- maps ------------------------------------------------------------------------------------


def test_maps_merge_recursively_and_null_deletes_a_key() -> None:
    original = {"metadata": {"labels": {"app": "web", "tier": "front"}, "name": "web"}}
    patch = {"metadata": {"labels": {"tier": None, "team": "a"}}}
    assert deploy_merge(original, patch) == {
        "metadata": {"labels": {"app": "web", "team": "a"}, "name": "web"}
    }


def test_a_new_field_takes_the_patch_value_without_its_nulls() -> None:
    result = deploy_merge({"spec": {}}, {"spec": {"strategy": {"type": "Recreate", "x": None}}})
    assert result == {"spec": {"strategy": {"type": "Recreate"}}}


def test_patch_replace_in_a_map_replaces_it_whole() -> None:
    original = {"spec": {"selector": {"matchLabels": {"app": "web", "tier": "front"}}}}
    patch = {"spec": {"selector": {"$patch": "replace", "matchLabels": {"app": "api"}}}}
    assert deploy_merge(original, patch) == {"spec": {"selector": {"matchLabels": {"app": "api"}}}}


def test_patch_delete_in_a_map_empties_it() -> None:
    original = {"metadata": {"labels": {"app": "web"}, "name": "web"}}
    result = deploy_merge(original, {"metadata": {"labels": {"$patch": "delete"}}})
    assert result == {"metadata": {"labels": {}, "name": "web"}}


def test_a_new_map_carrying_a_directive_is_dropped() -> None:
    # Nothing to merge into: the real server drops the field rather than keep "$patch".
    result = deploy_merge({"spec": {}}, {"spec": {"strategy": {"$patch": "replace", "type": "X"}}})
    assert result == {"spec": {}}


def test_retain_keys_clears_the_keys_it_does_not_list() -> None:
    original = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert deploy_merge(original, patch) == {"spec": {"strategy": {"type": "Recreate"}}}


# ---- lists of maps merged by key -------------------------------------------------------------


DEPLOY = pod(
    containers=[
        {
            "name": "app",
            "image": "nginx:1.25",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "ports": [{"containerPort": 80, "name": "http"}],
        },
        {"name": "sidecar", "image": "busybox", "args": ["sleep", "1"]},
    ]
)


def test_containers_merge_by_name_and_untouched_ones_survive() -> None:
    # The patch client-side apply sends after one container's image and env changed.
    patch = pod(
        **{
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            "containers": [
                {
                    "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
                    "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                    "image": "nginx:1.27",
                    "name": "app",
                }
            ],
        }
    )
    assert containers(deploy_merge(DEPLOY, patch)) == [
        {
            "name": "app",
            "image": "nginx:1.27",
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "value": "3"},
                {"name": "C", "value": "4"},
            ],
            "ports": [{"containerPort": 80, "name": "http"}],
        },
        {"name": "sidecar", "image": "busybox", "args": ["sleep", "1"]},
    ]


def test_a_new_item_is_appended_and_set_element_order_places_it() -> None:
    patch = pod(
        **{
            "$setElementOrder/containers": [{"name": "init"}, {"name": "app"}, {"name": "sidecar"}],
            "containers": [{"name": "init", "image": "alpine"}],
        }
    )
    names = [c["name"] for c in containers(deploy_merge(DEPLOY, patch))]
    assert names == ["init", "app", "sidecar"]
    appended = deploy_merge(DEPLOY, pod(containers=[{"name": "init", "image": "alpine"}]))
    assert [c["name"] for c in containers(appended)] == ["init", "app", "sidecar"]


def test_server_only_items_keep_their_place_among_the_ordered_ones() -> None:
    # Live 1(other),2,9,3,4 reordered to 2,1,4,3: 9 (server-only) stays after 1.
    live = {
        "items": [{"name": 1, "other": "a"}, {"name": 2}, {"name": 9}, {"name": 3}, {"name": 4}]
    }
    patch = {"$setElementOrder/items": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]}
    assert merge(live, patch) == {
        "items": [{"name": 2}, {"name": 1, "other": "a"}, {"name": 9}, {"name": 4}, {"name": 3}]
    }


def test_set_element_order_may_name_items_that_no_longer_exist() -> None:
    live = {"items": [{"name": 1}, {"name": 3}]}
    patch = {
        "$setElementOrder/items": [{"name": 3}, {"name": 2}, {"name": 1}],
        "items": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
    }
    assert merge(live, patch) == {"items": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}


def test_a_volume_changing_its_source_keeps_only_the_retained_keys() -> None:
    live = pod(
        volumes=[{"name": "conf", "configMap": {"name": "a"}}, {"name": "tmp", "emptyDir": {}}]
    )
    patch = pod(
        **{
            "$setElementOrder/volumes": [{"name": "conf"}, {"name": "tmp"}],
            "volumes": [
                {
                    "$retainKeys": ["name", "secret"],
                    "name": "conf",
                    "configMap": None,
                    "secret": {"secretName": "b"},
                }
            ],
        }
    )
    assert deploy_merge(live, patch)["spec"]["template"]["spec"]["volumes"] == [
        {"name": "conf", "secret": {"secretName": "b"}},
        {"name": "tmp", "emptyDir": {}},
    ]


def test_a_list_the_live_object_lacks_is_taken_from_the_patch_without_nulls() -> None:
    patch = {
        "$setElementOrder/items": [{"name": "b"}, {"name": "a"}],
        "items": [{"name": "b"}, {"name": "a", "x": None}],
    }
    assert merge({}, patch) == {"items": [{"name": "b"}, {"name": "a"}]}


def test_patch_delete_item_removes_it_from_the_list() -> None:
    patch = pod(containers=[{"name": "sidecar", "$patch": "delete"}])
    assert [c["name"] for c in containers(deploy_merge(DEPLOY, patch))] == ["app"]


def test_patch_replace_item_makes_the_patch_the_whole_list() -> None:
    patch = pod(containers=[{"$patch": "replace"}, {"name": "only", "image": "x"}])
    assert containers(deploy_merge(DEPLOY, patch)) == [{"name": "only", "image": "x"}]


def test_service_ports_merge_by_port() -> None:
    live = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    patch = {
        "spec": {
            "$setElementOrder/ports": [{"port": 80}, {"port": 443}],
            "ports": [{"port": 443, "targetPort": 8443}],
        }
    }
    result = strategic_merge(live, patch, lambda path: openapi.list_strategy(SERVICE, path))
    assert result["spec"]["ports"] == [
        {"port": 80, "name": "http"},
        {"port": 443, "name": "https", "targetPort": 8443},
    ]


# ---- other lists -------------------------------------------------------------------------------


def test_a_list_without_merge_strategy_is_replaced() -> None:
    patch = pod(containers=[{"name": "sidecar", "args": ["sleep", "2"]}])
    sidecar = containers(deploy_merge(DEPLOY, patch))[1]
    assert sidecar == {"name": "sidecar", "image": "busybox", "args": ["sleep", "2"]}
    assert merge({"plain": [1, 2, 3]}, {"plain": [3]}) == {"plain": [3]}


def test_primitive_lists_with_merge_strategy_merge_as_sets() -> None:
    assert merge({"ints": [1, 2]}, {"ints": [3, 1]}) == {"ints": [3, 1, 2]}
    # What apply sends when 3 joins 1, 2 on a server that also holds 4.
    patch = {"$setElementOrder/ints": [1, 2, 3], "ints": [3]}
    assert merge({"ints": [1, 2, 4]}, patch) == {"ints": [1, 2, 3, 4]}


def test_delete_from_primitive_list_removes_the_values() -> None:
    live = {"metadata": {"finalizers": ["a", "b", "c"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}}
    assert deploy_merge(live, patch) == {"metadata": {"finalizers": ["a", "c"]}}
    # On a list without merge strategy too, and never adding a missing list.
    assert merge({"plain": [1, 2]}, {"$deleteFromPrimitiveList/plain": [2]}) == {"plain": [1]}
    assert merge({}, {"$deleteFromPrimitiveList/plain": [2]}) == {}


def test_nested_lists_merge_inside_merged_items() -> None:
    live = {"items": [{"name": "a", "tags": ["x"]}]}
    result = merge(live, {"items": [{"name": "a", "tags": ["y"]}]})
    assert result == {"items": [{"name": "a", "tags": ["y", "x"]}]}


def test_the_inputs_are_never_mutated() -> None:
    original = deep_copy(DEPLOY)
    patch = pod(
        **{
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
            "containers": [{"name": "app", "$setElementOrder/env": [{"name": "A"}], "env": []}],
        }
    )
    frozen = deep_copy(patch)
    deploy_merge(original, patch)
    assert original == DEPLOY
    assert patch == frozen


# ---- what the real server refuses ------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "patch", "code", "message"),
    [
        (
            {"items": [{"name": "a"}]},
            {"items": [{"value": "b"}]},
            500,
            "map: map[value:b] does not contain declared merge key: name",
        ),
        (
            {"items": [{"name": "a"}]},
            {"items": [{"$patch": "delete", "value": 1}]},
            500,
            "map: map[$patch:delete value:1] does not contain declared merge key: name",
        ),
        (
            {"items": [{"name": "a"}]},
            {"items": [{"value": 1.5, "big": 2e6, "on": False, "none": None}]},
            500,
            "map: map[big:2e+06 none:<nil> on:false value:1.5] does not contain declared "
            "merge key: name",
        ),
        (
            {"m": {"a": 1}},
            {"m": {"$patch": 1}},
            500,
            "unknown patch type: %!s(int64=1) in map: map[$patch:1]",
        ),
        (
            {"items": [{"name": "a"}]},
            {"items": [{"$patch": "merge", "name": "a"}]},
            500,
            "merging lists cannot yet be specified in the patch",
        ),
        (
            {"items": [{"name": "a"}]},
            {"items": [{"$patch": "nope", "name": "a"}]},
            500,
            "unknown patch type: nope in map: map[$patch:nope name:a]",
        ),
        (
            {"m": {"a": 1}},
            {"m": {"$patch": "merge", "b": True}},
            500,
            "unknown patch type: merge in map: map[$patch:merge b:true]",
        ),
        (
            {"items": [{"name": 1}, {"name": 3}, {"name": 2}]},
            {
                "$setElementOrder/items": [{"name": 1}, {"name": 2}, {"name": 3}],
                "items": [{"name": 3, "value": 3}, {"name": 1, "value": 1}],
            },
            500,
            "The order in patch list:\n[map[name:3 value:3] map[name:1 value:1]]\n doesn't match "
            "$setElementOrder list:\n[map[name:1] map[name:2] map[name:3]]\n",
        ),
        (
            {"ints": [1]},
            {"ints": ["a"]},
            500,
            "list element types are not identical: [[1] [a]]",
        ),
        ({"grid": [[1]]}, {"grid": [[2]]}, 422, "lists of lists are not supported"),
        ({"m": {"a": 1}}, {"m": {"$retainKeys": "a"}}, 400, "invalid patch format of retainKeys"),
        (
            {"m": {"a": 1}},
            {"m": {"$retainKeys": ["a"], "b": 2}},
            400,
            "invalid patch format of retainKeys",
        ),
        (
            {"ints": [1]},
            {"$deleteFromPrimitiveList": [1]},
            400,
            "invalid patch format of primitive list",
        ),
        (
            {"ints": [1]},
            {"$setElementOrderints": [1]},
            400,
            "invalid patch format of setElementOrder list",
        ),
        (
            {"ints": [1]},
            {"$setElementOrder/ints": "1"},
            500,
            "expected a []interface {}, but received a string",
        ),
    ],
)
def test_malformed_patches_fail_as_the_real_server_says(
    original: dict[str, Any], patch: dict[str, Any], code: int, message: str
) -> None:
    with pytest.raises(StrategicPatchError) as caught:
        merge(original, patch)
    assert (caught.value.code, str(caught.value)) == (code, message)
