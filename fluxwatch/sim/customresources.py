"""CustomResourceDefinitions: from a stored apiextensions.k8s.io/v1 object to served kinds.

A CRD written to the embedded cluster is checked as the real server checks the
parts that decide what gets served (group, names, scope, versions, one storage
version, a schema per version), gets the status the real server gives an
accepted definition (``NamesAccepted`` and ``Established``), and its served
versions join the registry; deleting it takes them, and their objects, away.

``default_crds()`` are the definitions a fresh embedded cluster starts with: this
project's own HelmRelease definition (``crds/helmrelease.yaml``), so that Flux's
kind is validated, pruned and defaulted like on a cluster with Flux installed.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources as importlib_resources
from typing import Any

import orjson
import yaml

from fluxwatch.sim import fielderrors as fe
from fluxwatch.sim.admission import CustomSchema
from fluxwatch.sim.fielderrors import FieldError
from fluxwatch.sim.resources import ResourceType
from fluxwatch.sim.schema import Schema
from fluxwatch.sim.schema.structural import structural_errors

__all__ = ["CRD_KEY", "compile_schema", "default_crds", "structural_errors"]

CRD_KEY = "customresourcedefinitions.apiextensions.k8s.io"
_SCOPES = ("Cluster", "Namespaced")


def default_crds() -> list[dict[str, Any]]:
    """The CRDs packaged in ``fluxwatch/sim/crds/`` (HelmRelease v2 and its kin)."""
    return [copy.deepcopy(crd) for crd in _packaged_crds()]


@functools.cache
def _packaged_crds() -> tuple[dict[str, Any], ...]:
    # Every Store starts with these: read the YAML once per process, not per cluster.
    folder = importlib_resources.files("fluxwatch.sim").joinpath("crds")
    if not folder.is_dir():
        return ()
    crds: list[dict[str, Any]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".yaml", ".yml")):
            crds.extend(d for d in yaml.safe_load_all(entry.read_text()) if d)
    return tuple(crds)


def compile_schema(schema: dict[str, Any], kind: str, group: str) -> CustomSchema:
    """One version's structural schema, compiled for validation, pruning and defaulting;
    the same schema is compiled once per process (every Store registers HelmRelease)."""
    return _compiled(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS), kind, group)


@functools.lru_cache(maxsize=64)
def _compiled(schema: bytes, kind: str, group: str) -> CustomSchema:
    return Schema.compile(orjson.loads(schema), kind=kind, group=group)


def load_crd_file(text: str) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in a YAML stream (other kinds are ignored)."""
    return [
        d
        for d in yaml.safe_load_all(text)
        if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
    ]


def validate_crd(crd: dict[str, Any]) -> list[FieldError]:
    """The parts of ValidateCustomResourceDefinition that decide what is served."""
    errors: list[FieldError] = []
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [fe.required("spec")]
    group = spec.get("group")
    names: dict[str, Any] = spec["names"] if isinstance(spec.get("names"), dict) else {}
    plural = names.get("plural")
    if not group:
        errors.append(fe.required("spec.group"))
    elif "." not in group:
        errors.append(
            fe.invalid_value("spec.group", group, "should be a domain with at least one dot")
        )
    if not plural:
        errors.append(fe.required("spec.names.plural"))
    if not names.get("kind"):
        errors.append(fe.required("spec.names.kind"))
    if not names.get("listKind") and names.get("kind"):
        names["listKind"] = f"{names['kind']}List"
    name = (crd.get("metadata") or {}).get("name")
    if group and plural and name != f"{plural}.{group}":
        errors.append(
            fe.invalid_value("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
        )
    if spec.get("scope") not in _SCOPES:
        errors.append(
            fe.required("spec.scope")
            if not spec.get("scope")
            else fe.not_supported("spec.scope", spec.get("scope"), _SCOPES)
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        errors.append(
            fe.invalid_value(
                "spec.versions", versions, "must have exactly one version marked as storage version"
            )
        )
        return errors
    storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
    if len(storage) != 1:
        errors.append(
            fe.invalid_value(
                "spec.versions",
                len(storage),
                "must have exactly one version marked as storage version",
            )
        )
    seen: set[str] = set()
    for i, v in enumerate(versions):
        path = f"spec.versions[{i}]"
        if not isinstance(v, dict) or not v.get("name"):
            errors.append(fe.required(f"{path}.name"))
            continue
        if v["name"] in seen:
            errors.append(fe.duplicate(f"{path}.name", v["name"]))
        seen.add(v["name"])
        if not isinstance((v.get("schema") or {}).get("openAPIV3Schema"), dict):
            errors.append(fe.required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
    if not any(isinstance(v, dict) and v.get("served") for v in versions):
        errors.append(
            fe.invalid_value(
                "spec.versions", versions and "[...]", "must have at least one served version"
            )
        )
    return errors


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version, the storage version's table shared."""
    spec = crd["spec"]
    names = spec["names"]
    group = spec["group"]
    storage_version = next(v["name"] for v in spec["versions"] if v.get("storage"))
    table = f"{names['plural']}.{group}"
    out: list[ResourceType] = []
    for v in spec["versions"]:
        if not v.get("served"):
            continue
        subresources = v.get("subresources") or {}
        out.append(
            ResourceType(
                group,
                v["name"],
                names["plural"],
                names["kind"],
                spec["scope"] == "Namespaced",
                tuple(names.get("shortNames") or ()),
                names.get("singular") or names["kind"].lower(),
                status_subresource="status" in subresources,
                categories=tuple(names.get("categories") or ()),
                subresources=("scale",) if "scale" in subresources else (),
                custom=True,
                storage=table,
                storage_version=storage_version,
                printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
            )
        )
    # Served versions in the order discovery lists them: storage first is what
    # kubectl prefers when nothing else decides.
    out.sort(key=lambda r: r.version != storage_version)
    return out


def accepted_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    """The status of a definition the server accepted and serves."""
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    old = crd.get("status") or {}
    stored = list(old.get("storedVersions") or [])
    if storage not in stored:
        stored.append(storage)

    def cond(type_: str, reason: str, message: str) -> dict[str, Any]:
        for c in old.get("conditions") or ():
            if c.get("type") == type_ and c.get("status") == "True":
                return dict(c)
        return {
            "type": type_,
            "status": "True",
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }

    return {
        "acceptedNames": names,
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    }
