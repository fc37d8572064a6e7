"""Server-side printing: the ``Table`` a real API server returns to ``kubectl get``.

Columns follow what the real server prints for each resource: a custom resource's
come from its CRD version's additionalPrinterColumns (as apiextensions-apiserver's
table convertor reads them: a JSONPath per column, the first match, typed by the
column), a built-in kind's from the printers the real server has for Leases,
Secrets, ...; an age is rendered on the server as kubectl users know it ("5m",
"3h12m").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from fluxwatch.sim.resources import ResourceType

Cell = Callable[[dict[str, Any], float], Any]


def human_duration(seconds: float) -> str:
    """An age the way kubectl shows it: precise when young, coarse when old."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if days < 365 * 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def _age_of(timestamp: Any, now: float) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "<unknown>"
    return human_duration(now - then)


def _age(obj: dict[str, Any], now: float) -> str:
    return _age_of(obj["metadata"].get("creationTimestamp"), now)


def _name(obj: dict[str, Any], now: float) -> str:
    return str(obj["metadata"].get("name", ""))


def _path(*parts: str, default: Any = "") -> Cell:
    def cell(obj: dict[str, Any], now: float) -> Any:
        cur: Any = obj
        for p in parts:
            cur = cur.get(p) if isinstance(cur, dict) else None
        return default if cur is None else cur

    return cell


def _data_count(obj: dict[str, Any], now: float) -> int:
    return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})


@dataclass(frozen=True)
class EventFields:
    """Where an Event's printed fields are in one API version: the server prints both
    versions from its one internal Event."""

    involved: str
    message: str
    source: str
    first: str
    last: str
    count: str
    reporting_controller: str


CORE_EVENT = EventFields(
    "involvedObject", "message", "source", "firstTimestamp", "lastTimestamp", "count",
    "reportingComponent",
)  # fmt: skip
EVENTS_K8S_IO = EventFields(
    "regarding", "note", "deprecatedSource", "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp", "deprecatedCount", "reportingController",
)  # fmt: skip


def _first_seen(f: EventFields) -> Cell:
    def cell(obj: dict[str, Any], now: float) -> str:
        return _age_of(obj.get(f.first) or obj.get("eventTime"), now)

    return cell


def _last_seen(f: EventFields) -> Cell:
    """The series' last observation, else lastTimestamp, else when it was first seen."""
    first = _first_seen(f)

    def cell(obj: dict[str, Any], now: float) -> str:
        series = obj.get("series")
        if isinstance(series, dict):
            return _age_of(series.get("lastObservedTime"), now)
        last = obj.get(f.last)
        return _age_of(last, now) if last else first(obj, now)

    return cell


def _event_count(f: EventFields) -> Cell:
    def cell(obj: dict[str, Any], now: float) -> int:
        series = obj.get("series")
        if isinstance(series, dict):
            return int(series.get("count") or 0)
        return int(obj.get(f.count) or 0) or 1  # a singleton of the new API has none

    return cell


def _involved(f: EventFields) -> Cell:
    def cell(obj: dict[str, Any], now: float) -> str:
        ref = obj.get(f.involved) or {}
        kind = str(ref.get("kind", "")).lower()
        return f"{kind}/{ref['name']}" if ref.get("name") else kind

    return cell


def _subobject(f: EventFields) -> Cell:
    def cell(obj: dict[str, Any], now: float) -> str:
        return str((obj.get(f.involved) or {}).get("fieldPath", ""))

    return cell


def _event_source(f: EventFields) -> Cell:
    """``component, host``: the reporting controller and instance stand in for what
    the legacy source leaves empty."""

    def cell(obj: dict[str, Any], now: float) -> str:
        source = obj.get(f.source) or {}
        component = source.get("component") or obj.get(f.reporting_controller) or ""
        instance = source.get("host") or obj.get("reportingInstance") or ""
        return f"{component}, {instance}" if instance else str(component)

    return cell


def _event_message(f: EventFields) -> Cell:
    def cell(obj: dict[str, Any], now: float) -> str:
        return str(obj.get(f.message) or "").strip()

    return cell


def _event_columns(f: EventFields) -> Sequence[Column]:
    """The event printer's columns; the server prints them all, kubectl shows those of
    priority 1 with ``-o wide``."""
    return (
        Column("Last Seen", "string", "", _last_seen(f)),
        Column("Type", "string", "", _path("type")),
        Column("Reason", "string", "", _path("reason")),
        Column("Object", "string", "", _involved(f)),
        Column("Subobject", "string", "", _subobject(f), 1),
        Column("Source", "string", "", _event_source(f), 1),
        Column("Message", "string", "", _event_message(f)),
        Column("First Seen", "string", "", _first_seen(f), 1),
        Column("Count", "string", "", _event_count(f), 1),
        Column("Name", "string", "name", _name, 1),
    )


def _deploy_ready(obj: dict[str, Any], now: float) -> str:
    status = obj.get("status") or {}
    return f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 1)}"


def _containers(field: str) -> Cell:
    """A pod template's containers' names or images, comma-separated."""

    def cell(obj: dict[str, Any], now: float) -> str:
        template = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        return ",".join(str(c.get(field, "")) for c in template.get("containers") or ())

    return cell


def _requirement(expression: dict[str, Any]) -> str:
    key, op = expression.get("key", ""), expression.get("operator")
    values = ",".join(sorted(expression.get("values") or ()))
    return {
        "In": f"{key} in ({values})",
        "NotIn": f"{key} notin ({values})",
        "Exists": str(key),
        "DoesNotExist": f"!{key}",
    }.get(str(op), "")


def _label_selector(obj: dict[str, Any], now: float) -> str:
    """A LabelSelector as labels.Selector prints it: requirements sorted by key."""
    selector = (obj.get("spec") or {}).get("selector") or {}
    terms = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    terms += [(e.get("key", ""), _requirement(e)) for e in selector.get("matchExpressions") or ()]
    return ",".join(text for _, text in sorted(terms, key=lambda t: t[0]))


def _service_selector(obj: dict[str, Any], now: float) -> str:
    selector = (obj.get("spec") or {}).get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"


def _subjects(kind: str) -> Cell:
    """A binding's subjects of one kind, a ServiceAccount as ``namespace/name``."""

    def cell(obj: dict[str, Any], now: float) -> str:
        named = [
            f"{s.get('namespace', '')}/{s.get('name', '')}"
            if kind == "ServiceAccount"
            else str(s.get("name", ""))
            for s in obj.get("subjects") or ()
            if s.get("kind") == kind
        ]
        return ", ".join(named)

    return cell


def _created_at(obj: dict[str, Any], now: float) -> str:
    """Roles print their creation time, not an age (RFC 3339, UTC)."""
    return str(obj["metadata"].get("creationTimestamp", ""))


def _role_ref(obj: dict[str, Any], now: float) -> str:
    ref = obj.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _count(field: str) -> Cell:
    def cell(obj: dict[str, Any], now: float) -> int:
        return len(obj.get(field) or ())

    return cell


def _or_none(*parts: str) -> Cell:
    """A string the printer shows as ``<none>`` when unset."""
    value = _path(*parts)

    def cell(obj: dict[str, Any], now: float) -> str:
        return str(value(obj, now) or "<none>")

    return cell


def _external_ips(obj: dict[str, Any], now: float) -> str:
    """What a Service is reachable at from outside: its externalIPs, a LoadBalancer's
    ingress (``<pending>`` until one is assigned), an ExternalName's name."""
    spec = obj.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    ips = [str(ip) for ip in spec.get("externalIPs") or ()]
    if kind == "LoadBalancer":
        ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
        ips = [str(i.get("ip") or i.get("hostname") or "") for i in ingress] + ips
        return ",".join(ips) if ips else "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName") or "<none>")
    return ",".join(ips) if ips else "<none>"


def _service_ports(obj: dict[str, Any], now: float) -> str:
    ports = []
    for p in (obj.get("spec") or {}).get("ports") or ():
        node = f":{p['nodePort']}" if p.get("nodePort") else ""
        ports.append(f"{p.get('port')}{node}/{p.get('protocol', 'TCP')}")
    return ",".join(ports) if ports else "<none>"


def _int_or_percent(*parts: str) -> Cell:
    """A PodDisruptionBudget bound: its value, or ``N/A`` when the other one is set."""
    value = _path(*parts, default=None)

    def cell(obj: dict[str, Any], now: float) -> str:
        found = value(obj, now)
        return "N/A" if found is None else str(found)

    return cell


class Column(NamedTuple):
    name: str
    type: str
    format: str
    cell: Cell
    priority: int = 0  # 1: shown by kubectl with -o wide only


# metav1.ObjectMeta's swagger docs, which the real server's printers and the CRD
# table convertor give as the descriptions of the Name and Age columns.
NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
CREATION_TIMESTAMP_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_NAME: Column = Column("Name", "string", "name", _name)
_AGE: Column = Column("Age", "string", "", _age)
_CREATED_AT: Column = Column("Created At", "string", "date", _created_at)

_BINDING: Sequence[Column] = (
    _NAME,
    Column("Role", "string", "", _role_ref),
    _AGE,
    Column("Users", "string", "", _subjects("User"), 1),
    Column("Groups", "string", "", _subjects("Group"), 1),
    Column("ServiceAccounts", "string", "", _subjects("ServiceAccount"), 1),
)

COLUMNS: dict[str, Sequence[Column]] = {
    "leases.coordination.k8s.io": (
        _NAME,
        Column("Holder", "string", "", _path("spec", "holderIdentity")),
        _AGE,
    ),
    "secrets": (
        _NAME,
        Column("Type", "string", "", _path("type")),
        Column("Data", "string", "", _data_count),
        _AGE,
    ),
    "configmaps": (_NAME, Column("Data", "string", "", _data_count), _AGE),
    "namespaces": (_NAME, Column("Status", "string", "", _path("status", "phase")), _AGE),
    "events": _event_columns(CORE_EVENT),
    "events.events.k8s.io": _event_columns(EVENTS_K8S_IO),
    "deployments.apps": (
        _NAME,
        Column("Ready", "string", "", _deploy_ready),
        Column("Up-to-date", "string", "", _path("status", "updatedReplicas", default=0)),
        Column("Available", "string", "", _path("status", "availableReplicas", default=0)),
        _AGE,
        Column("Containers", "string", "", _containers("name"), 1),
        Column("Images", "string", "", _containers("image"), 1),
        Column("Selector", "string", "", _label_selector, 1),
    ),
    "serviceaccounts": (_NAME, Column("Secrets", "string", "", _count("secrets")), _AGE),
    "services": (
        _NAME,
        Column("Type", "string", "", _path("spec", "type")),
        Column("Cluster-IP", "string", "", _or_none("spec", "clusterIP")),
        Column("External-IP", "string", "", _external_ips),
        Column("Port(s)", "string", "", _service_ports),
        _AGE,
        Column("Selector", "string", "", _service_selector, 1),
    ),
    "poddisruptionbudgets.policy": (
        _NAME,
        Column("Min Available", "string", "", _int_or_percent("spec", "minAvailable")),
        Column("Max Unavailable", "string", "", _int_or_percent("spec", "maxUnavailable")),
        Column(
            "Allowed Disruptions",
            "integer",
            "",
            _path("status", "disruptionsAllowed", default=0),
        ),
        _AGE,
    ),
    "roles.rbac.authorization.k8s.io": (_NAME, _CREATED_AT),
    "clusterroles.rbac.authorization.k8s.io": (_NAME, _CREATED_AT),
    "rolebindings.rbac.authorization.k8s.io": _BINDING,
    "clusterrolebindings.rbac.authorization.k8s.io": _BINDING,
}
DEFAULT_COLUMNS: Sequence[Column] = (_NAME, _AGE)


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


# ---- a custom resource's columns: its CRD's additionalPrinterColumns -----------------

# One step of the JSONPath subset printer columns use (client-go's jsonpath grammar):
# ``.name`` or ``['name']``, ``[N]``, ``[*]`` or ``.*``, and a filter
# ``[?(@.a.b=="v")]``, ``[?(@.a!="v")]`` or ``[?(@.a)]``.
_STEP = re.compile(
    r"""\.(?P<field>[^.\[\]]+)"""
    r"""|\[(?P<quote>['"])(?P<quoted>.*?)(?P=quote)\]"""
    r"""|\[(?P<index>-?\d+)\]"""
    r"""|\[(?P<all>\*)\]"""
    r"""|\[\?\(@(?P<test>(?:\.[^.=!)\s]+)+)\s*(?:(?P<op>==|!=)\s*(?P<value>[^)]*?))?\s*\)\]"""
)
Step = tuple[str, Any]


def _literal(text: str) -> Any:
    """A filter's right-hand side: a quoted string, a number, true/false."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_json_path(path: str) -> list[Step]:
    """The steps of a printer column's ``jsonPath``; ValueError names what is left over."""
    steps: list[Step] = []
    pos = 0
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise ValueError(f"unrecognized column definition {path!r}")
        if m["field"] is not None:
            steps.append(("all", None) if m["field"] == "*" else ("field", m["field"]))
        elif m["quote"] is not None:
            steps.append(("field", m["quoted"]))
        elif m["index"] is not None:
            steps.append(("index", int(m["index"])))
        elif m["all"] is not None:
            steps.append(("all", None))
        else:
            test = m["test"][1:].split(".")
            value = _literal(m["value"]) if m["op"] else None
            steps.append(("filter", (test, m["op"], value)))
        pos = m.end()
    return steps


def _walk(node: Any, names: list[str]) -> tuple[bool, Any]:
    for name in names:
        if not isinstance(node, dict) or name not in node:
            return False, None
        node = node[name]
    return True, node


def _matches(item: Any, test: tuple[list[str], str | None, Any]) -> bool:
    """A filter on one list item: the field is set (and equals, or differs from, the
    value)."""
    names, op, value = test
    present, got = _walk(item, names)
    if not present or got is None:
        return False
    if op == "==":
        return bool(got == value)
    if op == "!=":
        return bool(got != value)
    return True


def _step(node: Any, kind: str, arg: Any) -> list[Any]:
    if kind == "field":
        return [node[arg]] if isinstance(node, dict) and arg in node else []
    if kind == "index":
        return [node[arg]] if isinstance(node, list) and -len(node) <= arg < len(node) else []
    if kind == "all":
        return list(node.values()) if isinstance(node, dict) else list(node or ())
    return [item for item in node if _matches(item, arg)] if isinstance(node, list) else []


def find_results(obj: Any, steps: list[Step]) -> list[Any]:
    """Every value ``steps`` reach in ``obj``; a missing key reaches nothing (the
    convertor's jsonpath allows missing keys)."""
    current = [obj]
    for kind, arg in steps:
        current = [found for node in current for found in _step(node, kind, arg)]
    return current


def _go_text(value: Any) -> str:
    """A value as jsonpath prints it into a string column (Go's fmt.Fprint)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _typed(type_: str, value: Any, now: float) -> Any:
    """A non-string column's cell: the value if it has the column's type (a date
    becomes an age), else null, as the convertor's cellForJSONValue."""
    if type_ == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if type_ == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if type_ == "boolean" and isinstance(value, bool):
        return value
    if type_ == "date" and isinstance(value, str):
        if not value:
            return "<unknown>"
        try:
            then = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return "<invalid>"
        return human_duration(now - then)
    return None


def _printer_cell(type_: str, steps: list[Step]) -> Cell:
    def cell(obj: dict[str, Any], now: float) -> Any:
        found = find_results(obj, steps)
        if not found or found[0] is None:
            return None
        return _go_text(found[0]) if type_ == "string" else _typed(type_, found[0], now)

    return cell


# A CRD version without additionalPrinterColumns is served with one, the age.
_DEFAULT_PRINTER_COLUMNS = (
    {
        "name": "Age",
        "type": "date",
        "description": CREATION_TIMESTAMP_DESCRIPTION,
        "jsonPath": ".metadata.creationTimestamp",
    },
)


def _definition(name: str, type_: str, fmt: str, description: str, priority: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description,
        "priority": priority,
    }


def _columns(res: ResourceType) -> tuple[list[dict[str, Any]], list[Cell]]:
    """The column definitions and cells of ``res``'s Table."""
    if not res.custom:
        columns = COLUMNS.get(res.key, DEFAULT_COLUMNS)
        described = {"Name": NAME_DESCRIPTION, "Age": CREATION_TIMESTAMP_DESCRIPTION}
        return (
            [
                _definition(c.name, c.type, c.format, described.get(c.name, ""), c.priority)
                for c in columns
            ],
            [c.cell for c in columns],
        )
    definitions = [_definition("Name", "string", "name", NAME_DESCRIPTION, 0)]
    cells: list[Cell] = [_name]
    for column in res.printer_columns or _DEFAULT_PRINTER_COLUMNS:
        path = str(column["jsonPath"])
        definitions.append(
            _definition(
                str(column["name"]),
                str(column["type"]),
                str(column.get("format", "")),
                str(
                    column.get("description")
                    or f"Custom resource definition column (in JSONPath format): {path}"
                ),
                int(column.get("priority", 0)),
            )
        )
        cells.append(_printer_cell(str(column["type"]), parse_json_path(path)))
    return definitions, cells


def table(
    res: ResourceType,
    objs: Sequence[dict[str, Any]],
    now: float,
    *,
    include_object: str = "Metadata",
    list_meta: dict[str, Any] | None = None,
    headers: bool = True,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``objs``; ``headers=False`` omits the column
    definitions, as the real server does after the first event of a watch."""
    definitions, cells = _columns(res)
    rows = []
    for obj in objs:
        row: dict[str, Any] = {"cells": [cell(obj, now) for cell in cells]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": definitions if headers else [],
        "rows": rows,
    }
