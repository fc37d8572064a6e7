"""The machine's kubectl against the emulator: get, create, patch (merge, json,
status), delete and get -w, as a person would use them on a Flux cluster."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl
from tests.conftest import condition, helmrelease

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
READY_TRUE = condition("Ready", "True", "Helm install succeeded", "InstallSucceeded")

HR_YAML = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
  labels:
    team: web
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      sourceRef:
        kind: HelmRepository
        name: podinfo
"""


def seed(api: ApiServer) -> None:
    for name, ns, team, ready in [
        ("podinfo", "apps", "web", "Unknown"),
        ("redis", "apps", "data", "True"),
        ("ingress", "infra", "web", "True"),
    ]:
        api.store.create(
            HR_KEY,
            {
                **helmrelease(name, ns, labels={"team": team}),
                "status": {"conditions": [condition("Ready", ready, f"{name} is {ready}")]},
            },
        )


async def test_get_all_namespaces_prints_the_helmrelease_columns(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    seed(tls_apiserver)
    result = (await kubectl("get", "helmreleases", "--all-namespaces")).check()
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["NAMESPACE", "NAME", "AGE", "READY", "STATUS"]
    assert [(row[0], row[1], row[3]) for row in lines[1:]] == [
        ("apps", "podinfo", "Unknown"),
        ("apps", "redis", "True"),
        ("infra", "ingress", "True"),
    ]


async def test_get_short_name_as_json_returns_a_list(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    seed(tls_apiserver)
    result = (await kubectl("get", "hr", "-n", "apps", "-o", "json")).check()
    listed = json.loads(result.stdout)
    assert listed["kind"] == "List"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["podinfo", "redis"]
    assert listed["items"][0]["kind"] == "HelmRelease"


async def test_get_with_a_label_selector(tls_apiserver: ApiServer, kubectl: Kubectl) -> None:
    seed(tls_apiserver)
    result = (await kubectl("get", "hr", "-A", "-l", "team=web", "-o", "name")).check()
    assert result.stdout.split() == [
        "helmrelease.helm.toolkit.fluxcd.io/podinfo",
        "helmrelease.helm.toolkit.fluxcd.io/ingress",
    ]


async def test_create_from_a_file(
    tls_apiserver: ApiServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    manifest = tmp_path / "hr.yaml"
    manifest.write_text(HR_YAML)
    result = (await kubectl("create", "-f", str(manifest), "--validate=false")).check()
    assert result.stdout.strip() == "helmrelease.helm.toolkit.fluxcd.io/podinfo created"
    stored = tls_apiserver.store.get(HR_KEY, "apps", "podinfo")
    assert stored["metadata"]["labels"] == {"team": "web"}
    assert stored["spec"]["chart"]["spec"]["chart"] == "podinfo"


async def test_patch_merge_json_and_status(tls_apiserver: ApiServer, kubectl: Kubectl) -> None:
    seed(tls_apiserver)
    (
        await kubectl(
            "patch",
            "hr",
            "podinfo",
            "-n",
            "apps",
            "--type",
            "merge",
            "-p",
            '{"spec":{"suspend":true}}',
        )
    ).check()
    (
        await kubectl(
            "patch",
            "hr",
            "podinfo",
            "-n",
            "apps",
            "--type",
            "json",
            "-p",
            '[{"op":"add","path":"/metadata/annotations",'
            '"value":{"reconcile.fluxcd.io/requestedAt":"now"}}]',
        )
    ).check()
    (
        await kubectl(
            "patch",
            "hr",
            "podinfo",
            "-n",
            "apps",
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            json.dumps({"status": {"conditions": [READY_TRUE]}}),
        )
    ).check()
    stored = tls_apiserver.store.get(HR_KEY, "apps", "podinfo")
    assert stored["spec"]["suspend"] is True
    assert stored["metadata"]["annotations"] == {"reconcile.fluxcd.io/requestedAt": "now"}
    assert stored["status"]["conditions"] == [READY_TRUE]
    assert stored["metadata"]["generation"] == 2


async def test_patch_of_a_helmrelease_without_type_fails_like_on_a_real_cluster(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    """kubectl's default strategic merge patch is not supported for custom resources."""
    seed(tls_apiserver)
    result = await kubectl("patch", "hr", "podinfo", "-n", "apps", "-p", '{"spec":{}}')
    assert result.returncode != 0
    assert "application/strategic-merge-patch+json is not supported" in result.stderr


async def test_delete(tls_apiserver: ApiServer, kubectl: Kubectl) -> None:
    seed(tls_apiserver)
    result = (await kubectl("delete", "hr", "redis", "-n", "apps")).check()
    assert result.stdout.strip() == 'helmrelease.helm.toolkit.fluxcd.io "redis" deleted'
    assert tls_apiserver.store.count(HR_KEY, "apps") == 1


async def test_delete_waits_for_finalizers_through_a_watch(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    store = tls_apiserver.store
    store.create(
        HR_KEY,
        {"metadata": {"name": "held", "namespace": "apps", "finalizers": ["finalizers.fluxcd.io"]}},
    )
    task = asyncio.create_task(kubectl("delete", "hr", "held", "-n", "apps", "--timeout=10s"))
    for _ in range(100):
        if store.get(HR_KEY, "apps", "held")["metadata"].get("deletionTimestamp"):
            break
        await asyncio.sleep(0.02)
    store.patch(HR_KEY, "apps", "held", {"metadata": {"finalizers": None}})
    result = (await asyncio.wait_for(task, 15)).check()
    assert 'helmrelease.helm.toolkit.fluxcd.io "held" deleted' in result.stdout


async def test_get_watch_prints_a_line_for_a_change(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    seed(tls_apiserver)
    proc = await kubectl.start("get", "hr", "-n", "apps", "-w")
    assert proc.stdout is not None
    try:
        header = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert header.split() == [b"NAME", b"AGE", b"READY", b"STATUS"]
        for _ in range(2):
            await asyncio.wait_for(proc.stdout.readline(), 10)
        tls_apiserver.store.patch(
            HR_KEY,
            "apps",
            "podinfo",
            {"status": {"conditions": [condition("Ready", "False", "upgrade failed")]}},
            subresource="status",
        )
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line.split()[0] == b"podinfo"
        assert b"False" in line and b"upgrade failed" in line
    finally:
        proc.kill()
        await proc.wait()


async def test_kubectl_with_a_service_account_token_is_held_to_rbac(
    tls_apiserver: ApiServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    seed(tls_apiserver)
    config = tls_apiserver.write_kubeconfig(
        tmp_path / "sa-kubeconfig", token=tls_apiserver.token_for("system:serviceaccount:a:b")
    )
    restricted = Kubectl(kubectl.binary, config, kubectl.cache_dir)
    result = await restricted("get", "hr", "-n", "apps")
    assert result.returncode != 0
    assert (
        'User "system:serviceaccount:a:b" cannot list resource "helmreleases" in API group '
        '"helm.toolkit.fluxcd.io" in the namespace "apps"'
    ) in result.stderr
