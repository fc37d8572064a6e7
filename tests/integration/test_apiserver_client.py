"""The emulator through kubernetes_asyncio, the client fluxwatch uses: kubeconfig
loading, custom objects, Leases, Secrets, errors as ApiException, and watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.rest import ApiException

from fluxwatch.sim.apiserver import ApiServer

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
GROUP, VERSION, PLURAL = "helm.toolkit.fluxcd.io", "v2", "helmreleases"
HR = Callable[..., dict[str, Any]]


@pytest.fixture
async def api_client(kubeconfig: Path) -> AsyncIterator[client.ApiClient]:
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    async with client.ApiClient(configuration=cfg) as api:
        yield api


async def test_load_kube_config_reaches_the_emulator_with_its_token(
    apiserver: ApiServer, api_client: client.ApiClient, hr: HR
) -> None:
    apiserver.store.create(HR_KEY, hr("podinfo", "apps"))
    objects = client.CustomObjectsApi(api_client)
    listed = await objects.list_namespaced_custom_object(GROUP, VERSION, "apps", PLURAL)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["podinfo"]
    everywhere = await objects.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1)
    assert everywhere["metadata"]["resourceVersion"] == str(apiserver.store.resource_version)


async def test_custom_object_merge_patch_and_status_patch(
    apiserver: ApiServer, api_client: client.ApiClient, hr: HR
) -> None:
    apiserver.store.create(HR_KEY, hr("podinfo", "apps"))
    objects = client.CustomObjectsApi(api_client)
    patched = await objects.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        "apps",
        PLURAL,
        "podinfo",
        {"spec": {"suspend": True}},
        _content_type="application/merge-patch+json",
    )
    assert patched["spec"]["suspend"] is True
    assert patched["metadata"]["generation"] == 2
    status = await objects.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "apps",
        PLURAL,
        "podinfo",
        {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "InstallSucceeded",
                        "message": "Helm install succeeded",
                        "lastTransitionTime": "2026-11-27T00:00:00Z",
                    }
                ]
            }
        },
        _content_type="application/merge-patch+json",
    )
    assert status["status"]["conditions"][0]["status"] == "True"
    assert status["metadata"]["generation"] == 2


async def test_a_dict_patch_without_content_type_is_refused_as_on_a_real_cluster(
    apiserver: ApiServer, api_client: client.ApiClient, hr: HR
) -> None:
    """kubernetes_asyncio picks json-patch for custom objects by default; a dict body is
    then a 400 from kube-apiserver, so callers must pass a merge-patch content type."""
    apiserver.store.create(HR_KEY, hr("podinfo", "apps"))
    objects = client.CustomObjectsApi(api_client)
    with pytest.raises(ApiException) as info:
        await objects.patch_namespaced_custom_object(
            GROUP, VERSION, "apps", PLURAL, "podinfo", {"spec": {"suspend": True}}
        )
    assert info.value.status == 400


async def test_errors_surface_as_api_exceptions_with_status_codes(
    apiserver: ApiServer, api_client: client.ApiClient, hr: HR
) -> None:
    objects = client.CustomObjectsApi(api_client)
    with pytest.raises(ApiException) as info:
        await objects.get_namespaced_custom_object(GROUP, VERSION, "apps", PLURAL, "nope")
    assert info.value.status == 404
    await objects.create_namespaced_custom_object(
        GROUP, VERSION, "apps", PLURAL, hr("podinfo", "apps")
    )
    with pytest.raises(ApiException) as info:
        await objects.create_namespaced_custom_object(
            GROUP, VERSION, "apps", PLURAL, hr("podinfo", "apps")
        )
    assert info.value.status == 409
    assert '"reason":"AlreadyExists"' in info.value.body.replace(" ", "")


async def test_leases_replace_with_a_stale_version_is_409(
    api_client: client.ApiClient,
) -> None:
    leases = client.CoordinationV1Api(api_client)
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name="helm-controller-leader-election"),
        spec=client.V1LeaseSpec(holder_identity="helm-controller-abc_1", lease_duration_seconds=35),
    )
    created = await leases.create_namespaced_lease("flux-system", body)
    assert created.spec.holder_identity == "helm-controller-abc_1"
    created.spec.holder_identity = "helm-controller-def_2"
    replaced = await leases.replace_namespaced_lease(
        "helm-controller-leader-election", "flux-system", created
    )
    assert replaced.metadata.resource_version != created.metadata.resource_version
    with pytest.raises(ApiException) as info:
        await leases.replace_namespaced_lease(
            "helm-controller-leader-election", "flux-system", created
        )
    assert info.value.status == 409


async def test_secrets_are_listed_by_label_selector(
    apiserver: ApiServer, api_client: client.ApiClient
) -> None:
    for version in (9, 10):
        apiserver.store.create(
            "secrets",
            {
                "metadata": {
                    "name": f"sh.helm.release.v1.podinfo.v{version}",
                    "namespace": "apps",
                    "labels": {
                        "owner": "helm",
                        "name": "podinfo",
                        "version": str(version),
                        "status": "deployed",
                    },
                },
                "type": "helm.sh/release.v1",
            },
        )
    core = client.CoreV1Api(api_client)
    listed = await core.list_namespaced_secret("apps", label_selector="owner=helm,name=podinfo")
    assert sorted(s.metadata.labels["version"] for s in listed.items) == ["10", "9"]
    assert listed.items[0].type == "helm.sh/release.v1"


async def test_watch_stream_delivers_events_from_a_list_version(
    apiserver: ApiServer, api_client: client.ApiClient, hr: HR
) -> None:
    apiserver.store.create(HR_KEY, hr("podinfo", "apps"))
    objects = client.CustomObjectsApi(api_client)
    listed = await objects.list_namespaced_custom_object(GROUP, VERSION, "apps", PLURAL)
    apiserver.store.patch(HR_KEY, "apps", "podinfo", {"spec": {"suspend": True}})
    seen = []
    async with watch.Watch() as w:
        stream = w.stream(
            objects.list_namespaced_custom_object,
            GROUP,
            VERSION,
            "apps",
            PLURAL,
            resource_version=listed["metadata"]["resourceVersion"],
            timeout_seconds=1,
        )
        async for event in stream:
            seen.append((event["type"], event["object"]["spec"].get("suspend")))
            break
    assert seen == [("MODIFIED", True)]


async def test_the_watch_helper_reports_410_as_an_exception(
    apiserver: ApiServer, api_client: client.ApiClient, hr: HR
) -> None:
    rv = apiserver.store.create(HR_KEY, hr("podinfo", "apps"))["metadata"]["resourceVersion"]
    apiserver.store.patch(HR_KEY, "apps", "podinfo", {"spec": {"suspend": True}})
    apiserver.faults.compact()
    objects = client.CustomObjectsApi(api_client)
    with pytest.raises(ApiException) as info:
        async with watch.Watch() as w:
            async for _ in w.stream(
                objects.list_namespaced_custom_object,
                GROUP,
                VERSION,
                "apps",
                PLURAL,
                resource_version=rv,
                timeout_seconds=1,
            ):
                await asyncio.sleep(0)
    assert info.value.status == 410


async def test_a_tls_server_is_verified_with_the_kubeconfig_certificate(
    tls_apiserver: ApiServer, tmp_path: Path, hr: HR
) -> None:
    tls_apiserver.store.create(HR_KEY, hr("podinfo", "apps"))
    path = tls_apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    cfg = client.Configuration()
    await config.load_kube_config(config_file=str(path), client_configuration=cfg)
    assert cfg.host.startswith("https://127.0.0.1:")
    async with client.ApiClient(configuration=cfg) as api:
        obj = await client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, "apps", PLURAL, "podinfo"
        )
    assert obj["metadata"]["name"] == "podinfo"
