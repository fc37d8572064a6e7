"""Server-side printing: the ``Table`` a real API server returns to ``kubectl get``.

Columns follow what the real server prints for each resource (the HelmRelease
CRD's additionalPrinterColumns, the built-in printers for Leases, Secrets, ...);
an age is rendered on the server as kubectl users know it ("5m", "3h12m").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

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


def _condition(type_: str, field: str) -> Cell:
    def cell(obj: dict[str, Any], now: float) -> str:
        for cond in (obj.get("status") or {}).get("conditions") or ():
            if isinstance(cond, dict) and cond.get("type") == type_:
                return str(cond.get(field, ""))
        return ""

    return cell


def _path(*parts: str, default: Any = "") -> Cell:
    def cell(obj: dict[str, Any], now: float) -> Any:
        cur: Any = obj
        for p in parts:
            cur = cur.get(p) if isinstance(cur, dict) else None
        return default if cur is None else cur

    return cell


def _data_count(obj: dict[str, Any], now: float) -> int:
    return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})


def _involved(field: str) -> Cell:
    def cell(obj: dict[str, Any], now: float) -> str:
        ref = obj.get(field) or {}
        return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"

    return cell


def _last_seen(obj: dict[str, Any], now: float) -> str:
    ts = obj.get("lastTimestamp") or obj.get("eventTime") or obj.get("deprecatedLastTimestamp")
    return _age_of(ts or obj["metadata"].get("creationTimestamp"), now)


def _deploy_ready(obj: dict[str, Any], now: float) -> str:
    status = obj.get("status") or {}
    return f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 1)}"


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


Column = tuple[str, str, str, Cell]  # name, type, format, cell
_NAME: Column = ("Name", "string", "name", _name)
_AGE: Column = ("Age", "string", "", _age)
_CREATED_AT: Column = ("Created At", "string", "date", _created_at)

COLUMNS: dict[str, Sequence[Column]] = {
    "helmreleases.helm.toolkit.fluxcd.io": (
        _NAME,
        _AGE,
        ("Ready", "string", "", _condition("Ready", "status")),
        ("Status", "string", "", _condition("Ready", "message")),
    ),
    "leases.coordination.k8s.io": (
        _NAME,
        ("Holder", "string", "", _path("spec", "holderIdentity")),
        _AGE,
    ),
    "secrets": (
        _NAME,
        ("Type", "string", "", _path("type")),
        ("Data", "string", "", _data_count),
        _AGE,
    ),
    "configmaps": (_NAME, ("Data", "string", "", _data_count), _AGE),
    "namespaces": (_NAME, ("Status", "string", "", _path("status", "phase")), _AGE),
    "events": (
        ("Last Seen", "string", "", _last_seen),
        ("Type", "string", "", _path("type")),
        ("Reason", "string", "", _path("reason")),
        ("Object", "string", "", _involved("involvedObject")),
        ("Message", "string", "", _path("message")),
    ),
    "events.events.k8s.io": (
        ("Last Seen", "string", "", _last_seen),
        ("Type", "string", "", _path("type")),
        ("Reason", "string", "", _path("reason")),
        ("Object", "string", "", _involved("regarding")),
        ("Message", "string", "", _path("note")),
    ),
    "deployments.apps": (
        _NAME,
        ("Ready", "string", "", _deploy_ready),
        ("Up-to-date", "integer", "", _path("status", "updatedReplicas", default=0)),
        ("Available", "integer", "", _path("status", "availableReplicas", default=0)),
        _AGE,
    ),
    "serviceaccounts": (_NAME, ("Secrets", "string", "", _count("secrets")), _AGE),
    "services": (
        _NAME,
        ("Type", "string", "", _path("spec", "type")),
        ("Cluster-IP", "string", "", _or_none("spec", "clusterIP")),
        ("External-IP", "string", "", _external_ips),
        ("Port(s)", "string", "", _service_ports),
        _AGE,
    ),
    "poddisruptionbudgets.policy": (
        _NAME,
        ("Min Available", "string", "", _int_or_percent("spec", "minAvailable")),
        ("Max Unavailable", "string", "", _int_or_percent("spec", "maxUnavailable")),
        (
            "Allowed Disruptions",
            "integer",
            "",
            _path("status", "disruptionsAllowed", default=0),
        ),
        _AGE,
    ),
    "roles.rbac.authorization.k8s.io": (_NAME, _CREATED_AT),
    "clusterroles.rbac.authorization.k8s.io": (_NAME, _CREATED_AT),
    "rolebindings.rbac.authorization.k8s.io": (
        _NAME,
        ("Role", "string", "", _role_ref),
        _AGE,
    ),
    "clusterrolebindings.rbac.authorization.k8s.io": (
        _NAME,
        ("Role", "string", "", _role_ref),
        _AGE,
    ),
}
DEFAULT_COLUMNS: Sequence[Column] = (_NAME, _AGE)


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def table(
    resource_key: str,
    objs: Sequence[dict[str, Any]],
    now: float,
    *,
    include_object: str = "Metadata",
    list_meta: dict[str, Any] | None = None,
    headers: bool = True,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``objs``; ``headers=False`` omits the column
    definitions, as the real server does after the first event of a watch."""
    columns = COLUMNS.get(resource_key, DEFAULT_COLUMNS)
    rows = []
    for obj in objs:
        row: dict[str, Any] = {"cells": [cell(obj, now) for _, _, _, cell in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": [
            {"name": name, "type": type_, "format": fmt, "description": "", "priority": 0}
            for name, type_, fmt, _ in columns
        ]
        if headers
        else [],
        "rows": rows,
    }
