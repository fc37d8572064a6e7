"""ObjectMeta as the server's decoding leaves it: a map or list of metadata that is empty
or null is omitted (its omitempty tags; a custom resource's metadata is coerced through
the same Go type), so removing the last label or annotation removes the field."""

from __future__ import annotations

from typing import Any

from tests.conformance.conftest import Api

CMS = "/api/v1/namespaces/default/configmaps"
HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/default/helmreleases"


def helmrelease(metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "p", **metadata},
        "spec": {
            "interval": "10m",
            "chart": {"spec": {"chart": "p", "sourceRef": {"kind": "HelmRepository", "name": "p"}}},
        },
    }


async def test_empty_labels_annotations_and_finalizers_are_not_stored(api: Api) -> None:
    empty = {"labels": {}, "annotations": None, "finalizers": [], "ownerReferences": []}
    code, cm = await api.post(CMS, {"metadata": {"name": "c", **empty}})
    assert code == 201
    code, hr = await api.post(HRS, helmrelease(empty))
    assert code == 201
    for obj in (cm, hr):
        assert not set(empty) & set(obj["metadata"]), obj["metadata"]


async def test_removing_the_last_annotation_by_merge_patch_removes_the_field(api: Api) -> None:
    code, _ = await api.post(HRS, helmrelease({"annotations": {"a": "1"}, "labels": {"b": "2"}}))
    assert code == 201
    patch = {"metadata": {"annotations": {"a": None}, "labels": {"b": None}}}
    code, hr = await api.patch(f"{HRS}/p", patch)
    assert code == 200
    assert "annotations" not in hr["metadata"] and "labels" not in hr["metadata"]
    code, cm = await api.post(CMS, {"metadata": {"name": "c", "annotations": {"a": "1"}}})
    assert code == 201
    code, cm = await api.patch(f"{CMS}/c", {"metadata": {"annotations": {"a": None}}})
    assert code == 200
    assert "annotations" not in cm["metadata"]
