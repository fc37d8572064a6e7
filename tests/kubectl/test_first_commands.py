"""The commands a platform engineer types first against a new cluster, run with the
machine's kubectl (its default client-side validation on: ``fieldValidation=Strict``)
against the embedded cluster, each asserting what a real cluster prints and stores.

The wordings asserted here are the real ones: kubectl's own (``namespace/x created``,
``yes``/``no``), and the server's Status messages, which kubectl prints after ``Error
from server (Reason):``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import yaml

from conftest import Cluster
from fluxwatch.sim.helmcontroller import HelmController
from fluxwatch.sim.kubectl import Kubectl

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "fluxwatch" / "sim" / "crds" / "helmrelease.yaml").read_text())

HELMRELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: {ns}
spec:
{spec}
"""
CHART = """\
  chart:
    spec:
      chart: podinfo
      version: 6.5.4
      sourceRef: {kind: HelmRepository, name: podinfo}
"""


def helmrelease(ns: str, spec: str = "  interval: 10m\n" + CHART) -> str:
    return HELMRELEASE.format(ns=ns, spec=spec.rstrip("\n"))


async def ok(kubectl: Kubectl, *args: str, stdin: str | None = None) -> str:
    return (await kubectl(*args, stdin=stdin)).check().stdout


async def get_json(kubectl: Kubectl, *what: str) -> dict[str, Any]:
    return json.loads(await ok(kubectl, "get", *what, "-o", "json"))  # type: ignore[no-any-return]


def schema_at(*path: str) -> dict[str, Any]:
    """The served version's openAPIV3Schema node at ``path`` (property names)."""
    node: dict[str, Any] = next(v for v in CRD["spec"]["versions"] if v["storage"])["schema"][
        "openAPIV3Schema"
    ]
    for name in path:
        node = node["properties"][name]
    return node


# ---- first objects --------------------------------------------------------------------


async def test_create_namespace_prints_created_and_the_namespace_is_active(
    cluster: Cluster,
) -> None:
    assert (
        await ok(cluster.kubectl, "create", "namespace", "team-a") == "namespace/team-a created\n"
    )
    listed = (await ok(cluster.kubectl, "get", "namespaces")).splitlines()
    assert listed[0].split() == ["NAME", "STATUS", "AGE"]
    rows = {line.split()[0]: line.split()[1] for line in listed[1:]}
    assert rows == dict.fromkeys(
        ("default", "kube-node-lease", "kube-public", "kube-system", "team-a"), "Active"
    )
    again = await cluster.kubectl("create", "namespace", "team-a")
    assert again.returncode == 1
    assert again.stderr == 'Error from server (AlreadyExists): namespaces "team-a" already exists\n'


async def test_create_secret_generic_from_literal_stores_base64_data_of_type_opaque(
    cluster: Cluster,
) -> None:
    out = await ok(
        cluster.kubectl,
        "create", "secret", "generic", "db", "--from-literal=user=app",
        "--from-literal=password=s3cr=t", "-n", "default",
    )  # fmt: skip
    assert out == "secret/db created\n"
    secret = await get_json(cluster.kubectl, "secret", "db")
    assert secret["type"] == "Opaque"
    assert secret["data"] == {
        "password": base64.b64encode(b"s3cr=t").decode(),
        "user": base64.b64encode(b"app").decode(),
    }
    listed = (await ok(cluster.kubectl, "get", "secret", "db")).splitlines()
    assert listed[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert listed[1].split()[:3] == ["db", "Opaque", "2"]


async def test_create_configmap_from_literal_stores_the_strings(cluster: Cluster) -> None:
    out = await ok(
        cluster.kubectl,
        "create", "configmap", "settings", "--from-literal=level=debug", "--from-literal=n=3",
    )  # fmt: skip
    assert out == "configmap/settings created\n"
    stored = cluster.api.store.get("configmaps", "default", "settings")
    assert stored["data"] == {"level": "debug", "n": "3"}
    assert "binaryData" not in stored


# ---- apply ----------------------------------------------------------------------------

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app
  namespace: default
data:
{data}
"""


async def test_apply_twice_drops_a_key_removed_from_the_file_and_keeps_another_clients(
    cluster: Cluster,
) -> None:
    """Client-side apply's three-way merge: the last-applied annotation says what the
    file owned, so a key gone from the file is deleted, and a key another client added
    (never in the file) stays."""
    k = cluster.kubectl
    name = cluster.manifest("app.yaml", CONFIGMAP.format(data='  a: "1"\n  b: "2"'))
    assert await ok(k, "apply", "-f", name) == "configmap/app created\n"
    patch = '{"data":{"added-by-hand":"yes"}}'
    assert await ok(k, "patch", "configmap", "app", "--type=merge", "-p", patch) == (
        "configmap/app patched\n"
    )
    cluster.manifest("app.yaml", CONFIGMAP.format(data='  a: "10"\n  c: "3"'))
    assert await ok(k, "apply", "-f", name) == "configmap/app configured\n"
    live = await get_json(k, "configmap", "app")
    assert live["data"] == {"a": "10", "c": "3", "added-by-hand": "yes"}
    last = json.loads(
        live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert last["data"] == {"a": "10", "c": "3"}
    assert await ok(k, "apply", "-f", name) == "configmap/app unchanged\n"


async def test_server_side_apply_conflict_names_the_first_manager_until_forced(
    cluster: Cluster,
) -> None:
    k = cluster.kubectl
    name = cluster.manifest("ssa.yaml", CONFIGMAP.format(data='  a: "1"'))
    assert await ok(k, "apply", "--server-side", "-f", name) == "configmap/app serverside-applied\n"
    cluster.manifest("ssa.yaml", CONFIGMAP.format(data='  a: "2"'))
    conflict = await k("apply", "--server-side", "--field-manager=platform", "-f", name)
    assert conflict.returncode == 1
    assert conflict.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "kubectl": .data.a\n'
        "Please review the fields above--they currently have other managers."
    )
    assert "--force-conflicts" in conflict.stderr
    assert cluster.api.store.get("configmaps", "default", "app")["data"] == {"a": "1"}

    forced = await ok(
        k, "apply", "--server-side", "--field-manager=platform", "--force-conflicts", "-f", name
    )
    assert forced == "configmap/app serverside-applied\n"
    live = await get_json(k, "configmap", "app", "--show-managed-fields")
    assert live["data"] == {"a": "2"}
    managers = [(m["manager"], m["operation"]) for m in live["metadata"]["managedFields"]]
    # The first manager lost its only field, so its entry is gone.
    assert managers == [("platform", "Apply")]


# ---- explain: the CRD's schema, read through the served OpenAPI ------------------------


async def test_explain_helmrelease_spec_prints_the_crd_schema(cluster: Cluster) -> None:
    out = await ok(cluster.kubectl, "explain", "helmrelease.spec")
    lines = out.splitlines()
    assert lines[:3] == [
        "GROUP:      helm.toolkit.fluxcd.io",
        "KIND:       HelmRelease",
        "VERSION:    v2",
    ]
    assert "FIELD: spec <Object>" in lines
    spec = schema_at("spec")
    assert f"    {spec['description']}" in lines
    assert "  interval\t<string> -required-" in lines
    assert f"    {spec['properties']['interval']['description']}" in lines
    assert "  chart\t<Object>" in lines and "  chartRef\t<Object>" in lines
    fields = [
        line.split("\t")[0].strip() for line in lines if line.startswith("  ") and "\t<" in line
    ]
    assert fields == sorted(spec["properties"])


async def test_explain_a_nested_field_prints_its_required_fields_and_enum(
    cluster: Cluster,
) -> None:
    out = await ok(cluster.kubectl, "explain", "helmrelease.spec.chart.spec.sourceRef")
    node = schema_at("spec", "chart", "spec", "sourceRef")
    assert "FIELD: sourceRef <Object>" in out
    assert f"    {node['description']}" in out.splitlines()
    assert (
        "  kind\t<string> -required-\n  enum: " + ", ".join(node["properties"]["kind"]["enum"])
        in out
    )
    assert "  name\t<string> -required-" in out
    assert "  namespace\t<string>\n" in out
    missing = await cluster.kubectl("explain", "helmrelease.spec.chart.spec.sourceRef.nope")
    assert missing.returncode == 1
    assert missing.stderr == ('error: field "nope" does not exist\n')


# ---- who am I, what may I do ----------------------------------------------------------

SA = "system:serviceaccount:team-a:deployer"


async def test_auth_can_i_says_yes_to_the_admin_and_no_to_a_service_account(
    cluster: Cluster,
) -> None:
    k = cluster.kubectl
    yes = await k("auth", "can-i", "delete", "helmreleases", "-n", "flux-system")
    assert (yes.returncode, yes.stdout) == (0, "yes\n")
    no = await k("auth", "can-i", "create", "deployments", "-n", "team-a", f"--as={SA}")
    assert (no.returncode, no.stdout) == (1, "no\n")
    # Every authenticated user may ask the server who it is.
    review = await k("auth", "can-i", "create", "selfsubjectreviews", f"--as={SA}")
    assert (review.returncode, review.stdout) == (0, "yes\n")


async def test_auth_can_i_list_shows_the_admin_everything_then_the_discovery_rules(
    cluster: Cluster,
) -> None:
    lines = (await ok(cluster.kubectl, "auth", "can-i", "--list")).splitlines()
    assert lines[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert lines[1].split() == ["*.*", "[]", "[]", "[*]"]
    assert lines[2].split() == ["[*]", "[]", "[*]"]
    rows = [line.split() for line in lines[3:]]
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows
    assert ["[/healthz]", "[]", "[get]"] in rows and ["[/version]", "[]", "[get]"] in rows


async def test_auth_whoami_prints_the_admin_and_an_impersonated_service_account(
    cluster: Cluster,
) -> None:
    admin = (await ok(cluster.kubectl, "auth", "whoami")).splitlines()
    assert [line.split(None, 1) for line in admin] == [
        ["ATTRIBUTE", "VALUE"],
        ["Username", "system:admin"],
        ["Groups", "[system:masters system:authenticated]"],
    ]
    impersonated = (await ok(cluster.kubectl, "auth", "whoami", f"--as={SA}")).splitlines()
    assert [line.split(None, 1) for line in impersonated] == [
        ["ATTRIBUTE", "VALUE"],
        ["Username", SA],
        ["Groups", "[system:serviceaccounts system:serviceaccounts:team-a system:authenticated]"],
    ]


async def test_a_service_account_token_is_denied_until_a_rolebinding_allows_it(
    cluster: Cluster,
) -> None:
    k = cluster.kubectl
    await ok(k, "create", "namespace", "team-a")
    assert await ok(k, "create", "serviceaccount", "deployer", "-n", "team-a") == (
        "serviceaccount/deployer created\n"
    )
    token = (await ok(k, "create", "token", "deployer", "-n", "team-a")).strip()
    assert token.count(".") == 2  # a JWT, as the TokenRequest API returns
    deployer = cluster.kubectl_with(token, "deployer")

    whoami = (await ok(deployer, "auth", "whoami")).splitlines()
    assert whoami[1].split() == ["Username", SA]
    denied = await deployer("get", "configmaps", "-n", "team-a")
    assert denied.returncode == 1
    assert denied.stderr == (
        f'Error from server (Forbidden): configmaps is forbidden: User "{SA}" cannot list '
        'resource "configmaps" in API group "" in the namespace "team-a"\n'
    )

    await ok(k, "create", "configmap", "settings", "-n", "team-a", "--from-literal=a=1")
    assert await ok(
        k, "create", "rolebinding", "deployer-view", "-n", "team-a", "--clusterrole=view",
        "--serviceaccount=team-a:deployer",
    ) == "rolebinding.rbac.authorization.k8s.io/deployer-view created\n"  # fmt: skip
    allowed = (await ok(deployer, "get", "configmaps", "-n", "team-a")).splitlines()
    assert allowed[0].split() == ["NAME", "DATA", "AGE"]
    assert allowed[1].split()[:2] == ["settings", "1"]
    # view reads, never writes, and never reads Secrets.
    write = await deployer("delete", "configmap", "settings", "-n", "team-a")
    assert write.returncode == 1 and 'cannot delete resource "configmaps"' in write.stderr
    secrets = await deployer("auth", "can-i", "list", "secrets", "-n", "team-a")
    assert secrets.stdout == "no\n"
    # Outside the bound namespace nothing changed.
    other = await deployer("get", "configmaps", "-n", "default")
    assert other.returncode == 1 and 'in the namespace "default"' in other.stderr


# ---- installing fluxwatch -------------------------------------------------------------


async def test_apply_k_config_default_installs_fluxwatch_next_to_flux(cluster: Cluster) -> None:
    """config/default's Role for the Flux Leases lives in flux-system, which a Flux
    install makes: before it exists that Role and its binding are refused (404), the rest
    is created; after it, a second apply creates the two and leaves the rest alone."""
    k = cluster.kubectl
    default = str(ROOT / "config" / "default")
    before = await k("apply", "-k", default)
    assert before.returncode == 1
    not_found = (
        f'Error from server (NotFound): error when creating "{default}": namespaces '
        '"flux-system" not found\n'
    )
    assert before.stderr == not_found * 2
    assert before.stdout.splitlines()[0] == "namespace/fluxwatch-system created"

    assert await ok(k, "create", "namespace", "flux-system") == "namespace/flux-system created\n"
    after = (await ok(k, "apply", "-k", default)).splitlines()
    config_map = next(line.split()[0] for line in after if line.startswith("configmap/"))
    assert config_map.startswith("configmap/fluxwatch-config-")
    assert after == [
        "namespace/fluxwatch-system unchanged",
        "resourcequota/critical-pods unchanged",
        "serviceaccount/fluxwatch unchanged",
        "role.rbac.authorization.k8s.io/fluxwatch-flux-leases created",
        "role.rbac.authorization.k8s.io/fluxwatch-leader-election unchanged",
        "clusterrole.rbac.authorization.k8s.io/fluxwatch unchanged",
        "rolebinding.rbac.authorization.k8s.io/fluxwatch-flux-leases created",
        "rolebinding.rbac.authorization.k8s.io/fluxwatch-leader-election unchanged",
        "clusterrolebinding.rbac.authorization.k8s.io/fluxwatch unchanged",
        f"{config_map} unchanged",
        "service/fluxwatch-metrics unchanged",
        "deployment.apps/fluxwatch unchanged",
        # A PDB's selector has patch strategy "replace", so kubectl's three-way diff is
        # never empty for it and a real cluster prints "configured" on every apply.
        "poddisruptionbudget.policy/fluxwatch configured",
    ]

    shown = await ok(
        k, "get", "deploy,sa,role,rolebinding,clusterrole,clusterrolebinding,svc,pdb,cm",
        "-n", "fluxwatch-system",
    )  # fmt: skip
    blocks = {b.splitlines()[1].split("/")[0]: b.splitlines() for b in shown.strip().split("\n\n")}
    assert blocks["deployment.apps"][0].split() == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
    ]
    assert blocks["deployment.apps"][1].split()[:4] == [
        "deployment.apps/fluxwatch",
        "0/2",
        "0",
        "0",
    ]
    assert blocks["serviceaccount"][0].split() == ["NAME", "SECRETS", "AGE"]
    assert blocks["serviceaccount"][1].split()[:2] == ["serviceaccount/fluxwatch", "0"]
    role = "role.rbac.authorization.k8s.io"
    assert blocks[role][0].split() == ["NAME", "CREATED", "AT"]
    assert [r.split()[0] for r in blocks[role][1:]] == [f"{role}/fluxwatch-leader-election"]
    binding = "rolebinding.rbac.authorization.k8s.io"
    assert blocks[binding][0].split() == ["NAME", "ROLE", "AGE"]
    assert blocks[binding][1].split()[:2] == [
        f"{binding}/fluxwatch-leader-election",
        "Role/fluxwatch-leader-election",
    ]
    cluster_roles = [r.split()[0] for r in blocks["clusterrole.rbac.authorization.k8s.io"][1:]]
    assert "clusterrole.rbac.authorization.k8s.io/fluxwatch" in cluster_roles
    cluster_bindings = [
        r.split()[:2] for r in blocks["clusterrolebinding.rbac.authorization.k8s.io"][1:]
    ]
    assert ["clusterrolebinding.rbac.authorization.k8s.io/fluxwatch", "ClusterRole/fluxwatch"] in (
        cluster_bindings
    )
    assert blocks["service"][0].split() == [
        "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE",
    ]  # fmt: skip
    assert blocks["service"][1].split()[1:5:3] == ["ClusterIP", "8080/TCP"]
    assert blocks["poddisruptionbudget.policy"][0].split() == [
        "NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE",
    ]  # fmt: skip
    assert blocks["poddisruptionbudget.policy"][1].split()[:4] == [
        "poddisruptionbudget.policy/fluxwatch", "1", "N/A", "0",
    ]  # fmt: skip
    assert blocks["configmap"][1].split()[1] == "1"
    # The Role for Flux's Leases went where config/default says: flux-system.
    assert cluster.api.store.get(
        "roles.rbac.authorization.k8s.io", "flux-system", "fluxwatch-flux-leases"
    )


# ---- deleting -------------------------------------------------------------------------


async def test_delete_namespace_waits_until_it_and_its_contents_are_gone(
    cluster: Cluster,
) -> None:
    k = cluster.kubectl
    store = cluster.api.store
    await ok(k, "create", "namespace", "team-a")
    await ok(k, "create", "configmap", "one", "-n", "team-a", "--from-literal=a=1")
    await ok(k, "create", "configmap", "two", "-n", "team-a", "--from-literal=b=2")
    await ok(k, "create", "secret", "generic", "creds", "-n", "team-a", "--from-literal=t=x")
    await ok(k, "apply", "-f", cluster.manifest("hr.yaml", helmrelease("team-a")))
    # A finalizer holds the HelmRelease, as helm-controller's does until it uninstalls.
    await ok(
        k, "patch", "hr", "podinfo", "-n", "team-a", "--type=merge",
        "-p", '{"metadata":{"finalizers":["finalizers.fluxcd.io"]}}',
    )  # fmt: skip

    deleting = asyncio.create_task(k("delete", "namespace", "team-a", timeout=20))
    for _ in range(200):
        ns = store.get("namespaces", None, "team-a")
        if ns["status"]["phase"] == "Terminating" and not store.list("configmaps", "team-a")[0]:
            break
        await asyncio.sleep(0.01)
    assert ns["status"]["phase"] == "Terminating"
    assert not deleting.done()  # kubectl waits, as the HelmRelease is still there
    assert (await k("get", "ns", "team-a")).stdout.split()[-2:-1] == ["Terminating"]
    refused = await k("create", "configmap", "late", "-n", "team-a", "--from-literal=a=1")
    assert refused.stderr == (
        'error: failed to create configmap: configmaps "late" is forbidden: unable to create '
        "new content in namespace team-a because it is being terminated\n"
    )

    # The controller finishes its uninstall and lets go.
    await ok(k, "patch", "hr", "podinfo", "-n", "team-a", "--type=json",
             "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')  # fmt: skip
    result = await asyncio.wait_for(deleting, 20)
    assert (result.returncode, result.stdout) == (0, 'namespace "team-a" deleted\n')
    gone = await k("get", "namespace", "team-a")
    assert gone.stderr == 'Error from server (NotFound): namespaces "team-a" not found\n'
    for kind in ("configmaps", "secrets", HR_KEY):
        assert store.list(kind, "team-a")[0] == [], kind


# ---- what helm-controller did ---------------------------------------------------------


async def test_describe_hr_shows_helm_controllers_events(cluster: Cluster) -> None:
    k = cluster.kubectl
    await ok(k, "create", "namespace", "flux-system")
    await ok(k, "create", "namespace", "apps")
    helm = HelmController(cluster.api.store, time_scale=0.001, install_duration=5.0)
    await helm.start()
    try:
        await asyncio.wait_for(helm.wait_leader(), 10)
        await ok(k, "apply", "-f", cluster.manifest("hr.yaml", helmrelease("apps")))
        waited = await k(
            "wait", "hr/podinfo", "-n", "apps", "--for=condition=Ready", "--timeout=20s",
            timeout=30,
        )  # fmt: skip
        assert waited.check().stdout == "helmrelease.helm.toolkit.fluxcd.io/podinfo condition met\n"
        described = await ok(k, "describe", "hr", "podinfo", "-n", "apps")
    finally:
        await helm.stop()

    head, events = described.split("\nEvents:\n", 1)
    assert "Name:         podinfo\nNamespace:    apps\n" in head
    assert "Kind:         HelmRelease\n" in head
    rows = [line.split(None, 4) for line in events.splitlines()]
    assert rows[0] == ["Type", "Reason", "Age", "From", "Message"]
    assert rows[1] == ["----", "------", "----", "----", "-------"]
    by_reason = {r[1]: r for r in rows[2:]}
    assert by_reason["HelmChartCreated"][0] == "Normal"
    assert by_reason["HelmChartCreated"][3] == "helm-controller"
    install = by_reason["InstallSucceeded"]
    assert (install[0], install[3]) == ("Normal", "helm-controller")
    assert install[4] == (
        "Helm install succeeded for release apps/podinfo.v1 with chart podinfo@6.5.4"
    )


async def test_get_hr_watch_prints_a_line_for_a_change(cluster: Cluster) -> None:
    k = cluster.kubectl
    await ok(k, "create", "namespace", "apps")
    await ok(k, "apply", "-f", cluster.manifest("hr.yaml", helmrelease("apps")))
    proc = await k.start("get", "hr", "-n", "apps", "-w")
    assert proc.stdout is not None
    try:
        header = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert header.split() == [b"NAME", b"AGE", b"READY", b"STATUS"]
        first = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert first.split()[0] == b"podinfo" and len(first.split()) == 2  # no status yet
        ready = {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "UpgradeFailed",
                        "message": "Helm upgrade failed: timed out",
                        "lastTransitionTime": "2026-11-27T00:00:00Z",
                    }
                ]
            }
        }
        await ok(
            k, "patch", "hr", "podinfo", "-n", "apps", "--subresource=status", "--type=merge",
            "-p", json.dumps(ready),
        )  # fmt: skip
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert line.split(None, 3)[0] == "podinfo"
        assert line.split(None, 3)[2:] == ["False", "Helm upgrade failed: timed out\n"]
    finally:
        proc.kill()
        await proc.wait()


# ---- what the server refuses ----------------------------------------------------------


async def test_apply_of_a_helmrelease_without_interval_fails_with_the_schema_errors(
    cluster: Cluster,
) -> None:
    name = cluster.manifest("hr.yaml", helmrelease("default", CHART))
    result = await cluster.kubectl("apply", "-f", name)
    assert result.returncode == 1
    # The schema error, then apiextensions' note that the CEL rules were skipped.
    assert result.stderr == (
        'The HelmRelease "podinfo" is invalid: \n'
        "* spec.interval: Required value\n"
        '* <nil>: Invalid value: "null": some validation rules were not checked because the '
        "object was invalid; correct the existing errors to complete validation\n"
    )
    assert cluster.api.store.list(HR_KEY, "default")[0] == []


async def test_apply_of_a_helmrelease_with_chart_and_chart_ref_breaks_its_cel_rule(
    cluster: Cluster,
) -> None:
    spec = "  interval: 10m\n" + CHART + "  chartRef: {kind: OCIRepository, name: podinfo}\n"
    result = await cluster.kubectl(
        "apply", "-f", cluster.manifest("hr.yaml", helmrelease("default", spec))
    )
    assert result.returncode == 1
    assert result.stderr == (
        'The HelmRelease "podinfo" is invalid: spec: Invalid value: "object": either chart or '
        "chartRef must be set\n"
    )


async def test_apply_with_an_unknown_field_fails_kubectls_strict_validation(
    cluster: Cluster,
) -> None:
    """kubectl validates on the server (``fieldValidation=Strict``): the create handler's
    400 names the kind and version the file claimed, then the strict decoding error."""
    spec = "  interval: 10m\n  foo: bar\n" + CHART
    result = await cluster.kubectl(
        "apply", "-f", cluster.manifest("hr.yaml", helmrelease("default", spec))
    )
    assert result.returncode == 1
    assert result.stderr == (
        'Error from server (BadRequest): error when creating "hr.yaml": HelmRelease in version '
        '"v2" cannot be handled as a HelmRelease: strict decoding error: unknown field "spec.foo"\n'
    )
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringdata: {a: b}\nfoo: 1\n"
    result = await cluster.kubectl("apply", "-f", cluster.manifest("secret.yaml", secret))
    assert result.stderr == (
        'Error from server (BadRequest): error when creating "secret.yaml": Secret in version '
        '"v1" cannot be handled as a Secret: strict decoding error: unknown field "foo", '
        'unknown field "stringdata"\n'
    )
    assert cluster.api.store.list("secrets", "default")[0] == []


async def test_apply_of_a_version_the_crd_does_not_serve_finds_no_kind(cluster: Cluster) -> None:
    """HelmRelease v2beta1 is not served (Flux v2.7 dropped it): discovery does not list
    it, so kubectl finds no mapping, as against a real cluster."""
    text = helmrelease("default", "  interval: 10m\n" + CHART).replace(
        "helm.toolkit.fluxcd.io/v2", "helm.toolkit.fluxcd.io/v2beta1"
    )
    result = await cluster.kubectl("apply", "-f", cluster.manifest("old.yaml", text))
    assert result.returncode == 1
    assert (
        'no matches for kind "HelmRelease" in version "helm.toolkit.fluxcd.io/v2beta1"'
        in result.stderr
    )
