"""CustomResourceDefinitions: registering, serving, versions, and taking a kind away."""

from __future__ import annotations

import copy
from typing import Any

from tests.conformance.conftest import Api

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {"size": {"type": "integer"}, "color": {"type": "string"}},
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def widget_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {
                "kind": "Widget",
                "plural": "widgets",
                "singular": "widget",
                "shortNames": ["wd"],
                "categories": ["all"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1beta1",
                    "served": True,
                    "storage": False,
                    "schema": {"openAPIV3Schema": copy.deepcopy(WIDGET_SCHEMA)},
                },
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": copy.deepcopy(WIDGET_SCHEMA)},
                    "subresources": {"status": {}},
                },
            ],
        },
    }


async def test_an_accepted_crd_is_established_and_its_kind_is_discovered(api: Api) -> None:
    code, crd = await api.post(CRDS, widget_crd())
    assert code == 201, crd
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["listKind"] == "WidgetList"
    assert crd["status"]["storedVersions"] == ["v1"]
    assert crd["metadata"]["generation"] == 1
    code, group = await api.get("/apis/example.com")
    assert code == 200
    assert group["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    code, listing = await api.get("/apis/example.com/v1")
    names = {r["name"]: r for r in listing["resources"]}
    assert names["widgets"]["shortNames"] == ["wd"]
    assert names["widgets"]["categories"] == ["all"]
    assert "widgets/status" in names
    code, beta = await api.get("/apis/example.com/v1beta1")
    assert [r["name"] for r in beta["resources"]] == ["widgets"]


async def test_an_object_written_at_one_version_reads_at_another(api: Api) -> None:
    await api.post(CRDS, widget_crd())
    body = {"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "w"}}
    code, created = await api.post("/apis/example.com/v1beta1/namespaces/default/widgets", body)
    assert code == 201, created
    assert created["apiVersion"] == "example.com/v1beta1"
    code, got = await api.get("/apis/example.com/v1/namespaces/default/widgets/w")
    assert code == 200 and got["apiVersion"] == "example.com/v1"
    code, listing = await api.get("/apis/example.com/v1beta1/widgets")
    assert listing["items"][0]["apiVersion"] == "example.com/v1beta1"


async def test_a_crd_named_other_than_plural_dot_group_is_422(api: Api) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "widgets"
    code, body = await api.post(CRDS, crd)
    assert code == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"


async def test_a_crd_without_exactly_one_storage_version_is_422(api: Api) -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["storage"] = True
    code, body = await api.post(CRDS, crd)
    assert code == 422
    assert "must have exactly one version marked as storage version" in body["message"]


async def test_deleting_a_crd_takes_its_kind_and_objects_away(api: Api) -> None:
    await api.post(CRDS, widget_crd())
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    await api.post("/apis/example.com/v1/namespaces/default/widgets", body)
    code, _ = await api.delete(f"{CRDS}/widgets.example.com")
    assert code == 200
    code, gone = await api.get("/apis/example.com/v1/namespaces/default/widgets/w")
    assert code == 404
    assert gone["message"] == "the server could not find the requested resource"
    code, _ = await api.get("/apis/example.com/v1")
    assert code == 404
    # Registered again, the kind starts empty.
    await api.post(CRDS, widget_crd())
    code, listing = await api.get("/apis/example.com/v1/widgets")
    assert code == 200 and listing["items"] == []


async def test_a_fresh_cluster_serves_helmrelease_v2_from_its_crd(api: Api) -> None:
    code, crd = await api.get(f"{CRDS}/helmreleases.helm.toolkit.fluxcd.io")
    assert code == 200
    assert crd["spec"]["names"]["shortNames"] == ["hr"]
    code, listing = await api.get("/apis/helm.toolkit.fluxcd.io/v2")
    assert "helmreleases" in {r["name"] for r in listing["resources"]}
