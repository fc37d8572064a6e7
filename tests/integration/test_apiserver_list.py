"""LIST over HTTP: pagination as a consistent snapshot, label and field selectors,
the metadata-only and Table forms, discovery, and the speed benchmarks rely on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from fluxwatch.sim.apiserver import ApiServer
from tests.conftest import condition

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
HRS = "/apis/helm.toolkit.fluxcd.io/v2/helmreleases"
APPS_HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases"
HR = Callable[..., dict[str, Any]]
META_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


async def get(http: aiohttp.ClientSession, path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    headers = {"Accept": params.pop("accept")} if "accept" in params else {}
    async with http.get(path, params=params, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


def names(listed: dict[str, Any]) -> list[str]:
    return [i["metadata"]["name"] for i in listed["items"]]


def seed(apiserver: ApiServer, hr: HR, count: int, namespace: str = "apps") -> None:
    for i in range(count):
        apiserver.store.create(HR_KEY, hr(f"hr-{i:03d}", namespace, labels={"n": str(i % 3)}))


async def test_pagination_returns_every_object_once_in_key_order(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    seed(apiserver, hr, 12)
    seen: list[str] = []
    versions = set()
    token = None
    pages = 0
    while True:
        params = {"limit": "5", **({"continue": token} if token else {})}
        code, page = await get(http, APPS_HRS, **params)
        assert code == 200
        pages += 1
        seen += names(page)
        versions.add(page["metadata"]["resourceVersion"])
        token = page["metadata"].get("continue")
        if pages == 1:
            assert page["metadata"]["remainingItemCount"] == 7
        if not token:
            break
    assert pages == 3
    assert seen == [f"hr-{i:03d}" for i in range(12)]
    assert len(versions) == 1, "every page reports the version of the first"


async def test_a_continued_list_is_a_snapshot_of_the_first_page_version(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    """Writes between pages do not show: the rest is served as of the first page."""
    seed(apiserver, hr, 6)
    _, first = await get(http, APPS_HRS, limit="3")
    store = apiserver.store
    store.patch(HR_KEY, "apps", "hr-004", {"spec": {"suspend": True}})
    store.delete(HR_KEY, "apps", "hr-005")
    store.create(HR_KEY, hr("hr-0035", "apps"))
    _, second = await get(http, APPS_HRS, limit="3", **{"continue": first["metadata"]["continue"]})
    assert names(second) == ["hr-003", "hr-004", "hr-005"]
    assert "suspend" not in second["items"][1]["spec"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    _, fresh = await get(http, APPS_HRS)
    assert names(fresh) == ["hr-000", "hr-001", "hr-002", "hr-003", "hr-0035", "hr-004"]


async def test_a_continue_token_older_than_the_history_is_410_expired(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    seed(apiserver, hr, 4)
    _, first = await get(http, APPS_HRS, limit="2")
    apiserver.store.create(HR_KEY, hr("late", "apps"))
    apiserver.faults.compact()
    code, status = await get(
        http, APPS_HRS, limit="2", **{"continue": first["metadata"]["continue"]}
    )
    assert code == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith("The provided continue parameter is too old")


async def test_a_garbled_continue_token_is_400(http: aiohttp.ClientSession) -> None:
    code, status = await get(http, APPS_HRS, **{"continue": "bm9wZQ"})
    assert code == 400
    assert status["message"].startswith("invalid continue token: continue key is not valid")


async def test_list_exact_resource_version_shows_the_past(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    seed(apiserver, hr, 2)
    _, before = await get(http, APPS_HRS)
    apiserver.store.delete(HR_KEY, "apps", "hr-000")
    rv = before["metadata"]["resourceVersion"]
    _, past = await get(http, APPS_HRS, resourceVersion=rv, resourceVersionMatch="Exact")
    assert names(past) == ["hr-000", "hr-001"]
    assert past["metadata"]["resourceVersion"] == rv


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("team=a", ["a1", "a2"]),
        ("team==a", ["a1", "a2"]),
        ("team!=a", ["b1", "none"]),
        ("team in (a, b)", ["a1", "a2", "b1"]),
        ("team notin (a)", ["b1", "none"]),
        ("team", ["a1", "a2", "b1"]),
        ("!team", ["none"]),
        ("team=a,tier=web", ["a1"]),
        ("team in (a),!tier", ["a2"]),
        ("size>2", ["b1"]),
    ],
)
async def test_label_selectors_filter_lists(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR, selector: str, expected: list[str]
) -> None:
    store = apiserver.store
    store.create(HR_KEY, hr("a1", "apps", labels={"team": "a", "tier": "web", "size": "1"}))
    store.create(HR_KEY, hr("a2", "apps", labels={"team": "a"}))
    store.create(HR_KEY, hr("b1", "apps", labels={"team": "b", "size": "3"}))
    store.create(HR_KEY, hr("none", "apps"))
    code, listed = await get(http, APPS_HRS, labelSelector=selector)
    assert code == 200, listed
    assert names(listed) == expected


@pytest.mark.parametrize("selector", ["team=a b", "team in a", "=a", "team in (", "x/y/z=1"])
async def test_a_malformed_label_selector_is_400(
    http: aiohttp.ClientSession, selector: str
) -> None:
    code, status = await get(http, APPS_HRS, labelSelector=selector)
    assert code == 400
    assert status["reason"] == "BadRequest"


async def test_field_selectors_on_name_and_namespace(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    seed(apiserver, hr, 3, "apps")
    seed(apiserver, hr, 2, "infra")
    _, one = await get(http, HRS, fieldSelector="metadata.name=hr-001")
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in one["items"]] == [
        ("apps", "hr-001"),
        ("infra", "hr-001"),
    ]
    _, infra = await get(http, HRS, fieldSelector="metadata.namespace==infra")
    assert names(infra) == ["hr-000", "hr-001"]
    _, others = await get(
        http, HRS, fieldSelector="metadata.namespace!=infra,metadata.name!=hr-000"
    )
    assert names(others) == ["hr-001", "hr-002"]


async def test_an_unsupported_field_label_is_400(http: aiohttp.ClientSession) -> None:
    code, status = await get(http, HRS, fieldSelector="spec.suspend=true")
    assert code == 400
    assert status["message"] == "field label not supported: spec.suspend"


async def test_secrets_support_the_type_field_selector(
    apiserver: ApiServer, http: aiohttp.ClientSession
) -> None:
    apiserver.store.create(
        "secrets", {"metadata": {"name": "a", "namespace": "apps"}, "type": "helm.sh/release.v1"}
    )
    apiserver.store.create("secrets", {"metadata": {"name": "b", "namespace": "apps"}})
    _, listed = await get(http, "/api/v1/secrets", fieldSelector="type=helm.sh/release.v1")
    assert names(listed) == ["a"]


async def test_cluster_wide_list_spans_namespaces_and_namespaced_list_does_not(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    seed(apiserver, hr, 2, "apps")
    seed(apiserver, hr, 1, "infra")
    _, everywhere = await get(http, HRS)
    _, apps = await get(http, APPS_HRS)
    assert everywhere["kind"] == "HelmReleaseList"
    assert everywhere["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert len(everywhere["items"]) == 3
    assert {i["metadata"]["namespace"] for i in apps["items"]} == {"apps"}
    assert int(everywhere["metadata"]["resourceVersion"]) == apiserver.store.resource_version


async def test_metadata_only_list_returns_partial_object_metadata(
    apiserver: ApiServer, http: aiohttp.ClientSession
) -> None:
    """Helm storage Secrets are listed by labels without downloading their payloads."""
    apiserver.store.create(
        "secrets",
        {
            "metadata": {
                "name": "sh.helm.release.v1.podinfo.v1",
                "namespace": "apps",
                "labels": {"owner": "helm", "name": "podinfo", "version": "1"},
            },
            "data": {"release": "QUJD" * 1000},
        },
    )
    code, listed = await get(
        http, "/api/v1/namespaces/apps/secrets", accept=META_LIST, labelSelector="owner=helm"
    )
    assert code == 200
    assert listed["kind"] == "PartialObjectMetadataList"
    assert listed["apiVersion"] == "meta.k8s.io/v1"
    [item] = listed["items"]
    assert item["kind"] == "PartialObjectMetadata"
    assert item["apiVersion"] == "meta.k8s.io/v1"
    assert item["metadata"]["labels"]["version"] == "1"
    assert set(item) == {"kind", "apiVersion", "metadata"}


async def test_metadata_only_get_returns_one_partial_object_metadata(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    apiserver.store.create(HR_KEY, hr("podinfo", "apps"))
    code, obj = await get(
        http,
        f"{APPS_HRS}/podinfo",
        accept="application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json",
    )
    assert code == 200
    assert obj["kind"] == "PartialObjectMetadata"
    assert "spec" not in obj


async def test_an_accept_header_the_server_cannot_serve_is_406(
    http: aiohttp.ClientSession,
) -> None:
    code, status = await get(http, APPS_HRS, accept="application/vnd.kubernetes.protobuf")
    assert code == 406
    assert status["reason"] == "NotAcceptable"


async def test_table_list_has_the_helmrelease_printer_columns(
    apiserver: ApiServer, http: aiohttp.ClientSession, hr: HR
) -> None:
    body = hr("podinfo", "apps")
    body["status"] = {"conditions": [condition("Ready", "Unknown", "Running 'install' action")]}
    apiserver.store.create(HR_KEY, body)
    code, table = await get(
        http, APPS_HRS, accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    )
    assert code == 200
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age", "Ready", "Status"]
    [row] = table["rows"]
    assert row["cells"][0] == "podinfo"
    assert row["cells"][2:] == ["Unknown", "Running 'install' action"]
    assert row["object"]["kind"] == "PartialObjectMetadata"


async def test_discovery_describes_resources_subresources_and_groups(
    http: aiohttp.ClientSession,
) -> None:
    _, api = await get(http, "/api")
    assert api["versions"] == ["v1"]
    _, groups = await get(http, "/apis")
    assert "helm.toolkit.fluxcd.io" in [g["name"] for g in groups["groups"]]
    _, group = await get(http, "/apis/helm.toolkit.fluxcd.io")
    assert group["preferredVersion"]["groupVersion"] == "helm.toolkit.fluxcd.io/v2"
    _, resources = await get(http, "/apis/helm.toolkit.fluxcd.io/v2")
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["helmreleases"]["shortNames"] == ["hr"]
    assert by_name["helmreleases"]["namespaced"] is True
    assert "watch" in by_name["helmreleases"]["verbs"]
    assert by_name["helmreleases/status"]["verbs"] == ["get", "patch", "update"]
    _, core = await get(http, "/api/v1")
    assert {"secrets", "namespaces", "namespaces/status"} <= {r["name"] for r in core["resources"]}
    _, version = await get(http, "/version")
    assert version["major"] == "1"
    code, _ = await get(http, "/openapi/v3")
    assert code == 200
