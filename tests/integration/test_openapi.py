"""/openapi/v2 and /openapi/v3 as kube-apiserver serves them, and the machine's kubectl
relying on them: validation on, client-side apply's strategic merge patches, explain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl
from fluxwatch.sim.openapi import (
    V2_PROTOBUF,
    V2_PROTOBUF_SERVED,
    ListStrategy,
    OpenAPI,
    builtin_schema,
    definition,
    list_strategy,
    unknown_fields,
)
from fluxwatch.sim.resources import RESOURCES, Registry, ResourceType, lookup

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
CM_ITEM = "/api/v1/namespaces/{namespace}/configmaps/{name}"
HR_ITEM = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/{namespace}/helmreleases/{name}"


async def _get(http: aiohttp.ClientSession, path: str, **headers: str) -> aiohttp.ClientResponse:
    resp = await http.get(path, headers=headers, allow_redirects=False)
    await resp.read()
    return resp


async def _v3(http: aiohttp.ClientSession, gv: str) -> dict[str, Any]:
    resp = await _get(http, f"/openapi/v3/{gv}")
    assert resp.status == 200, resp.status
    doc: dict[str, Any] = await resp.json()
    return doc


def _params(op: dict[str, Any]) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}


# ---- the documents --------------------------------------------------------------------------


async def test_v3_index_lists_every_group_version_with_its_hash(
    http: aiohttp.ClientSession,
) -> None:
    resp = await _get(http, "/openapi/v3")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Cache-Control"] == "no-cache, private"
    paths = (await resp.json())["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/helm.toolkit.fluxcd.io/v2"} <= set(paths)
    url = paths["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    # The hash is the ETag of the document it points to, so clients may cache by URL.
    gv = await _get(http, "/openapi/v3/apis/apps/v1")
    assert url.split("hash=")[1] == gv.headers["Etag"].strip('"')
    again = await _get(http, "/openapi/v3", **{"If-None-Match": resp.headers["Etag"]})
    assert again.status == 304


async def test_core_v1_operations_carry_the_write_parameters_and_patch_types(
    http: aiohttp.ClientSession,
) -> None:
    doc = await _v3(http, "api/v1")
    assert doc["openapi"].startswith("3.")
    item = doc["paths"][CM_ITEM]
    gvk = {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert item["patch"]["x-kubernetes-group-version-kind"] == gvk
    assert item["patch"]["x-kubernetes-action"] == "patch"
    assert {"fieldValidation", "fieldManager", "dryRun", "force"} <= _params(item["patch"])
    assert {"fieldValidation", "fieldManager", "dryRun"} <= _params(item["put"])
    assert "application/strategic-merge-patch+json" in item["patch"]["requestBody"]["content"]
    collection = doc["paths"]["/api/v1/namespaces/{namespace}/configmaps"]
    assert {"fieldValidation", "fieldManager", "dryRun"} <= _params(collection["post"])
    assert collection["get"]["x-kubernetes-action"] == "list"
    assert "/api/v1/namespaces/{name}/status" in doc["paths"]
    assert "post" in doc["paths"]["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]
    schemas = doc["components"]["schemas"]
    configmap = schemas["io.k8s.api.core.v1.ConfigMap"]
    assert configmap["x-kubernetes-group-version-kind"] == [gvk]
    assert configmap["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert configmap["properties"]["data"]["type"] == "object"
    assert "enum" not in configmap["properties"]["kind"]
    assert "io.k8s.api.core.v1.ConfigMapList" in schemas
    owners = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"][
        "ownerReferences"
    ]
    assert owners["x-kubernetes-patch-merge-key"] == "uid"
    assert owners["x-kubernetes-list-map-keys"] == ["uid"]


async def test_apps_v1_has_the_pod_template_with_its_merge_keys(
    http: aiohttp.ClientSession,
) -> None:
    schemas = (await _v3(http, "apis/apps/v1"))["components"]["schemas"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["format"] == "int-or-string"
    # Only what the group's kinds reference: no Pods, no core/v1 Secrets here.
    assert "io.k8s.api.core.v1.Secret" not in schemas


async def test_crd_group_version_offers_no_strategic_merge_patch(
    http: aiohttp.ClientSession,
) -> None:
    doc = await _v3(http, "apis/helm.toolkit.fluxcd.io/v2")
    patch = doc["paths"][HR_ITEM]["patch"]
    assert "fieldValidation" in _params(patch)
    assert set(patch["requestBody"]["content"]) == {
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    }
    # The CRD's own schema is published, with the kind's GVK.
    hr = doc["components"]["schemas"]["io.fluxcd.toolkit.helm.v2.HelmRelease"]
    assert "interval" in hr["properties"]["spec"]["properties"]
    assert hr["x-kubernetes-group-version-kind"] == [
        {"group": "helm.toolkit.fluxcd.io", "kind": "HelmRelease", "version": "v2"}
    ]
    assert "io.fluxcd.toolkit.helm.v2.HelmReleaseList" in doc["components"]["schemas"]


async def test_hash_urls_are_immutable_and_stale_ones_redirect(
    http: aiohttp.ClientSession,
) -> None:
    index = await (await _get(http, "/openapi/v3")).json()
    url = index["paths"]["apis/coordination.k8s.io/v1"]["serverRelativeURL"]
    current = await _get(http, url)
    assert current.status == 200
    assert current.headers["Cache-Control"] == "public, immutable"
    assert "Expires" in current.headers
    assert current.headers["Vary"] == "Accept"
    stale = await _get(http, "/openapi/v3/apis/coordination.k8s.io/v1?hash=0ABC")
    assert stale.status == 301
    assert stale.headers["Location"] == url
    plain = await _get(http, "/openapi/v3/apis/coordination.k8s.io/v1")
    assert plain.headers["Cache-Control"] == "no-cache, private"


async def test_unknown_group_version_and_unacceptable_types(
    http: aiohttp.ClientSession,
) -> None:
    assert (await _get(http, "/openapi/v3/apis/nope.example.com/v1")).status == 404
    proto = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
    assert (await _get(http, "/openapi/v3/api/v1", Accept=proto)).status == 406


async def test_v2_is_json_or_protobuf_as_accepted(http: aiohttp.ClientSession) -> None:
    resp = await _get(http, "/openapi/v2", Accept="application/json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["swagger"] == "2.0"
    secret = doc["definitions"]["io.k8s.api.core.v1.Secret"]
    assert secret["properties"]["metadata"]["$ref"] == (
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    patch = doc["paths"][CM_ITEM]["patch"]
    assert "fieldValidation" in _params(patch)
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    # client-go asks for gnostic's protobuf alone, in the deprecated spelling.
    proto = await _get(http, "/openapi/v2", Accept=V2_PROTOBUF)
    assert proto.status == 200
    assert proto.headers["Content-Type"] == V2_PROTOBUF_SERVED
    assert proto.headers["Etag"] == resp.headers["Etag"]
    body = await proto.read()
    assert body.startswith(b"\x0a\x032.0")  # field 1 (swagger), "2.0"
    assert b"io.k8s.api.core.v1.Secret" in body
    assert (await _get(http, "/openapi/v2", Accept="text/html")).status == 406


async def test_openapi_is_forbidden_to_anonymous(apiserver: ApiServer) -> None:
    """system:discovery grants /openapi to authenticated users only."""
    async with aiohttp.ClientSession(base_url=apiserver.url) as anonymous:
        assert (await _get(anonymous, "/openapi/v3")).status == 403


async def test_documents_follow_the_registry() -> None:
    registry = Registry(RESOURCES)
    openapi = OpenAPI(registry, lambda res: None)
    before = openapi.v3_index().etag
    assert openapi.v3("apis/source.toolkit.fluxcd.io/v1") is None
    registry.add(
        ResourceType(
            "source.toolkit.fluxcd.io",
            "v1",
            "gitrepositories",
            "GitRepository",
            True,
            custom=True,
        )
    )
    assert openapi.v3_index().etag != before
    doc = openapi.v3("apis/source.toolkit.fluxcd.io/v1")
    assert doc is not None
    assert b"io.fluxcd.toolkit.source.v1.GitRepository" in doc.body


# ---- the schema helpers ---------------------------------------------------------------------


def _res(group: str, version: str, plural: str) -> ResourceType:
    res = lookup(group, version, plural)
    assert res is not None
    return res


def test_unknown_fields_are_worded_as_strict_decoding_errors() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"any": "key"}, "colour": "blue"},
        "spec": {
            "replicas": 1,
            "bogus": True,
            "template": {"spec": {"containers": [{"name": "web", "imagex": "nginx"}]}},
        },
    }
    assert unknown_fields(_res("apps", "v1", "deployments"), deployment) == [
        'unknown field "metadata.colour"',
        'unknown field "spec.bogus"',
        'unknown field "spec.template.spec.containers[0].imagex"',
    ]
    secret = {"apiVersion": "v1", "kind": "Secret", "data": {"k": "dg=="}, "type": "Opaque"}
    assert unknown_fields(_res("", "v1", "secrets"), secret) == []
    # Map keys join the path as field names do.
    crd = {
        "spec": {
            "versions": [
                {"schema": {"openAPIV3Schema": {"properties": {"spec": {"typo": "object"}}}}}
            ]
        }
    }
    assert unknown_fields(_res("apiextensions.k8s.io", "v1", "customresourcedefinitions"), crd) == [
        'unknown field "spec.versions[0].schema.openAPIV3Schema.properties.spec.typo"'
    ]
    hr = next(r for r in RESOURCES if r.key == HR_KEY)
    assert unknown_fields(hr, {"spec": {"anything": 1}}) == []


def test_list_strategy_reads_patch_and_list_markers() -> None:
    deployment = _res("apps", "v1", "deployments")
    assert list_strategy(deployment, ("spec", "template", "spec", "containers")) == ListStrategy(
        "merge", "name", "map", ("name",)
    )
    ports = list_strategy(deployment, ("spec", "template", "spec", "containers", "ports"))
    assert ports is not None
    assert ports.list_map_keys == ("containerPort", "protocol")
    assert list_strategy(deployment, ("spec", "strategy")) == ListStrategy("retainKeys")
    assert list_strategy(deployment, ("spec", "replicas")) is None
    assert list_strategy(deployment, ("spec", "nope")) is None
    selector = list_strategy(deployment, ("spec", "selector"))
    assert selector is not None and selector.map_type == "atomic"


def test_builtin_schema_refs_resolve() -> None:
    schema = builtin_schema(_res("coordination.k8s.io", "v1", "leases"))
    assert schema is not None
    ref = schema["properties"]["spec"]["allOf"][0]["$ref"]
    spec = definition(ref)
    assert spec is not None
    assert spec["properties"]["holderIdentity"]["type"] == "string"


# ---- kubectl --------------------------------------------------------------------------------

HR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "HelmRelease is the Schema for the helmreleases API",
    "properties": {
        "spec": {
            "type": "object",
            "description": "HelmReleaseSpec defines the desired state of a Helm release.",
            "properties": {
                "interval": {"type": "string", "description": "Interval at which to reconcile."},
                "suspend": {"type": "boolean", "description": "Suspend tells the controller."},
            },
        },
    },
}

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app
data:
  colour: {colour}
  {extra}
"""

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: creds
type: Opaque
stringData:
  token: {token}
"""


@pytest.fixture
async def hr_schema_apiserver(tls_apiserver: ApiServer) -> AsyncIterator[ApiServer]:
    tls_apiserver.openapi = OpenAPI(
        Registry(RESOURCES), lambda res: HR_SCHEMA if res.kind == "HelmRelease" else None
    )
    yield tls_apiserver


@pytest.mark.parametrize(
    ("field", "type_", "words"),
    [
        ("secret.data", "<map[string]string>", "Data contains the secret data."),
        ("lease.spec.holderIdentity", "<string>", "holderIdentity contains the identity"),
        ("deployment.spec.template", "<PodTemplateSpec>", "spec\t<PodSpec>"),
    ],
)
async def test_kubectl_explain_builtin(
    kubectl: Kubectl, field: str, type_: str, words: str
) -> None:
    out = (await kubectl("explain", field)).check().stdout
    assert f"FIELD: {field.rsplit('.', 1)[1]} {type_}" in out
    assert words in out


async def test_kubectl_explain_helmrelease_spec_from_the_crd_schema(
    hr_schema_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    out = (await kubectl("explain", "helmrelease.spec")).check().stdout
    assert "KIND:       HelmRelease" in out
    assert "HelmReleaseSpec defines the desired state" in out
    assert "interval\t<string>" in out
    assert "suspend\t<boolean>" in out


async def test_kubectl_apply_twice_validates_on_the_server_and_merges(
    tls_apiserver: ApiServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    cm, secret = tmp_path / "cm.yaml", tmp_path / "secret.yaml"
    cm.write_text(CONFIGMAP.format(colour="blue", extra=""))
    secret.write_text(SECRET.format(token="one"))
    for manifest in (cm, secret):
        (await kubectl("apply", "-f", str(manifest))).check()
    cm.write_text(CONFIGMAP.format(colour="green", extra="size: large"))
    secret.write_text(SECRET.format(token="two"))
    results = [await kubectl("apply", "-f", str(m), "-v=6") for m in (cm, secret)]
    for result in results:
        result.check()
        assert "error validating" not in result.stderr
        # The server validates (the OpenAPI v3 PATCH lists fieldValidation) and the patch
        # is a strategic merge patch computed from the v3 schemas.
        assert "fieldValidation=Strict" in result.stderr
        assert "openapi/v2" not in result.stderr
    assert results[0].stdout.strip() == "configmap/app configured"
    stored = tls_apiserver.store.get("configmaps", "default", "app")
    assert stored["data"] == {"colour": "green", "size": "large"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]


async def test_kubectl_create_with_validation_on(
    tls_apiserver: ApiServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(CONFIGMAP.format(colour="red", extra=""))
    result = (await kubectl("create", "-f", str(manifest), "-v=6")).check()
    assert result.stdout.strip() == "configmap/app created"
    assert "fieldValidation=Strict" in result.stderr
    assert tls_apiserver.store.get("configmaps", "default", "app")["data"] == {"colour": "red"}


LIST = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: listed
  {field}:
    a: "1"
"""


async def test_kubectl_validates_a_list_against_the_v2_document(
    tls_apiserver: ApiServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    # kubectl cannot ask the server to validate a v1 List, so it validates the items itself
    # against /openapi/v2, which it reads as protobuf only.
    manifest = tmp_path / "list.yaml"
    manifest.write_text(LIST.format(field="datax"))
    rejected = await kubectl("apply", "-f", str(manifest))
    assert rejected.returncode == 1
    assert (
        'ValidationError(ConfigMap): unknown field "datax" in io.k8s.api.core.v1.ConfigMap'
        in rejected.stderr
    )
    manifest.write_text(LIST.format(field="data"))
    (await kubectl("apply", "-f", str(manifest))).check()
    assert tls_apiserver.store.get("configmaps", "default", "listed")["data"] == {"a": "1"}


async def test_kubectl_explain_from_the_v2_document(kubectl: Kubectl) -> None:
    out = (
        await kubectl("explain", "deployment.spec.strategy", "--output=plaintext-openapiv2")
    ).check()
    assert "RESOURCE: strategy <Object>" in out.stdout
    assert "rollingUpdate\t<Object>" in out.stdout


CLUSTER_SCOPED = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list]
---
apiVersion: v1
kind: Namespace
metadata:
  name: team
"""


async def test_kubectl_create_cluster_scoped_objects_with_validation_on(
    tls_apiserver: ApiServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    manifest = tmp_path / "cluster.yaml"
    manifest.write_text(CLUSTER_SCOPED)
    result = (await kubectl("create", "-f", str(manifest))).check()
    assert result.stdout.split("\n")[:2] == [
        "clusterrole.rbac.authorization.k8s.io/reader created",
        "namespace/team created",
    ]
    rules = tls_apiserver.store.get("clusterroles.rbac.authorization.k8s.io", None, "reader")
    assert rules["rules"][0]["verbs"] == ["get", "list"]


async def test_kubectl_edit_saves_through_validation(
    tls_apiserver: ApiServer, kubectl: Kubectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(CONFIGMAP.format(colour="blue", extra=""))
    (await kubectl("apply", "-f", str(manifest))).check()
    monkeypatch.setenv("KUBE_EDITOR", "sed -i s/colour:.blue/colour:\\ green/")
    result = (await kubectl("edit", "configmap", "app")).check()
    assert result.stdout.strip() == "configmap/app edited"
    assert tls_apiserver.store.get("configmaps", "default", "app")["data"] == {"colour": "green"}
