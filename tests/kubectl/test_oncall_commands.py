"""The commands an on-call engineer types while a HelmRelease hangs, run with the
machine's kubectl (validation on) against the embedded cluster, each asserting what a
real cluster answers: kubectl's own texts and exit codes (``condition met``, ``timed
out waiting``, ``--overwrite is false``, diff's 0/1/2), and the server's answers
(Tables built from the CRD's printer columns, the generic 422 of a failed JSON patch
test, the refusal of a strategic merge patch, dry runs that store nothing, the
conflict of a stale replace, the CEL error an edit reopens with).

One cluster serves the module; each test works in a namespace of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_first_commands import CHART, HR_KEY, get_json, helmrelease, ok

from conftest import Cluster
from fluxwatch.sim.kubectl import Kubectl

pytestmark = pytest.mark.asyncio(loop_scope="module")

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
HR = "helmrelease.helm.toolkit.fluxcd.io/podinfo"
HR_QUOTED = 'helmrelease.helm.toolkit.fluxcd.io "podinfo"'  # as delete names it


async def release(cluster: Cluster, ns: str, spec: str = "  interval: 10m\n" + CHART) -> str:
    """A namespace ``ns`` with HelmRelease podinfo in it; returns the manifest's name."""
    await ok(cluster.kubectl, "create", "namespace", ns)
    name = cluster.manifest(f"{ns}.yaml", helmrelease(ns, spec))
    await ok(cluster.kubectl, "apply", "-f", name)
    return name


def ready(status: str, message: str, reason: str = "Progressing") -> str:
    """A merge patch of the status subresource that sets the Ready condition."""
    condition = {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-27T00:00:00Z",
    }
    return json.dumps({"status": {"conditions": [condition]}})


def stored(cluster: Cluster, ns: str) -> dict[str, Any]:
    return cluster.api.store.get(HR_KEY, ns, "podinfo")


def editor(cluster: Cluster, name: str, sed: str) -> dict[str, str]:
    """An environment whose KUBE_EDITOR is a script that keeps a copy of each file it
    is given (``<name>.1``, ``<name>.2``, ...) and applies ``sed`` to it."""
    script = cluster.workdir / name
    script.write_text(
        "#!/bin/sh\n"
        f"n=$(ls {script}.* 2>/dev/null | wc -l)\n"
        f'cp "$1" "{script}.$((n + 1))"\n'
        f"sed -i '{sed}' \"$1\"\n"
    )
    script.chmod(0o755)
    return {"KUBE_EDITOR": str(script)}


# ---- kubectl wait -----------------------------------------------------------------------


async def test_wait_for_ready_returns_once_ready_is_true_for_the_current_generation(
    module_cluster: Cluster,
) -> None:
    """kubectl wait holds a condition met only when the status has observed the
    object's generation: Ready=True beside the CRD's default observedGeneration -1
    keeps it waiting, as on a real cluster until helm-controller records the
    generation it reconciled."""
    k = module_cluster.kubectl
    await release(module_cluster, "wait-ready")
    args = ("wait", "--for=condition=Ready", "hr/podinfo", "-n", "wait-ready", "--timeout=20s")
    waiting = asyncio.ensure_future(k(*args))
    status = ("patch", "hr", "podinfo", "-n", "wait-ready", "--subresource=status", "--type=merge")
    await asyncio.sleep(0.5)
    assert not waiting.done(), "no Ready condition yet"
    await ok(k, *status, "-p", ready("Unknown", "Reconciliation in progress"))
    await asyncio.sleep(0.5)
    assert not waiting.done(), "Ready is Unknown"
    ready_true = ready("True", "Helm install succeeded", "InstallSucceeded")
    assert await ok(k, *status, "-p", ready_true) == f"{HR} patched\n"
    await asyncio.sleep(0.5)
    assert not waiting.done(), "status.observedGeneration is still -1"
    assert stored(module_cluster, "wait-ready")["status"]["observedGeneration"] == -1
    await ok(k, *status, "-p", '{"status":{"observedGeneration":1}}')
    result = await asyncio.wait_for(waiting, 20)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{HR} condition met\n", "")
    # The status subresource wrote the status only: the spec's generation is unchanged.
    assert stored(module_cluster, "wait-ready")["metadata"]["generation"] == 1


async def test_wait_for_ready_times_out_with_kubectls_message_and_exit_code_1(
    module_cluster: Cluster,
) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "wait-stuck")
    await ok(k, "patch", "hr", "podinfo", "-n", "wait-stuck", "--subresource=status",
             "--type=merge", "-p", ready("Unknown", "Running 'install' action"))  # fmt: skip
    result = await k("wait", "--for=condition=Ready", "hr/podinfo", "-n", "wait-stuck",
                     "--timeout=1s")  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == "error: timed out waiting for the condition on helmreleases/podinfo\n"


async def test_wait_for_delete_returns_once_the_finalizer_is_released(
    module_cluster: Cluster,
) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "wait-delete")
    await ok(k, "patch", "hr", "podinfo", "-n", "wait-delete", "--type=merge",
             "-p", '{"metadata":{"finalizers":["finalizers.fluxcd.io"]}}')  # fmt: skip
    deleted = await ok(k, "delete", "hr", "podinfo", "-n", "wait-delete", "--wait=false")
    assert deleted == f"{HR_QUOTED} deleted\n"
    waiting = asyncio.ensure_future(
        k("wait", "--for=delete", "hr/podinfo", "-n", "wait-delete", "--timeout=20s")
    )
    await asyncio.sleep(0.5)
    assert not waiting.done(), "the finalizer holds the release"
    assert stored(module_cluster, "wait-delete")["metadata"]["deletionTimestamp"]
    await ok(k, "patch", "hr", "podinfo", "-n", "wait-delete", "--type=json",
             "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')  # fmt: skip
    result = await asyncio.wait_for(waiting, 20)
    assert (result.returncode, result.stdout) == (0, f"{HR} condition met\n")


# ---- annotate, label, patch -------------------------------------------------------------


async def test_annotate_requested_at_needs_overwrite_for_an_existing_key(
    module_cluster: Cluster,
) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "annotate")
    key = "reconcile.fluxcd.io/requestedAt"
    args = ("annotate", "hr", "podinfo", "-n", "annotate")
    assert await ok(k, *args, f"{key}=2026-11-28T02:00:00Z") == f"{HR} annotated\n"
    again = await k(*args, f"{key}=2026-11-28T02:05:00Z")
    assert again.returncode == 1
    assert again.stderr == (
        "error: --overwrite is false but found the following declared annotation(s): "
        f"'{key}' already has a value (2026-11-28T02:00:00Z)\n"
    )
    assert await ok(k, *args, f"{key}=2026-11-28T02:05:00Z", "--overwrite") == (f"{HR} annotated\n")
    hr = stored(module_cluster, "annotate")
    assert hr["metadata"]["annotations"][key] == "2026-11-28T02:05:00Z"
    # An annotation is metadata: the spec's generation stays.
    assert hr["metadata"]["generation"] == 1


async def test_label_needs_overwrite_for_an_existing_key(module_cluster: Cluster) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "label")
    args = ("label", "hr", "podinfo", "-n", "label")
    assert await ok(k, *args, "team=a") == f"{HR} labeled\n"
    again = await k(*args, "team=b")
    assert (again.returncode, again.stderr) == (
        1,
        "error: 'team' already has a value (a), and --overwrite is false\n",
    )
    assert await ok(k, *args, "team=b", "--overwrite") == f"{HR} labeled\n"
    listed = await ok(k, "get", "hr", "-n", "label", "-l", "team=b", "-o", "name")
    assert listed == f"{HR}\n"


async def test_patch_merge_and_json_change_the_spec_and_bump_the_generation(
    module_cluster: Cluster,
) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "patch")
    args = ("patch", "hr", "podinfo", "-n", "patch")
    assert await ok(k, *args, "--type=merge", "-p", '{"spec":{"suspend":true}}') == (
        f"{HR} patched\n"
    )
    ops = [
        {"op": "test", "path": "/spec/suspend", "value": True},
        {"op": "replace", "path": "/spec/interval", "value": "5m"},
    ]
    assert await ok(k, *args, "--type=json", "-p", json.dumps(ops)) == f"{HR} patched\n"
    hr = stored(module_cluster, "patch")
    assert (hr["spec"]["suspend"], hr["spec"]["interval"]) == (True, "5m")
    assert hr["metadata"]["generation"] == 3
    unchanged = await ok(k, *args, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    assert unchanged == f"{HR} patched (no change)\n"


async def test_patch_json_whose_test_op_fails_is_the_generic_invalid_and_changes_nothing(
    module_cluster: Cluster,
) -> None:
    """The patch handler answers a failed ``test`` with the generic 422 and empty
    details, so kubectl cannot say which operation failed."""
    k = module_cluster.kubectl
    await release(module_cluster, "patch-test")
    before = stored(module_cluster, "patch-test")
    ops = [
        {"op": "replace", "path": "/spec/suspend", "value": True},
        {"op": "test", "path": "/spec/interval", "value": "5m"},
    ]
    result = await k("patch", "hr", "podinfo", "-n", "patch-test", "--type=json",
                     "-p", json.dumps(ops))  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        "The request is invalid: the server rejected our request due to an error in our request\n"
    )
    assert stored(module_cluster, "patch-test") == before


async def test_patch_strategic_of_a_helmrelease_is_refused_with_the_accepted_types(
    module_cluster: Cluster,
) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "patch-smp")
    result = await k("patch", "hr", "podinfo", "-n", "patch-smp", "--type=strategic",
                     "-p", '{"spec":{"suspend":true}}')  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        "error: application/strategic-merge-patch+json is not supported by "
        "helm.toolkit.fluxcd.io/v2, Kind=HelmRelease: the body of the request was in an "
        "unknown format - accepted media types include: application/json-patch+json, "
        "application/merge-patch+json, application/apply-patch+yaml\n"
    )
    assert "suspend" not in stored(module_cluster, "patch-smp")["spec"]


async def test_patch_of_the_status_subresource_ignores_the_spec(module_cluster: Cluster) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "patch-status")
    body = json.loads(ready("False", "install retries exhausted", "InstallFailed"))
    body["spec"] = {"suspend": True}
    await ok(k, "patch", "hr", "podinfo", "-n", "patch-status", "--subresource=status",
             "--type=merge", "-p", json.dumps(body))  # fmt: skip
    hr = stored(module_cluster, "patch-status")
    assert "suspend" not in hr["spec"]
    assert hr["status"]["conditions"][0]["reason"] == "InstallFailed"
    listed = (await ok(k, "get", "hr", "-n", "patch-status")).splitlines()
    assert listed[1].split(None, 3)[2:] == ["False", "install retries exhausted"]


# ---- get --------------------------------------------------------------------------------

WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color, priority: 1}
"""


async def test_get_asks_for_a_table_and_prints_the_crds_columns_wide_ones_with_o_wide(
    module_cluster: Cluster,
) -> None:
    """kubectl get asks the server for a Table; the columns are the CRD's
    additionalPrinterColumns, and a column of priority 1 only with ``-o wide``."""
    k = module_cluster.kubectl
    await ok(k, "create", "namespace", "widgets")
    await ok(k, "apply", "-f", module_cluster.manifest("widget-crd.yaml", WIDGET_CRD))
    await ok(k, "wait", "--for=condition=Established", "crd/widgets.example.com")
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: widgets}\n"
    widget += "spec: {size: 3, color: red}\n"
    await ok(k, "apply", "-f", module_cluster.manifest("widget.yaml", widget))
    listed = await k("get", "widgets", "-n", "widgets", "-v=7")
    assert listed.returncode == 0
    assert "Accept: application/json;as=Table;v=v1;g=meta.k8s.io" in listed.stderr
    assert [line.split() for line in listed.stdout.splitlines()] == [
        ["NAME", "SIZE"],
        ["w", "3"],
    ]
    wide = await ok(k, "get", "widgets", "-n", "widgets", "-o", "wide")
    assert [line.split() for line in wide.splitlines()] == [
        ["NAME", "SIZE", "COLOR"],
        ["w", "3", "red"],
    ]


async def test_get_hr_wide_custom_columns_and_jsonpath(module_cluster: Cluster) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "get")
    await ok(k, "patch", "hr", "podinfo", "-n", "get", "--subresource=status", "--type=merge",
             "-p", ready("Unknown", "Running 'upgrade' action with timeout of 5m0s"))  # fmt: skip
    wide = (await ok(k, "get", "hr", "-n", "get", "-o", "wide")).splitlines()
    assert wide[0].split() == ["NAME", "AGE", "READY", "STATUS"]
    assert wide[1].split(None, 3)[2:] == [
        "Unknown",
        "Running 'upgrade' action with timeout of 5m0s",
    ]
    columns = "NAME:.metadata.name,INTERVAL:.spec.interval,READY:.status.conditions[0].status"
    custom = await ok(k, "get", "hr", "-n", "get", "-o", f"custom-columns={columns}")
    assert [line.split() for line in custom.splitlines()] == [
        ["NAME", "INTERVAL", "READY"],
        ["podinfo", "10m", "Unknown"],
    ]
    path = '{.spec.chart.spec.version}/{.status.conditions[?(@.type=="Ready")].status}'
    assert await ok(k, "get", "hr", "podinfo", "-n", "get", "-o", f"jsonpath={path}") == (
        "6.5.4/Unknown"
    )


async def test_the_readmes_jsonpath_for_releases_left_suspended_prints_only_those(
    module_cluster: Cluster,
) -> None:
    """README "Upgrading and uninstalling": the command as written (its shell quoting
    undone) prints namespace/name of each release with fluxwatch's suspended-at."""
    k = module_cluster.kubectl
    await release(module_cluster, "left-suspended")
    other = helmrelease("left-suspended").replace("name: podinfo\n", "name: other\n", 1)
    await ok(k, "apply", "-f", module_cluster.manifest("other.yaml", other))
    await ok(k, "annotate", "hr", "podinfo", "-n", "left-suspended",
             "fluxwatch.io/suspended-at=2026-11-28T02:00:00Z")  # fmt: skip
    command = re.search(r"`(kubectl get hr -A -o jsonpath='[^`]*')`", README)
    assert command is not None
    argv = shlex.split(command.group(1))
    assert argv[:5] == ["kubectl", "get", "hr", "-A", "-o"]
    printed = await ok(k, *argv[1:])
    assert "left-suspended/podinfo\n" in printed.splitlines(keepends=True)
    assert "left-suspended/other\n" not in printed


async def test_get_show_managed_fields_yaml_lists_each_kubectl_manager(
    module_cluster: Cluster,
) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "managers")
    await ok(k, "annotate", "hr", "podinfo", "-n", "managers", "a=1")
    await ok(k, "label", "hr", "podinfo", "-n", "managers", "team=a")
    await ok(k, "patch", "hr", "podinfo", "-n", "managers", "--type=merge",
             "-p", '{"spec":{"timeout":"9m"}}')  # fmt: skip
    plain = yaml.safe_load(await ok(k, "get", "hr", "podinfo", "-n", "managers", "-o", "yaml"))
    assert "managedFields" not in plain["metadata"]
    shown = yaml.safe_load(
        await ok(k, "get", "hr", "podinfo", "-n", "managers", "--show-managed-fields", "-o", "yaml")
    )
    entries = {m["manager"]: m for m in shown["metadata"]["managedFields"]}
    assert set(entries) == {
        "kubectl-client-side-apply",
        "kubectl-annotate",
        "kubectl-label",
        "kubectl-patch",
    }
    assert all(m["operation"] == "Update" for m in entries.values())
    assert entries["kubectl-annotate"]["fieldsV1"] == {"f:metadata": {"f:annotations": {"f:a": {}}}}
    assert entries["kubectl-label"]["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:team": {}}}
    }
    assert entries["kubectl-patch"]["fieldsV1"] == {"f:spec": {"f:timeout": {}}}


def event(ns: str, name: str, kind: str, api_version: str, reason: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {
                "apiVersion": api_version,
                "kind": kind,
                "name": "podinfo",
                "namespace": ns,
            },
            "reason": reason,
            "message": f"{reason} happened",
            "type": "Normal",
            "source": {"component": "helm-controller"},
            "firstTimestamp": "2026-11-28T02:00:00Z",
            "lastTimestamp": "2026-11-28T02:00:00Z",
            "count": 1,
        }
    )


async def test_get_events_by_field_selector_and_kubectl_events_for_the_release(
    module_cluster: Cluster,
) -> None:
    """``kubectl events --for hr/NAME`` selects by the involved object's kind, apiVersion
    and name; ``get events --field-selector`` by what it is given."""
    k = module_cluster.kubectl
    await release(module_cluster, "events")
    docs = [
        event("events", "hr-v2", "HelmRelease", "helm.toolkit.fluxcd.io/v2", "InstallSucceeded"),
        event("events", "hr-old", "HelmRelease", "helm.toolkit.fluxcd.io/v2beta1", "Old"),
        event("events", "chart", "HelmChart", "source.toolkit.fluxcd.io/v1", "ChartPullSucceeded"),
    ]
    await ok(k, "create", "-f", module_cluster.manifest("events.yaml", "---\n".join(docs)))
    selected = await ok(
        k, "get", "events", "-n", "events",
        "--field-selector", "involvedObject.name=podinfo,involvedObject.kind=HelmRelease",
    )  # fmt: skip
    rows = [line.split(None, 4) for line in selected.splitlines()]
    assert selected.splitlines()[0].split() == [
        "LAST",
        "SEEN",
        "TYPE",
        "REASON",
        "OBJECT",
        "MESSAGE",
    ]
    assert sorted(r[2] for r in rows[1:]) == ["InstallSucceeded", "Old"]
    wide = (await ok(k, "get", "events", "-n", "events", "-o", "wide")).splitlines()
    assert wide[0].split() == [
        "LAST", "SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE",
        "FIRST", "SEEN", "COUNT", "NAME",
    ]  # fmt: skip
    assert "helm-controller" in wide[1].split()
    listed = await ok(k, "events", "-n", "events", "--for", "hr/podinfo")
    lines = listed.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert [line.split()[2:] for line in lines[1:]] == [
        ["InstallSucceeded", "HelmRelease/podinfo", "InstallSucceeded", "happened"]
    ]


# ---- dry runs and diff ------------------------------------------------------------------


async def test_apply_dry_run_server_prints_what_would_be_stored_and_stores_nothing(
    module_cluster: Cluster,
) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "dry-run")
    before = stored(module_cluster, "dry-run")
    changed = module_cluster.manifest(
        "dry-run-5m.yaml", helmrelease("dry-run", "  interval: 5m\n" + CHART)
    )
    printed = await ok(k, "apply", "--dry-run=server", "-f", changed)
    assert printed == f"{HR} configured (server dry run)\n"
    answer = yaml.safe_load(await ok(k, "apply", "--dry-run=server", "-f", changed, "-o", "yaml"))
    assert answer["spec"]["interval"] == "5m"
    assert answer["metadata"]["generation"] == 2
    assert answer["spec"]["chart"]["spec"]["reconcileStrategy"] == "ChartVersion"
    assert stored(module_cluster, "dry-run") == before
    new = module_cluster.manifest(
        "dry-run-new.yaml",
        helmrelease("dry-run").replace("name: podinfo\n", "name: fresh\n", 1),
    )
    created = yaml.safe_load(await ok(k, "apply", "--dry-run=server", "-f", new, "-o", "yaml"))
    assert created["metadata"]["generation"] == 1 and created["metadata"]["uid"]
    assert "resourceVersion" not in created["metadata"]
    gone = await k("get", "hr", "fresh", "-n", "dry-run")
    assert gone.stderr == (f'Error from server (NotFound): {HR_KEY} "fresh" not found\n')


async def test_diff_exits_0_without_a_change_1_with_one_and_2_on_an_invalid_object(
    module_cluster: Cluster,
) -> None:
    k = module_cluster.kubectl
    same = await release(module_cluster, "diff")
    unchanged = await k("diff", "-f", same)
    assert (unchanged.returncode, unchanged.stdout, unchanged.stderr) == (0, "", "")
    changed = await k("diff", "-f", module_cluster.manifest(
        "diff-5m.yaml", helmrelease("diff", "  interval: 5m\n" + CHART)
    ))  # fmt: skip
    assert changed.returncode == 1
    hunks = [line for line in changed.stdout.splitlines() if line[:1] in "+-" and line[1:2] == " "]
    assert hunks == ["-  generation: 1", "+  generation: 2", "-  interval: 10m", "+  interval: 5m"]
    spec = "  interval: 10m\n" + CHART + "  chartRef: {kind: OCIRepository, name: podinfo}\n"
    invalid = await k("diff", "-f", module_cluster.manifest(
        "diff-cel.yaml", helmrelease("diff", spec)
    ))  # fmt: skip
    assert invalid.returncode == 2
    assert invalid.stderr == (
        'The HelmRelease "podinfo" is invalid: spec: Invalid value: "object": either chart or '
        "chartRef must be set\n"
    )
    assert stored(module_cluster, "diff")["spec"]["interval"] == "10m"


async def test_delete_dry_run_server_keeps_the_release(module_cluster: Cluster) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "delete-dry")
    before = stored(module_cluster, "delete-dry")
    printed = await ok(k, "delete", "hr", "podinfo", "-n", "delete-dry", "--dry-run=server")
    assert printed == f"{HR_QUOTED} deleted (server dry run)\n"
    assert stored(module_cluster, "delete-dry") == before


# ---- edit and replace -------------------------------------------------------------------


async def run_with_env(k: Kubectl, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *k.argv(*args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=k.cwd,
        env={**os.environ, **env},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_edit_with_an_editor_that_changes_a_field_saves_it(module_cluster: Cluster) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "edit")
    env = editor(module_cluster, "edit-interval.sh", "s/^  interval: 10m$/  interval: 7m/")
    code, out, err = await run_with_env(k, env, "edit", "hr", "podinfo", "-n", "edit")
    assert (code, out, err) == (0, f"{HR} edited\n", "")
    hr = stored(module_cluster, "edit")
    assert (hr["spec"]["interval"], hr["metadata"]["generation"]) == ("7m", 2)
    assert "kubectl-edit" in {m["manager"] for m in hr["metadata"]["managedFields"]}


async def test_edit_that_breaks_a_cel_rule_reopens_with_the_error_then_cancels(
    module_cluster: Cluster,
) -> None:
    """On a 422 kubectl reopens the file with the server's causes as comments; an
    editor that changes nothing more cancels the edit (exit 1) and keeps a copy."""
    k = module_cluster.kubectl
    await release(module_cluster, "edit-cel")
    env = editor(
        module_cluster,
        "edit-cel.sh",
        r"s/^  chart:$/  chartRef: {kind: OCIRepository, name: podinfo}\n  chart:/",
    )
    code, out, err = await run_with_env(k, env, "edit", "hr", "podinfo", "-n", "edit-cel")
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0] == f'error: {HR_KEY} "podinfo" is invalid'
    assert re.fullmatch(r'A copy of your changes has been stored to "/tmp/kubectl-edit-\d+\.yaml"',
                        lines[1])  # fmt: skip
    assert lines[2:] == ["error: Edit cancelled, no valid changes were saved."]
    os.unlink(lines[1].split('"')[1])
    reopened = (module_cluster.workdir / "edit-cel.sh.2").read_text()
    assert (
        f'# {HR_KEY} "podinfo" was not valid:\n'
        '# * spec: Invalid value: "object": either chart or chartRef must be set\n'
    ) in reopened
    assert "chartRef" not in stored(module_cluster, "edit-cel")["spec"]


async def test_replace_with_a_stale_resource_version_is_the_real_conflict(
    module_cluster: Cluster,
) -> None:
    k = module_cluster.kubectl
    await release(module_cluster, "replace")
    current = await get_json(k, "hr", "podinfo", "-n", "replace")
    await ok(k, "annotate", "hr", "podinfo", "-n", "replace", "someone=else")
    current["spec"]["interval"] = "3m"
    name = module_cluster.manifest("replace.json", json.dumps(current))
    result = await k("replace", "-f", name)
    assert result.returncode == 1
    assert result.stderr == (
        f'Error from server (Conflict): error when replacing "replace.json": Operation cannot be '
        f'fulfilled on {HR_KEY} "podinfo": the object has been modified; please apply your '
        "changes to the latest version and try again\n"
    )
    assert stored(module_cluster, "replace")["spec"]["interval"] == "10m"
    current = await get_json(k, "hr", "podinfo", "-n", "replace")
    current["spec"]["interval"] = "3m"
    name = module_cluster.manifest("replace.json", json.dumps(current))
    assert await ok(k, "replace", "-f", name) == f"{HR} replaced\n"


# ---- the README's commands for approvals ------------------------------------------------

LEASE = """\
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: fluxwatch-leader-election
  namespace: fluxwatch-system
  annotations:
    fluxwatch.io/approve.inc-20260127t184512: '{"by":"alice@example.com"}'
spec:
  holderIdentity: fluxwatch-7d9f-abcde
"""


def readme_command(prefix: str) -> list[str]:
    """The README's command that starts with ``prefix``, split as a shell would."""
    found = re.search(rf"(?m)({re.escape(prefix)}[^`\n]*)", README)
    assert found is not None, prefix
    return shlex.split(found.group(1))


async def test_the_readmes_approval_commands_list_the_event_and_remove_the_annotation(
    module_cluster: Cluster,
) -> None:
    """README "Approving a refused incident": the IncidentApproved events by field
    selector, and ``kubectl annotate lease ... KEY-`` removing an approval (the last
    annotation: the field goes with it)."""
    k = module_cluster.kubectl
    await ok(k, "create", "namespace", "fluxwatch-system")
    await ok(k, "create", "-f", module_cluster.manifest("lease.yaml", LEASE))
    approved = event(
        "fluxwatch-system", "approved", "Lease", "coordination.k8s.io/v1", "IncidentApproved"
    ).replace("name: podinfo", "name: fluxwatch-leader-election")
    other = event(
        "fluxwatch-system", "changed", "Lease", "coordination.k8s.io/v1", "LeaderChanged"
    ).replace("name: podinfo", "name: fluxwatch-leader-election")
    await ok(
        k, "create", "-f", module_cluster.manifest("approved.yaml", approved + "---\n" + other)
    )
    listing = readme_command("kubectl get events -n fluxwatch-system --field-selector")
    rows = (await ok(k, *listing[1:])).splitlines()
    assert [row.split()[2:4] for row in rows[1:]] == [
        ["IncidentApproved", "lease/fluxwatch-leader-election"]
    ]
    command = re.search(r"`kubectl annotate\s+lease -n fluxwatch-system ([^`]*)`", README)
    assert command is not None
    argv = ["annotate", "lease", "-n", "fluxwatch-system", *shlex.split(command.group(1))]
    assert argv[-1] == "fluxwatch.io/approve.INCIDENT-"
    argv[-1] = "fluxwatch.io/approve.inc-20260127t184512-"
    out = await ok(k, *argv)
    assert out == "lease.coordination.k8s.io/fluxwatch-leader-election annotated\n"
    lease = module_cluster.api.store.get(
        "leases.coordination.k8s.io", "fluxwatch-system", "fluxwatch-leader-election"
    )
    assert "annotations" not in lease["metadata"]


async def test_get_wide_shows_a_controllers_image_and_whom_a_binding_names(
    module_cluster: Cluster,
) -> None:
    """Which helm-controller runs, and who may act: the built-in printers' priority-1
    columns, which the server always sends and kubectl shows with ``-o wide``."""
    k = module_cluster.kubectl
    await ok(k, "create", "namespace", "controllers")
    ns = ("-n", "controllers")
    image = "ghcr.io/fluxcd/helm-controller:v1.1.0"
    await ok(k, "create", "deployment", "helm-controller", f"--image={image}", *ns)
    narrow = (await ok(k, "get", "deployment", *ns)).splitlines()
    assert narrow[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    wide = (await ok(k, "get", "deployment", "-o", "wide", *ns)).splitlines()
    assert wide[0].split() == [
        "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR",
    ]  # fmt: skip
    assert wide[1].split()[5:] == ["helm-controller", image, "app=helm-controller"]
    await ok(k, "create", "rolebinding", "oncall", "--clusterrole=edit", "--user=alice",
             "--group=sre", "--serviceaccount=controllers:fluxwatch", *ns)  # fmt: skip
    bindings = (await ok(k, "get", "rolebinding", "-o", "wide", *ns)).splitlines()
    assert bindings[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    row = bindings[1].split()
    assert (row[:2], row[3:]) == (
        ["oncall", "ClusterRole/edit"],
        ["alice", "sre", "controllers/fluxwatch"],
    )
