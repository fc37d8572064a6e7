"""The machine's kubectl running client-side ``apply`` twice against the emulator: the
second run sends a strategic merge patch (lists merged by key, ``$setElementOrder``,
nulls for what the file no longer holds), and the object must end up as a real cluster
would hold it: changed fields changed, everything else, including what the server or
another client set, kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web, tier: front}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: app
        image: {image}
        env: [{env}]
        ports: [{{containerPort: 80, name: http}}]
      - name: sidecar
        image: busybox:1.36
        args: [sleep, "3600"]
        env: [{{name: MODE, value: watch}}]
        ports: [{{containerPort: 9090, name: metrics}}]
"""
KUSTOMIZATION = Path(__file__).resolve().parents[2] / "config" / "default"
ENV_V1 = '{name: A, value: "1"}, {name: B, value: "2"}'
ENV_V2 = '{name: A, value: "1"}, {name: B, value: "3"}, {name: C, value: "4"}'


async def apply(kubectl: Kubectl, manifest: str) -> str:
    return (await kubectl("apply", "-f", "-", stdin=manifest)).check().stdout.strip()


async def get(kubectl: Kubectl, *what: str) -> dict[str, Any]:
    result = (await kubectl("get", *what, "-o", "json")).check()
    return json.loads(result.stdout)  # type: ignore[no-any-return]


async def test_applying_a_changed_deployment_merges_its_containers_by_name(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    v1 = DEPLOYMENT.format(ns="apps", image="nginx:1.25", env=ENV_V1)
    v2 = DEPLOYMENT.format(ns="apps", image="nginx:1.27", env=ENV_V2)
    assert await apply(kubectl, v1) == "deployment.apps/web created"
    # Another client adds an env var to the sidecar: apply must leave it alone.
    extra = [{"name": "sidecar", "env": [{"name": "EXTRA", "value": "x"}]}]
    patch = json.dumps({"spec": {"template": {"spec": {"containers": extra}}}})
    (await kubectl("patch", "deployment", "web", "-n", "apps", "-p", patch)).check()
    assert await apply(kubectl, v2) == "deployment.apps/web configured"

    live = await get(kubectl, "deployment", "web", "-n", "apps")
    app, sidecar = live["spec"]["template"]["spec"]["containers"]
    assert app["image"] == "nginx:1.27"
    assert app["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert app["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert sidecar["image"] == "busybox:1.36"
    assert sidecar["args"] == ["sleep", "3600"]
    assert sidecar["env"] == [{"name": "EXTRA", "value": "x"}, {"name": "MODE", "value": "watch"}]
    assert live["metadata"]["generation"] == 3

    # Apart from the sidecar's extra variable, the spec is what creating v2 outright holds.
    await apply(kubectl, v2.replace("namespace: apps", "namespace: infra"))
    fresh = await get(kubectl, "deployment", "web", "-n", "infra")
    sidecar["env"] = [e for e in sidecar["env"] if e["name"] != "EXTRA"]
    assert live["spec"] == fresh["spec"]
    # Applying the same file again sends only the element order, which changes nothing.
    assert await apply(kubectl, v2) == "deployment.apps/web configured"
    again = await get(kubectl, "deployment", "web", "-n", "apps")
    assert again["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]


async def test_removing_a_label_from_the_file_removes_it_from_the_object(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    v1 = DEPLOYMENT.format(ns="apps", image="nginx:1.25", env=ENV_V1)
    await apply(kubectl, v1)
    (await kubectl("label", "deployment", "web", "-n", "apps", "owner=ops")).check()
    await apply(kubectl, v1.replace("labels: {app: web, tier: front}", "labels: {app: web}"))
    live = await get(kubectl, "deployment", "web", "-n", "apps")
    # tier was in the last-applied configuration, so apply deletes it; owner never was.
    assert live["metadata"]["labels"] == {"app": "web", "owner": "ops"}


SERVICE = """\
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: apps}}
spec:
  selector: {{app: web}}
  ports:
{ports}
"""
PORTS_V1 = """\
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}"""
PORTS_V2 = """\
  - {name: http, port: 80, targetPort: 8080}
  - {name: metrics, port: 9090}
  - {name: https, port: 443, targetPort: 9443}"""


async def test_applying_a_changed_service_merges_its_ports_and_keeps_the_rest(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    await apply(kubectl, SERVICE.format(ports=PORTS_V1))
    patch = '{"spec":{"sessionAffinity":"ClientIP"}}'
    (await kubectl("patch", "service", "web", "-n", "apps", "-p", patch)).check()
    assert await apply(kubectl, SERVICE.format(ports=PORTS_V2)) == "service/web configured"
    live = await get(kubectl, "service", "web", "-n", "apps")
    # What the server defaulted and what another client set are not the file's business.
    assert live["spec"]["type"] == "ClusterIP"
    assert live["spec"]["sessionAffinity"] == "ClientIP"
    assert live["spec"]["ports"] == [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090},
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 9443},
    ]


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: apps}}
data:
{data}
"""


async def test_applying_a_changed_configmap_changes_only_its_own_keys(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    await apply(kubectl, CONFIGMAP.format(data="  a: '1'\n  b: '2'"))
    patch = '{"data":{"local":"kept"}}'
    (await kubectl("patch", "configmap", "settings", "-n", "apps", "-p", patch)).check()
    await apply(kubectl, CONFIGMAP.format(data="  a: '10'\n  c: '3'"))
    live = await get(kubectl, "configmap", "settings", "-n", "apps")
    assert live["data"] == {"a": "10", "c": "3", "local": "kept"}


async def test_kubectl_patch_directives_and_a_malformed_patch(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    await apply(kubectl, DEPLOYMENT.format(ns="apps", image="nginx:1.25", env=ENV_V1))
    delete = '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}'
    (await kubectl("patch", "deployment", "web", "-n", "apps", "-p", delete)).check()
    live = await get(kubectl, "deployment", "web", "-n", "apps")
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["app"]

    keyless = '{"spec":{"template":{"spec":{"containers":[{"image":"nginx:2"}]}}}}'
    result = await kubectl("patch", "deployment", "web", "-n", "apps", "-p", keyless)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error from server: map: map[image:nginx:2] does not contain declared merge key: name"
    )


async def test_applying_the_kustomization_twice_changes_nothing(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    kustomization = str(KUSTOMIZATION)
    (await kubectl("apply", "-k", kustomization)).check()
    first = await get(kubectl, "deployment", "fluxwatch", "-n", "fluxwatch-system")
    second = (await kubectl("apply", "-k", kustomization)).check().stdout.splitlines()
    # The PDB's selector has patch strategy "replace", so kubectl always sends it and
    # reports "configured" on a real cluster too; everything else is left as it was.
    changed = [line for line in second if not line.endswith(" unchanged")]
    assert changed == ["poddisruptionbudget.policy/fluxwatch configured"]
    again = await get(kubectl, "deployment", "fluxwatch", "-n", "fluxwatch-system")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
