"""managedFields and server-side apply (fluxwatch.sim.managedfields) against what a real
kube-apiserver writes: the fieldsV1 bytes, who owns what after creates, updates, status
writes and applies, and the 409 a conflicting apply gets."""

from __future__ import annotations

import copy
import re
from typing import Any

import orjson
import pytest

from fluxwatch.sim import managedfields as mf

T0, T1, T2 = "2026-11-27T10:00:00Z", "2026-11-27T10:01:00Z", "2026-11-27T10:02:00Z"
CM_TYPES = mf.builtin_list_types("v1", "ConfigMap")
DEPLOY_TYPES = mf.builtin_list_types("apps/v1", "Deployment")
HR_VERSION = "helm.toolkit.fluxcd.io/v2"


def configmap(data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default", **meta},
        "data": data,
    }


def created(obj: dict[str, Any], manager: str, lists: mf.ListTypes = CM_TYPES) -> dict[str, Any]:
    mf.record_update(None, obj, manager=manager, api_version=obj["apiVersion"], now=T0, lists=lists)
    return obj


def updated(
    old: dict[str, Any],
    change: Any,
    manager: str,
    now: str = T1,
    subresource: str = "",
    lists: mf.ListTypes = CM_TYPES,
) -> dict[str, Any]:
    new = copy.deepcopy(old)
    change(new)
    mf.record_update(
        old,
        new,
        manager=manager,
        api_version=old["apiVersion"],
        now=now,
        subresource=subresource,
        lists=lists,
    )
    return new


def entries(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """managedFields by (manager, operation, subresource) -> fieldsV1."""
    return {
        (e["manager"], e["operation"], e.get("subresource", "")): e["fieldsV1"]
        for e in obj["metadata"].get("managedFields", [])
    }


def applied(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    *,
    force: bool = False,
    now: str = T1,
    lists: mf.ListTypes = CM_TYPES,
) -> dict[str, Any]:
    return mf.apply(
        live,
        config,
        manager=manager,
        force=force,
        api_version=config["apiVersion"],
        now=now,
        lists=lists,
    )


# --------------------------------------------------------------------------- encoding


def test_create_records_every_field_set_in_the_servers_bytes() -> None:
    cm = created(configmap({"key": "a"}, labels={"app": "x"}), "kubectl-create")
    assert cm["metadata"]["managedFields"] == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:data": {".": {}, "f:key": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            },
        }
    ]
    # The wire form: "." first, then fields by name, exactly as the real server writes.
    assert orjson.dumps(cm["metadata"]["managedFields"][0]["fieldsV1"]) == (
        b'{"f:data":{".":{},"f:key":{}},"f:metadata":{"f:labels":{".":{},"f:app":{}}}}'
    )


def test_deployment_lists_are_keyed_and_typed_structs_have_no_dot() -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "x",
                            "image": "nginx",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        }
                    ]
                },
            },
        },
    }
    created(deploy, "kubectl-create", DEPLOY_TYPES)
    fields = deploy["metadata"]["managedFields"][0]["fieldsV1"]
    assert fields["f:spec"] == {
        "f:replicas": {},
        "f:selector": {},  # atomic: a leaf, never its matchLabels
        "f:template": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:containers": {
                    'k:{"name":"x"}': {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {
                            ".": {},
                            'k:{"containerPort":80,"protocol":"TCP"}': {
                                ".": {},
                                "f:containerPort": {},
                                "f:protocol": {},
                            },
                        },
                    }
                }
            },
        },
    }
    assert orjson.dumps(fields["f:spec"]["f:template"]["f:spec"]).startswith(
        b'{"f:containers":{"k:{\\"name\\":\\"x\\"}":{".":{},"f:image":{}'
    )


def test_custom_resources_have_no_schema_so_every_new_node_is_a_member() -> None:
    hr = {
        "apiVersion": HR_VERSION,
        "kind": "HelmRelease",
        "metadata": {"name": "hr", "namespace": "apps", "finalizers": ["finalizers.fluxcd.io"]},
        "spec": {"interval": "10m", "values": {"replicas": 2}, "valuesFrom": [{"name": "v"}]},
    }
    mf.record_update(None, hr, manager="flux", api_version=HR_VERSION, now=T0)
    assert hr["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:metadata": {"f:finalizers": {".": {}, 'v:"finalizers.fluxcd.io"': {}}},
        "f:spec": {
            ".": {},
            "f:interval": {},
            "f:values": {".": {}, "f:replicas": {}},
            "f:valuesFrom": {},  # atomic list: the list, no i: elements
        },
    }


def test_fields_v1_round_trip_orders_elements_as_smd() -> None:
    wire = {
        "f:b": {},
        "i:10": {},
        "i:2": {},
        'v:"z"': {},
        'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}},
        "f:a": {".": {}, "f:x": {}},
        "v:1": {},
        'k:{"port":443,"protocol":"TCP"}': {},
    }
    encoded = mf.to_fields_v1(mf.from_fields_v1(wire))
    assert list(encoded) == [
        "f:a",
        "f:b",
        'k:{"port":80,"protocol":"TCP"}',
        'k:{"port":443,"protocol":"TCP"}',
        "v:1",
        'v:"z"',
        "i:2",
        "i:10",
    ]
    assert list(encoded["f:a"]) == [".", "f:x"]
    assert mf.paths(mf.from_fields_v1(wire))[:3] == [".a", ".a.x", ".b"]
    with pytest.raises(ValueError):
        mf.from_fields_v1({"x:what": {}})


# --------------------------------------------------------------------------- updates


def test_an_update_moves_the_changed_field_and_leaves_the_rest() -> None:
    cm = created(configmap({"key": "a", "other": "b"}), "kubectl-create")
    cm = updated(cm, lambda o: o["data"].update(key="changed"), "OpenAPI-Generator")
    assert entries(cm) == {
        ("kubectl-create", "Update", ""): {"f:data": {".": {}, "f:other": {}}},
        ("OpenAPI-Generator", "Update", ""): {"f:data": {"f:key": {}}},
    }
    # Removing the last field a manager owns drops its entry.
    cm = updated(cm, lambda o: o["data"].pop("key"), "kubectl-edit")
    assert ("OpenAPI-Generator", "Update", "") not in entries(cm)
    assert ("kubectl-edit", "Update", "") not in entries(cm)  # it added nothing


def test_one_manager_keeps_one_entry_whose_time_moves_only_on_change() -> None:
    cm = created(configmap({"key": "a"}), "ctl")
    cm = updated(cm, lambda o: o["data"].update(more="x"), "ctl", now=T1)
    assert len(cm["metadata"]["managedFields"]) == 1
    assert cm["metadata"]["managedFields"][0]["time"] == T1
    assert entries(cm)[("ctl", "Update", "")] == {"f:data": {".": {}, "f:key": {}, "f:more": {}}}
    # A write that changes nothing (only the resourceVersion) leaves the entry alone.
    cm = updated(cm, lambda o: o["metadata"].update(resourceVersion="9"), "ctl", now=T2)
    assert cm["metadata"]["managedFields"][0]["time"] == T1


def test_entries_sort_apply_first_then_by_time() -> None:
    cm = created(configmap({"a": "1"}), "zeta")
    cm = updated(cm, lambda o: o["data"].update(b="2"), "alpha", now=T2)
    cm = applied(cm, configmap({"c": "3"}), "applier", now=T2)
    assert [e["manager"] for e in cm["metadata"]["managedFields"]] == ["applier", "zeta", "alpha"]


def test_client_supplied_managed_fields_reset_replace_or_fall_back() -> None:
    cm = created(configmap({"key": "a"}), "ctl")
    # [{}] on an update: ownership forgotten, and the object stays untracked.
    reset = updated(cm, lambda o: o["metadata"].update(managedFields=[{}]), "ctl")
    assert "managedFields" not in reset["metadata"]
    later = updated(reset, lambda o: o["data"].update(key="b"), "other")
    assert "managedFields" not in later["metadata"]
    # [] on a create: tracking starts from nothing.
    fresh = configmap({"key": "a"}, managedFields=[])
    started = entries(created(fresh, "ctl"))
    assert started == {("ctl", "Update", ""): {"f:data": {".": {}, "f:key": {}}}}
    # A valid list replaces the live ownership.
    mine = [
        {
            "manager": "mine",
            "operation": "Apply",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}}},
        }
    ]
    taken = updated(cm, lambda o: o["metadata"].update(managedFields=mine), "ctl")
    assert entries(taken) == {("mine", "Apply", ""): {"f:data": {"f:key": {}}}}
    # An invalid one is ignored: the live entries stay.
    bad = [{"manager": "x", "operation": "Steal", "apiVersion": "v1", "fieldsType": "FieldsV1"}]
    kept = updated(cm, lambda o: o["metadata"].update(managedFields=bad), "ctl")
    assert kept["metadata"]["managedFields"] == cm["metadata"]["managedFields"]


def test_validate_words_entry_errors_as_the_server() -> None:
    errors = mf.validate([{"manager": "x\x00", "operation": "Steal", "fieldsType": "FieldsV2"}])
    assert [str(e) for e in errors] == [
        'metadata.managedFields[0].operation: Unsupported value: "Steal": '
        'supported values: "Apply", "Update"',
        'metadata.managedFields[0].fieldsType: Invalid value: "FieldsV2": must be `FieldsV1`',
        'metadata.managedFields[0].manager: Invalid value: "x\\u0000": '
        "invalid character U+0000 (at position 1)",
    ]


def test_status_writes_are_owned_under_the_status_subresource() -> None:
    hr = {
        "apiVersion": HR_VERSION,
        "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "apps"},
        "spec": {"interval": "10m"},
    }
    mf.record_update(None, hr, manager="kustomize-controller", api_version=HR_VERSION, now=T0)
    status = {"conditions": [{"type": "Ready", "status": "Unknown"}]}
    # The client's managedFields are ignored on a subresource write.
    hr2 = updated(
        hr,
        lambda o: (o.update(status=status), o["metadata"].update(managedFields=[])),
        "helm-controller",
        subresource="status",
        lists=mf.default_list_types,
    )
    status_entry = [e for e in hr2["metadata"]["managedFields"] if e.get("subresource")]
    assert status_entry == [
        {
            "manager": "helm-controller",
            "operation": "Update",
            "apiVersion": HR_VERSION,
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {".": {}, "f:conditions": {}}},
            "subresource": "status",
        }
    ]
    assert ("kustomize-controller", "Update", "") in entries(hr2)


def test_ignored_fields_are_neither_gained_nor_lost() -> None:
    hr = {"apiVersion": HR_VERSION, "kind": "HelmRelease", "metadata": {"name": "a"}}
    new = {**hr, "spec": {"x": 1}, "status": {"y": 2}}
    mf.record_update(None, new, manager="m", api_version=HR_VERSION, now=T0, ignore=("status",))
    assert new["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {".": {}, "f:x": {}}}


def test_more_than_ten_updaters_fold_into_ancient_changes() -> None:
    cm = created(configmap({"k0": "v"}), "m0")
    for i in range(1, 12):
        cm = updated(cm, lambda o, i=i: o["data"].update({f"k{i}": "v"}), f"m{i}", now=f"T{i:02d}")
    managers = [e["manager"] for e in cm["metadata"]["managedFields"]]
    assert len(managers) == 10
    assert "ancient-changes" in managers
    assert {"m0", "m1", "m2"}.isdisjoint(managers)
    ancient = entries(cm)[("ancient-changes", "Update", "")]
    assert set(ancient["f:data"]) >= {"f:k0", "f:k1", "f:k2"}


def test_default_manager_is_the_user_agent_up_to_its_first_slash() -> None:
    assert mf.default_manager("kubectl/v1.32.0 (linux/amd64) kubernetes/abc") == "kubectl"
    assert mf.default_manager("OpenAPI-Generator/31.0.0/python") == "OpenAPI-Generator"
    assert mf.default_manager("fluxwatch") == "fluxwatch"
    assert mf.default_manager("a\tb/1") == "ab"
    assert mf.default_manager("x" * 300) == "x" * 128
    # Recorded as "unknown" when nothing is left.
    cm = configmap({"k": "v"})
    mf.record_update(None, cm, manager=mf.default_manager(""), api_version="v1", now=T0)
    assert cm["metadata"]["managedFields"][0]["manager"] == "unknown"


# --------------------------------------------------------------------------- apply


def test_apply_creates_with_an_apply_entry_listing_only_what_was_applied() -> None:
    obj = applied(None, configmap({"key": "a"}, labels={"app": "x"}), "kubectl")
    assert obj["data"] == {"key": "a"}
    assert obj["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:app": {}}}},
        }
    ]


def test_reapply_without_a_field_removes_it_unless_someone_else_owns_it() -> None:
    obj = applied(None, configmap({"a": "1", "b": "2", "c": "3"}), "kubectl", now=T0)
    obj = updated(obj, lambda o: o["data"].update(c="33"), "editor")
    obj = applied(obj, configmap({"a": "1"}), "kubectl", now=T2)
    # b was only kubectl's: gone. c was changed (so owned) by the editor: kept.
    assert obj["data"] == {"a": "1", "c": "33"}
    assert entries(obj)[("kubectl", "Apply", "")] == {"f:data": {"f:a": {}}}


def test_apply_of_a_different_value_conflicts_with_the_owner() -> None:
    live = created(configmap({"key": "a", "other": "x"}), "kubectl-client-side-apply")
    with pytest.raises(mf.ApplyConflict) as caught:
        applied(live, configmap({"key": "b"}), "kubectl")
    assert caught.value.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
        "using v1: .data.key",
        "reason": "Conflict",
        "details": {
            "causes": [
                {
                    "reason": "FieldManagerConflict",
                    "message": 'conflict with "kubectl-client-side-apply" using v1',
                    "field": ".data.key",
                }
            ]
        },
        "code": 409,
    }
    # The same value is no conflict: both share the field.
    shared = applied(live, configmap({"key": "a"}), "kubectl")
    assert entries(shared)[("kubectl", "Apply", "")] == {"f:data": {"f:key": {}}}
    assert "f:key" in entries(shared)[("kubectl-client-side-apply", "Update", "")]["f:data"]


def test_several_conflicts_are_grouped_by_manager() -> None:
    live = applied(None, configmap({"a": "1", "b": "2"}), "first", now=T0)
    live = updated(live, lambda o: o["data"].update(c="3"), "editor")
    with pytest.raises(mf.ApplyConflict) as caught:
        applied(live, configmap({"a": "x", "b": "y", "c": "z"}), "second")
    assert caught.value.message == (
        'Apply failed with 3 conflicts: conflicts with "editor" using v1:\n'
        "- .data.c\n"
        'conflicts with "first":\n'
        "- .data.a\n"
        "- .data.b"
    )
    assert caught.value.conflicts == [
        ('"editor" using v1', ".data.c"),
        ('"first"', ".data.a"),
        ('"first"', ".data.b"),
    ]


def test_force_moves_ownership_to_the_applier() -> None:
    live = created(configmap({"key": "a", "other": "x"}), "kubectl-client-side-apply")
    obj = applied(live, configmap({"key": "b"}), "kubectl", force=True)
    assert obj["data"] == {"key": "b", "other": "x"}
    assert entries(obj) == {
        ("kubectl", "Apply", ""): {"f:data": {"f:key": {}}},
        ("kubectl-client-side-apply", "Update", ""): {"f:data": {".": {}, "f:other": {}}},
    }


def test_apply_to_an_untracked_object_gives_its_fields_to_before_first_apply() -> None:
    live = configmap({"key": "a", "old": "x"})
    obj = applied(live, configmap({"key": "a"}), "kubectl")
    assert entries(obj)[("before-first-apply", "Update", "")] == {
        "f:data": {".": {}, "f:key": {}, "f:old": {}}
    }
    owner = re.escape('"before-first-apply" using v1: .data.old')
    with pytest.raises(mf.ApplyConflict, match=owner):
        applied(live, configmap({"old": "y"}), "kubectl")


def test_apply_merges_keyed_lists_replaces_atomic_ones_and_unions_sets() -> None:
    base = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "finalizers": ["a"]},
        "spec": {
            "selector": {"matchLabels": {"app": "web", "tier": "front"}},
            "template": {
                "spec": {
                    "containers": [{"name": "app", "image": "app:1"}],
                    "tolerations": [{"key": "a"}],
                }
            },
        },
    }
    live = applied(None, base, "kubectl", lists=DEPLOY_TYPES, now=T0)
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "finalizers": ["b"]},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "proxy", "image": "envoy"}],
                    "tolerations": [{"key": "b"}],
                }
            }
        },
    }
    with pytest.raises(mf.ApplyConflict, match=r"\.spec\.template\.spec\.tolerations"):
        applied(live, sidecar, "injector", lists=DEPLOY_TYPES)
    obj = applied(live, sidecar, "injector", lists=DEPLOY_TYPES, force=True)
    spec = obj["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app", "proxy"]
    assert spec["tolerations"] == [{"key": "b"}]
    assert obj["metadata"]["finalizers"] == ["a", "b"]
    assert obj["spec"]["selector"] == base["spec"]["selector"]
    injector = entries(obj)[("injector", "Apply", "")]
    assert injector["f:metadata"] == {"f:finalizers": {'v:"b"': {}}}
    containers = injector["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert list(containers) == ['k:{"name":"proxy"}']


def test_apply_removes_a_list_item_it_stopped_applying() -> None:
    two = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]}
            }
        },
    }
    live = applied(None, two, "kubectl", lists=DEPLOY_TYPES, now=T0)
    one = copy.deepcopy(two)
    one["spec"]["template"]["spec"]["containers"].pop()
    obj = applied(live, one, "kubectl", lists=DEPLOY_TYPES)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["a"]


def test_apply_refuses_what_the_server_refuses() -> None:
    with pytest.raises(mf.ApplyError) as caught:
        applied(None, configmap({"a": "1"}), "")
    assert caught.value.code == 422
    assert caught.value.message == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch"
    )
    assert caught.value.details == {
        "group": "meta.k8s.io",
        "kind": "PatchOptions",
        "causes": [
            {
                "reason": "FieldValueRequired",
                "message": "Required value: is required for apply patch",
                "field": "fieldManager",
            }
        ],
    }
    with_fields = configmap({"a": "1"}, managedFields=[])
    with pytest.raises(mf.ApplyError, match=r"metadata\.managedFields must be nil"):
        applied(None, with_fields, "kubectl")
    with pytest.raises(mf.ApplyError) as wrong:
        mf.apply(
            None,
            {**configmap({}), "apiVersion": "v2"},
            manager="kubectl",
            force=False,
            api_version="v1",
            now=T0,
            lists=CM_TYPES,
            kind="ConfigMap",
        )
    assert wrong.value.code == 400
    assert wrong.value.message == "invalid object type: /v2, Kind=ConfigMap"
    with pytest.raises(mf.ApplyError, match="invalid object type: /, Kind="):
        applied(configmap({}), {"apiVersion": "", "metadata": {"name": "cm"}}, "kubectl")
    duplicated = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}},
    }
    with pytest.raises(mf.ApplyError) as typed:
        applied(None, duplicated, "kubectl", lists=DEPLOY_TYPES)
    assert typed.value.code == 500
    assert typed.value.message == (
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
        '.spec.template.spec.containers: duplicate entries for key [name="a"]'
    )


def test_kubectl_moving_from_client_side_apply_takes_what_its_annotation_holds() -> None:
    last = '{"apiVersion":"v1","data":{"key":"a"},"kind":"ConfigMap","metadata":{"name":"cm"}}\n'
    live = created(
        configmap({"key": "a"}, annotations={mf.LAST_APPLIED: last}), "kubectl-client-side-apply"
    )
    obj = applied(live, configmap({"key": "b"}), "kubectl")
    assert obj["data"] == {"key": "b"}
    assert entries(obj)[("kubectl", "Apply", "")] == {"f:data": {"f:key": {}}}
    # The annotation follows what kubectl applied (Go's JSON: sorted keys, a newline).
    assert obj["metadata"]["annotations"][mf.LAST_APPLIED] == (
        '{"apiVersion":"v1","data":{"key":"b"},"kind":"ConfigMap",'
        '"metadata":{"name":"cm","namespace":"default"}}\n'
    )
    # Another manager is not let through, and neither is a value edited since.
    with pytest.raises(mf.ApplyConflict):
        applied(live, configmap({"key": "b"}), "someone-else")
    edited = updated(live, lambda o: o["data"].update(key="c"), "kubectl-edit")
    owner = re.escape('conflict with "kubectl-edit" using v1: .data.key')
    with pytest.raises(mf.ApplyConflict, match=owner):
        applied(edited, configmap({"key": "b"}), "kubectl")
