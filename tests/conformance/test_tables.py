"""The Table a server answers ``kubectl get`` with (``Accept: application/json;as=Table;
v=v1;g=meta.k8s.io``): a custom resource's columns are its CRD version's
additionalPrinterColumns, read as apiextensions-apiserver's table convertor reads them
(the Name column first, a JSONPath per column, the first match typed by the column,
null when nothing matches).
"""

from __future__ import annotations

import re

from tests.conformance.conftest import Api
from tests.conformance.test_crds import CRDS, widget_crd
from tests.conftest import helmrelease

TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/default/helmreleases"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)


async def test_a_helmrelease_table_has_the_crds_printer_columns_and_null_for_no_status(
    api: Api,
) -> None:
    code, _ = await api.post(HRS, helmrelease("podinfo"))
    assert code == 201
    code, table = await api.get(f"{HRS}/podinfo", headers=TABLE)
    assert code == 200
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    ready = '.status.conditions[?(@.type=="Ready")]'
    assert table["columnDefinitions"] == [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": NAME_DESCRIPTION,
            "priority": 0,
        },
        {
            "name": "Age",
            "type": "date",
            "format": "",
            "description": "Custom resource definition column (in JSONPath format): "
            ".metadata.creationTimestamp",
            "priority": 0,
        },
        {
            "name": "Ready",
            "type": "string",
            "format": "",
            "description": f"Custom resource definition column (in JSONPath format): {ready}"
            ".status",
            "priority": 0,
        },
        {
            "name": "Status",
            "type": "string",
            "format": "",
            "description": f"Custom resource definition column (in JSONPath format): {ready}"
            ".message",
            "priority": 0,
        },
    ]
    # No status conditions yet: the Ready and Status columns find nothing (null).
    [row] = table["rows"]
    assert row["cells"][0] == "podinfo"
    assert row["cells"][1] in ("0s", "1s")
    assert row["cells"][2:] == [None, None]
    assert row["object"]["kind"] == "PartialObjectMetadata"


async def test_a_helmrelease_tables_ready_cells_come_from_the_ready_condition(api: Api) -> None:
    await api.post(HRS, helmrelease("podinfo"))
    conditions = [
        {
            "type": "Released",
            "status": "True",
            "reason": "InstallSucceeded",
            "message": "installed",
            "lastTransitionTime": "2026-01-27T18:45:00Z",
        },
        {
            "type": "Ready",
            "status": "Unknown",
            "reason": "Progressing",
            "message": "Running 'upgrade' action with timeout of 5m0s",
            "lastTransitionTime": "2026-01-27T18:45:00Z",
        },
    ]
    code, _ = await api.patch(f"{HRS}/podinfo/status", {"status": {"conditions": conditions}})
    assert code == 200
    code, table = await api.get(HRS, headers=TABLE)
    assert code == 200
    assert [row["cells"][2:] for row in table["rows"]] == [
        ["Unknown", "Running 'upgrade' action with timeout of 5m0s"]
    ]


async def test_a_crds_own_printer_columns_are_typed_and_keep_their_priority(api: Api) -> None:
    crd = widget_crd()
    crd["spec"]["versions"][1]["additionalPrinterColumns"] = [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1,
         "description": "what it looks like"},
        {"name": "Size Text", "type": "string", "jsonPath": ".spec.size"},
        {"name": "Wrong", "type": "boolean", "jsonPath": ".spec.color"},
    ]  # fmt: skip
    code, _ = await api.post(CRDS, crd)
    assert code == 201
    body = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 3, "color": "red"},
    }
    code, created = await api.post(WIDGETS, body)
    assert code == 201, created
    code, table = await api.get(WIDGETS, headers=TABLE)
    assert code == 200
    assert [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", "string", 0),
        ("Size", "integer", 0),
        ("Color", "string", 1),
        ("Size Text", "string", 0),
        ("Wrong", "boolean", 0),
    ]
    assert table["columnDefinitions"][2]["description"] == "what it looks like"
    # An integer cell is a number, the same value in a string column its text, and a
    # value of another type than the column's is null.
    assert table["rows"][0]["cells"] == ["w", 3, "red", "3", None]


async def test_a_crd_version_without_printer_columns_is_served_with_an_age(api: Api) -> None:
    code, _ = await api.post(CRDS, widget_crd())
    assert code == 201
    code, _ = await api.post(
        WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    )
    assert code == 201
    code, table = await api.get(WIDGETS, headers=TABLE)
    assert code == 200
    age = table["columnDefinitions"][1]
    assert (age["name"], age["type"]) == ("Age", "date")
    assert age["description"].startswith(
        "CreationTimestamp is a timestamp representing the server time when this object was "
        "created."
    )
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]


async def test_an_event_table_has_the_printers_wide_columns_at_priority_1(api: Api) -> None:
    """The server prints every column; kubectl shows the priority-1 ones with -o wide."""
    event = {
        "metadata": {"name": "podinfo.1"},
        "involvedObject": {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "name": "podinfo",
            "namespace": "default",
            "fieldPath": "spec.chart",
        },
        "reason": "InstallFailed",
        "message": "  install retries exhausted\n",
        "type": "Warning",
        "source": {"component": "helm-controller", "host": "node-1"},
        "firstTimestamp": "2020-01-01T00:00:00Z",
        "lastTimestamp": "2020-01-01T00:00:00Z",
        "count": 3,
    }
    code, created = await api.post("/api/v1/namespaces/default/events", event)
    assert code == 201, created
    code, table = await api.get("/api/v1/namespaces/default/events", headers=TABLE)
    assert code == 200
    assert [(c["name"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Last Seen", 0),
        ("Type", 0),
        ("Reason", 0),
        ("Object", 0),
        ("Subobject", 1),
        ("Source", 1),
        ("Message", 0),
        ("First Seen", 1),
        ("Count", 1),
        ("Name", 1),
    ]
    [row] = table["rows"]
    last, *rest = row["cells"]
    assert re.fullmatch(r"\d+y(\d+d)?", last) and row["cells"][7] == last  # years ago
    assert rest[:6] == [
        "Warning",
        "InstallFailed",
        "helmrelease/podinfo",
        "spec.chart",
        "helm-controller, node-1",
        "install retries exhausted",
    ]
    assert row["cells"][8:] == [3, "podinfo.1"]


async def test_a_new_api_event_prints_its_series_and_reporting_controller(api: Api) -> None:
    event = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "eventTime": "2020-01-01T00:00:00.000000Z",
        "series": {"count": 4, "lastObservedTime": "2020-01-01T00:00:00.000000Z"},
        "reportingController": "fluxwatch",
        "reportingInstance": "fluxwatch-7d9f",
        "action": "Recover",
        "reason": "RecoveryStarted",
        "regarding": {"kind": "HelmRelease", "name": "podinfo", "namespace": "default"},
        "note": "suspend toggled",
        "type": "Normal",
    }
    path = "/apis/events.k8s.io/v1/namespaces/default/events"
    code, created = await api.post(path, event)
    assert code == 201, created
    code, table = await api.get(path, headers=TABLE)
    assert code == 200
    [row] = table["rows"]
    assert row["cells"][1:7] == [
        "Normal",
        "RecoveryStarted",
        "helmrelease/podinfo",
        "",
        "fluxwatch, fluxwatch-7d9f",
        "suspend toggled",
    ]
    assert row["cells"][8:] == [4, "e"]
