"""The OpenAPI documents of the embedded cluster (``/openapi/v2``, ``/openapi/v3``), built
from the kinds its ``Registry`` serves, and the schema look-ups of built-in kinds.

kubectl reads these documents before it writes: its default ``--validate=strict``
asks the OpenAPI v3 document of a group-version whether the PATCH operation of a
kind takes the ``fieldValidation`` query parameter (and, if so, lets the server
validate), client-side ``kubectl apply`` computes strategic merge patches from the
patch strategies and list map keys of the v3 schemas, and ``kubectl explain``
prints them; where v3 cannot answer (a ``kind: List`` manifest, a CRD's patch type)
kubectl reads v2, as protobuf only (``openapi_proto``). So the documents have the
shape kube-apiserver gives them: one v3 document per group-version with its kinds'
schemas and every endpoint's operations, an index of them whose ``?hash=`` URLs
change with their content, and v2 with all of it in one.

The schemas of built-in kinds are Kubernetes v1.32's own definitions, read at run
time from the JSON schemas the ``kubernetes-validate`` package ships (there turned
into JSON Schema: nullable type lists, ``$defs`` references, apiVersion/kind enums;
``_openapi_schema`` turns them back). CRD kinds get the schema the integrator's
``custom_schema`` gives, framed as the real server frames a CRD version's
``openAPIV3Schema``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from importlib import resources
from typing import Any, Final

import orjson
from aiohttp import web

from fluxwatch.sim import openapi_proto
from fluxwatch.sim.resources import Registry, ResourceType

JSON: Final = "application/json"
# What client-go asks /openapi/v2 for (the deprecated spelling), and what the server answers.
V2_PROTOBUF: Final = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
V2_PROTOBUF_SERVED: Final = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

_DEFINITIONS: Final = "kubernetes-json-schema/v1.32.0-local/_definitions.json"
_META: Final = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META: Final = _META + "ObjectMeta"
_LIST_META: Final = _META + "ListMeta"
_STATUS: Final = _META + "Status"
_DELETE_OPTIONS: Final = _META + "DeleteOptions"
_PATCH: Final = _META + "Patch"
_WATCH_EVENT: Final = _META + "WatchEvent"
_RESOURCE_LIST: Final = _META + "APIResourceList"
_TOKEN_REQUEST: Final = "io.k8s.api.authentication.v1.TokenRequest"
# Every group-version document holds these, whatever its kinds reference.
_ALWAYS: Final = (
    OBJECT_META,
    _LIST_META,
    _STATUS,
    _DELETE_OPTIONS,
    _PATCH,
    _WATCH_EVENT,
    _RESOURCE_LIST,
)

_V3_REF: Final = "#/components/schemas/"
_V2_REF: Final = "#/definitions/"
_RAW_REF: Final = "#/$defs/"

_API_VERSION_DOC: Final = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#resources"
)
_KIND_DOC: Final = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#types-kinds"
)
_METADATA_DOC: Final = (
    "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#metadata"
)


# ---- the built-in definitions ---------------------------------------------------------------


@functools.cache
def _raw() -> dict[str, Any]:
    """Kubernetes v1.32's definitions as kubernetes-validate ships them (JSON Schema)."""
    data = resources.files("kubernetes_validate").joinpath(_DEFINITIONS).read_bytes()
    defs: dict[str, Any] = orjson.loads(data)["$defs"]
    return defs


@functools.cache
def _by_gvk() -> dict[tuple[str, str, str], str]:
    """Definition name by (group, version, kind); the meta types every group lists are left
    out, they are no kind of their own."""
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in _raw().items():
        gvks = schema.get("x-kubernetes-group-version-kind") or []
        if len(gvks) != 1:
            continue
        gvk = gvks[0]
        index[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return index


def _openapi_schema(node: Any, ref: str, wrap_refs: bool) -> Any:
    """One JSON Schema node back in OpenAPI form: a single type instead of ``[T, "null"]``,
    references under ``ref``; in v3 a reference with siblings (a description) is wrapped in
    ``allOf`` as kube-openapi writes it."""
    if isinstance(node, list):
        return [_openapi_schema(item, ref, wrap_refs) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            out[key] = next((t for t in value if t != "null"), value[0])
        elif key == "$ref":
            out[key] = ref + value.removeprefix(_RAW_REF)
        elif key == "properties":
            out[key] = {name: _openapi_schema(sub, ref, wrap_refs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "oneOf", "anyOf", "allOf", "not"):
            out[key] = _openapi_schema(value, ref, wrap_refs)
        else:
            out[key] = value
    if wrap_refs and "$ref" in out and len(out) > 1:
        target = out.pop("$ref")
        out = {"allOf": [{"$ref": target}], **out}
    return out


@functools.cache
def _definition(name: str, v3: bool) -> dict[str, Any]:
    raw = _raw()[name]
    schema: dict[str, Any] = _openapi_schema(raw, _V3_REF if v3 else _V2_REF, v3)
    if raw.get("x-kubernetes-group-version-kind"):
        # kubernetes-validate pins apiVersion and kind of each kind with an enum the
        # served document does not have.
        for field in ("apiVersion", "kind"):
            prop = schema.get("properties", {}).get(field)
            if prop is not None:
                prop.pop("enum", None)
    if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
        schema["format"] = "int-or-string"
        if not v3:
            schema = {"type": "string", "format": "int-or-string"}
    return schema


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.removeprefix(_RAW_REF)
            elif key == "properties":
                for sub in value.values():
                    yield from _references(sub)
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


@functools.cache
def _closure(name: str) -> frozenset[str]:
    """The definition and every definition it references, transitively."""
    seen: set[str] = set()
    todo = [name]
    raw = _raw()
    while todo:
        current = todo.pop()
        if current in seen or current not in raw:
            continue
        seen.add(current)
        todo.extend(_references(raw[current]))
    return frozenset(seen)


def builtin_definition_name(res: ResourceType) -> str | None:
    """``io.k8s.api.core.v1.Secret`` for core/v1 secrets; None for a kind not built in."""
    if res.custom:
        return None
    return _by_gvk().get((res.group, res.version, res.kind))


def builtin_schema(res: ResourceType) -> dict[str, Any] | None:
    """The OpenAPI v3 schema of a built-in kind; its ``$ref``s (``#/components/schemas/X``)
    resolve with ``definition``."""
    name = builtin_definition_name(res)
    return copy.deepcopy(_definition(name, True)) if name else None


def definition(ref: str) -> dict[str, Any] | None:
    """The v3 definition a ``$ref`` (or a bare definition name) names."""
    name = ref.removeprefix(_V3_REF)
    return copy.deepcopy(_definition(name, True)) if name in _raw() else None


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` / single-``allOf`` references to the schema they stand for."""
    while True:
        if "$ref" in schema:
            schema = _definition(schema["$ref"].removeprefix(_V3_REF), True)
        elif len(schema.get("allOf", ())) == 1 and "properties" not in schema:
            schema = schema["allOf"][0]
        else:
            return schema


def _opaque(schema: dict[str, Any]) -> bool:
    """True where any content is allowed: preserved unknown fields, RawExtension, FieldsV1
    and other objects that list no properties."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return True
    return (
        schema.get("type") == "object"
        and "properties" not in schema
        and "additionalProperties" not in schema
    )


def unknown_fields(res: ResourceType, obj: Any) -> list[str]:
    """The fields of ``obj`` that the built-in kind's schema does not define, worded as the
    real server's strict decoding errors (``unknown field "spec.foo"``), in the order they
    appear; empty for a kind with no built-in schema."""
    return _unknown_fields(res, obj, drop=False)


def drop_unknown_fields(res: ResourceType, obj: Any) -> list[str]:
    """``unknown_fields``, and the fields removed from ``obj`` in place, as decoding into
    the kind's Go type drops them."""
    return _unknown_fields(res, obj, drop=True)


def _unknown_fields(res: ResourceType, obj: Any, *, drop: bool) -> list[str]:
    schema = builtin_schema(res)
    if schema is None:
        return []
    found: list[str] = []
    _unknown(schema, obj, "", found, drop)
    # The real decoder reports each path once, in the order it meets them.
    return [f'unknown field "{path}"' for path in dict.fromkeys(found)]


def _unknown(schema: dict[str, Any], value: Any, path: str, found: list[str], drop: bool) -> None:
    schema = _resolve(schema)
    if _opaque(schema):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is not None:
            gone: list[str] = []
            for key, sub in value.items():
                child = f"{path}.{key}" if path else key
                if key not in props:
                    found.append(child)
                    gone.append(key)
                else:
                    _unknown(props[key], sub, child, found, drop)
            if drop:
                for key in gone:
                    del value[key]
        elif isinstance(schema.get("additionalProperties"), dict):
            for key, sub in value.items():
                # Map keys join the path like field names do, as the real decoder joins them.
                child = f"{path}.{key}" if path else key
                _unknown(schema["additionalProperties"], sub, child, found, drop)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _unknown(schema["items"], item, f"{path}[{i}]", found, drop)


@dataclass(frozen=True, slots=True)
class ListStrategy:
    """How a field merges: the strategic-merge-patch strategy and merge key kubectl's
    client-side apply uses, and the list/map type server-side apply uses."""

    patch_strategy: str = ""  # "merge", "retainKeys", "merge,retainKeys" or ""
    patch_merge_key: str = ""
    list_type: str = ""  # "atomic", "set", "map" or "" (a list with no marker is atomic)
    list_map_keys: tuple[str, ...] = ()
    map_type: str = ""  # x-kubernetes-map-type: "atomic" or "granular"


def list_strategy(res: ResourceType, path: Sequence[str]) -> ListStrategy | None:
    """The merge markers of the field at ``path`` (field names from the object's root; a
    list's items are stepped into implicitly, so ``("spec", "template", "spec",
    "containers", "ports")`` is every container's ports); None when the kind has no
    built-in schema, the path leaves it, or the field carries no marker."""
    schema = builtin_schema(res)
    if schema is None:
        return None
    node: dict[str, Any] = schema
    for name in path:
        node = _resolve(node)
        if node.get("type") == "array" and isinstance(node.get("items"), dict):
            node = _resolve(node["items"])
        props = node.get("properties")
        if props is None or name not in props:
            return None
        node = props[name]
    markers = {**_resolve(node), **node}
    strategy = ListStrategy(
        markers.get("x-kubernetes-patch-strategy", ""),
        markers.get("x-kubernetes-patch-merge-key", ""),
        markers.get("x-kubernetes-list-type", ""),
        tuple(markers.get("x-kubernetes-list-map-keys", ())),
        markers.get("x-kubernetes-map-type", ""),
    )
    return None if strategy == ListStrategy() else strategy


# ---- CRD kinds ------------------------------------------------------------------------------


def custom_definition_name(res: ResourceType, kind: str = "") -> str:
    """A CRD kind's definition name: the group reversed, then version and kind
    (``io.fluxcd.toolkit.helm.v2.HelmRelease``), as the real server names it."""
    reversed_group = ".".join(reversed(res.group.split(".")))
    return f"{reversed_group}.{res.version}.{kind or res.kind}"


def _meta_ref(name: str, description: str, v3: bool) -> dict[str, Any]:
    ref = (_V3_REF if v3 else _V2_REF) + name
    if v3:
        return {"description": description, "allOf": [{"$ref": ref}]}
    return {"$ref": ref, "description": description}


def _custom_schemas(
    res: ResourceType, schema: dict[str, Any] | None, v3: bool
) -> dict[str, dict[str, Any]]:
    """The kind and list definitions of one CRD version: its openAPIV3Schema with the
    standard apiVersion/kind/metadata, or, with no schema, an object that keeps every field
    (as the real server publishes a CRD that declares none)."""
    kind_schema: dict[str, Any] = (
        copy.deepcopy(schema)
        if schema
        else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    )
    kind_schema.setdefault("type", "object")
    props = kind_schema.setdefault("properties", {})
    props["apiVersion"] = {"description": _API_VERSION_DOC, "type": "string"}
    props["kind"] = {"description": _KIND_DOC, "type": "string"}
    props["metadata"] = _meta_ref(OBJECT_META, _METADATA_DOC, v3)
    kind_schema["x-kubernetes-group-version-kind"] = [
        {"group": res.group, "kind": res.kind, "version": res.version}
    ]
    name = custom_definition_name(res)
    list_kind = f"{res.kind}List"
    item_ref = (_V3_REF if v3 else _V2_REF) + name
    list_schema: dict[str, Any] = {
        "description": f"{list_kind} is a list of {res.kind}",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": _API_VERSION_DOC, "type": "string"},
            "items": {
                "description": (
                    f"List of {res.plural}. More info: https://git.k8s.io/community/"
                    "contributors/devel/sig-architecture/api-conventions.md"
                ),
                "type": "array",
                "items": {"$ref": item_ref},
            },
            "kind": {"description": _KIND_DOC, "type": "string"},
            "metadata": _meta_ref(
                _LIST_META,
                "Standard list metadata. More info: https://git.k8s.io/community/contributors/"
                "devel/sig-architecture/api-conventions.md#types-kinds",
                v3,
            ),
        },
        "x-kubernetes-group-version-kind": [
            {"group": res.group, "kind": list_kind, "version": res.version}
        ],
    }
    return {name: kind_schema, custom_definition_name(res, list_kind): list_schema}


# ---- the endpoints --------------------------------------------------------------------------

_PARAMS: Final[dict[str, tuple[str, str, str]]] = {
    # name: (in, type, description)
    "allowWatchBookmarks": (
        "query",
        "boolean",
        'allowWatchBookmarks requests watch events with type "BOOKMARK".',
    ),
    "continue": (
        "query",
        "string",
        "The continue option should be set when retrieving more results from the server.",
    ),
    "dryRun": (
        "query",
        "string",
        "When present, indicates that modifications should not be persisted. Valid values "
        "are: - All: all dry run stages will be processed",
    ),
    "fieldManager": (
        "query",
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes.",
    ),
    "fieldSelector": (
        "query",
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to "
        "everything.",
    ),
    "fieldValidation": (
        "query",
        "string",
        "fieldValidation instructs the server on how to handle objects in the request "
        "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, "
        "Warn (the default) and Strict.",
    ),
    "force": (
        "query",
        "boolean",
        'Force is going to "force" Apply requests. It means user will re-acquire conflicting '
        "fields owned by other people. Force flag must be unset for non-apply patch requests.",
    ),
    "gracePeriodSeconds": (
        "query",
        "integer",
        "The duration in seconds before the object should be deleted.",
    ),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "query",
        "boolean",
        "if set to true, it will trigger an unsafe deletion of the resource in case the "
        "normal deletion flow fails with a corrupt object error.",
    ),
    "labelSelector": (
        "query",
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to "
        "everything.",
    ),
    "limit": (
        "query",
        "integer",
        "limit is a maximum number of responses to return for a list call.",
    ),
    "name": ("path", "string", "name of the {kind}"),
    "namespace": ("path", "string", "object name and auth scope, such as for teams and projects"),
    "orphanDependents": (
        "query",
        "boolean",
        "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7.",
    ),
    "pretty": ("query", "string", "If 'true', then the output is pretty printed."),
    "propagationPolicy": (
        "query",
        "string",
        "Whether and how garbage collection will be performed: 'Orphan', 'Background' or "
        "'Foreground'.",
    ),
    "resourceVersion": (
        "query",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    "resourceVersionMatch": (
        "query",
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    ),
    "sendInitialEvents": (
        "query",
        "boolean",
        "`sendInitialEvents=true` may be set together with `watch=true`; the watch stream then "
        "begins with synthetic events of the current state of all objects.",
    ),
    "timeoutSeconds": (
        "query",
        "integer",
        "Timeout for the list/watch call. This limits the duration of the call, regardless of "
        "any activity or inactivity.",
    ),
    "watch": (
        "query",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, "
        "update, and remove notifications. Specify resourceVersion.",
    ),
}

_LIST_PARAMS: Final = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_WRITE_PARAMS: Final = ("dryRun", "fieldManager", "fieldValidation")
_PATCH_PARAMS: Final = (*_WRITE_PARAMS, "force")
_DELETE_PARAMS: Final = (
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
)
_DELETECOLLECTION_PARAMS: Final = (
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
)

_WATCHLIST_DOC: Final = (
    "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter "
    "with a list operation instead."
)
_WATCH_DOC: Final = (
    "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a "
    "list operation instead, filtered to a single item with the 'fieldSelector' parameter."
)

_PLAIN: Final = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_STREAM: Final = (
    "application/json",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf",
    "application/vnd.kubernetes.protobuf;stream=watch",
    "application/yaml",
)
_CRD_PLAIN: Final = ("application/json", "application/yaml")
_CRD_STREAM: Final = ("application/json", "application/json;stream=watch", "application/yaml")
_BUILTIN_PATCHES: Final = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
# Custom resources take no strategic merge patch; kubectl apply then sends a merge patch.
_CRD_PATCHES: Final = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
)


@dataclass(frozen=True, slots=True)
class _Op:
    method: str
    action: str  # x-kubernetes-action
    op_id: str
    description: str
    params: tuple[str, ...]
    responses: tuple[tuple[str, str], ...]  # (code, description), all of ``schema``
    schema: str  # definition name of the response body
    produces: tuple[str, ...]
    body: str = ""  # definition name of the request body
    body_types: tuple[str, ...] = ("*/*",)
    gvk: tuple[str, str, str] | None = None


@dataclass(frozen=True, slots=True)
class _Path:
    path: str
    params: tuple[str, ...]  # path-level parameters
    ops: tuple[_Op, ...]
    kind: str  # for the ``name`` parameter's description


def _camel(res: ResourceType) -> str:
    """``CoreV1``, ``RbacAuthorizationV1``, ``HelmToolkitFluxcdIoV2``: the group-version
    part of kube-apiserver's operation ids."""
    if not res.group:
        words = ["core"]
    elif res.custom:
        words = res.group.split(".")
    else:
        words = res.group.removesuffix(".k8s.io").split(".")
    return "".join(w[:1].upper() + w[1:] for w in words) + res.version.capitalize()


def _tag(res: ResourceType) -> str:
    camel = _camel(res).removesuffix(res.version.capitalize())
    return f"{camel[:1].lower()}{camel[1:]}_{res.version}"


def _paths(res: ResourceType, kind_def: str, list_def: str) -> list[_Path]:
    """Every endpoint of one served kind, with the operations its verbs allow."""
    prefix = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
    gvk = (res.group, res.version, res.kind)
    gv = _camel(res)
    custom = res.custom
    plain = _CRD_PLAIN if custom else _PLAIN
    stream = _CRD_STREAM if custom else _STREAM
    patches = _CRD_PATCHES if custom else _BUILTIN_PATCHES
    verbs = set(res.verbs)
    ns = "Namespaced" if res.namespaced else ""
    kind = res.kind
    ok = (("200", "OK"),)
    created = (("200", "OK"), ("201", "Created"))
    accepted = (("200", "OK"), ("201", "Created"), ("202", "Accepted"))
    deleted = (("200", "OK"), ("202", "Accepted"))

    def op(
        method: str,
        action: str,
        op_id: str,
        description: str,
        params: tuple[str, ...],
        responses: tuple[tuple[str, str], ...],
        schema: str,
        produces: tuple[str, ...] = plain,
        body: str = "",
        body_types: tuple[str, ...] = ("*/*",),
    ) -> _Op:
        return _Op(
            method,
            action,
            op_id,
            description,
            params,
            responses,
            schema,
            produces,
            body,
            body_types,
            gvk,
        )

    collection = (
        f"{prefix}/namespaces/{{namespace}}/{res.plural}"
        if res.namespaced
        else (f"{prefix}/{res.plural}")
    )
    scope = ("namespace",) if res.namespaced else ()
    out: list[_Path] = []
    ops: list[_Op] = []
    if "list" in verbs:
        ops.append(
            op(
                "get",
                "list",
                f"list{gv}{ns}{kind}",
                f"list or watch objects of kind {kind}",
                _LIST_PARAMS,
                ok,
                list_def,
                stream,
            )
        )
    if "create" in verbs:
        ops.append(
            op(
                "post",
                "post",
                f"create{gv}{ns}{kind}",
                f"create a {kind}",
                _WRITE_PARAMS,
                accepted,
                kind_def,
                body=kind_def,
            )
        )
    if "deletecollection" in verbs:
        ops.append(
            op(
                "delete",
                "deletecollection",
                f"delete{gv}Collection{ns}{kind}",
                f"delete collection of {kind}",
                _DELETECOLLECTION_PARAMS,
                ok,
                _STATUS,
                body=_DELETE_OPTIONS,
            )
        )
    if ops:
        out.append(_Path(collection, (*scope, "pretty"), tuple(ops), kind))
    item = f"{collection}/{{name}}"
    item_params = ("name", *scope, "pretty")
    ops = []
    if "get" in verbs:
        ops.append(
            op("get", "get", f"read{gv}{ns}{kind}", f"read the specified {kind}", (), ok, kind_def)
        )
    if "update" in verbs:
        ops.append(
            op(
                "put",
                "put",
                f"replace{gv}{ns}{kind}",
                f"replace the specified {kind}",
                _WRITE_PARAMS,
                created,
                kind_def,
                body=kind_def,
            )
        )
    if "delete" in verbs:
        ops.append(
            op(
                "delete",
                "delete",
                f"delete{gv}{ns}{kind}",
                f"delete a {kind}",
                _DELETE_PARAMS,
                deleted,
                _STATUS,
                body=_DELETE_OPTIONS,
            )
        )
    if "patch" in verbs:
        ops.append(
            op(
                "patch",
                "patch",
                f"patch{gv}{ns}{kind}",
                f"partially update the specified {kind}",
                _PATCH_PARAMS,
                created,
                kind_def,
                body=_PATCH,
                body_types=patches,
            )
        )
    if ops:
        out.append(_Path(item, item_params, tuple(ops), kind))
    if res.status_subresource:
        out.append(
            _Path(
                f"{item}/status",
                item_params,
                (
                    op(
                        "get",
                        "get",
                        f"read{gv}{ns}{kind}Status",
                        f"read status of the specified {kind}",
                        (),
                        ok,
                        kind_def,
                    ),
                    op(
                        "put",
                        "put",
                        f"replace{gv}{ns}{kind}Status",
                        f"replace status of the specified {kind}",
                        _WRITE_PARAMS,
                        created,
                        kind_def,
                        body=kind_def,
                    ),
                    op(
                        "patch",
                        "patch",
                        f"patch{gv}{ns}{kind}Status",
                        f"partially update status of the specified {kind}",
                        _PATCH_PARAMS,
                        created,
                        kind_def,
                        body=_PATCH,
                        body_types=patches,
                    ),
                ),
                kind,
            )
        )
    if "token" in res.subresources:
        token = _Op(
            "post",
            "post",
            f"create{gv}{ns}{kind}Token",
            f"create token of a {kind}",
            _WRITE_PARAMS,
            accepted,
            _TOKEN_REQUEST,
            plain,
            _TOKEN_REQUEST,
            ("*/*",),
            ("authentication.k8s.io", "v1", "TokenRequest"),
        )
        out.append(_Path(f"{item}/token", item_params, (token,), kind))
    if "list" in verbs and res.namespaced:
        out.append(
            _Path(
                f"{prefix}/{res.plural}",
                (*_LIST_PARAMS, "pretty"),
                (
                    op(
                        "get",
                        "list",
                        f"list{gv}{kind}ForAllNamespaces",
                        f"list or watch objects of kind {kind}",
                        (),
                        ok,
                        list_def,
                        stream,
                    ),
                ),
                kind,
            )
        )
    if "watch" in verbs:
        watch_list = (
            f"{prefix}/watch/namespaces/{{namespace}}/{res.plural}"
            if (res.namespaced)
            else f"{prefix}/watch/{res.plural}"
        )
        out.append(
            _Path(
                watch_list,
                (*_LIST_PARAMS, *scope, "pretty"),
                (
                    op(
                        "get",
                        "watchlist",
                        f"watch{gv}{ns}{kind}List",
                        _WATCHLIST_DOC.format(kind=kind),
                        (),
                        ok,
                        _WATCH_EVENT,
                        stream,
                    ),
                ),
                kind,
            )
        )
        out.append(
            _Path(
                f"{watch_list}/{{name}}",
                (*_LIST_PARAMS, *item_params),
                (
                    op(
                        "get",
                        "watch",
                        f"watch{gv}{ns}{kind}",
                        _WATCH_DOC.format(kind=kind),
                        (),
                        ok,
                        _WATCH_EVENT,
                        stream,
                    ),
                ),
                kind,
            )
        )
        if res.namespaced:
            out.append(
                _Path(
                    f"{prefix}/watch/{res.plural}",
                    (*_LIST_PARAMS, "pretty"),
                    (
                        op(
                            "get",
                            "watchlist",
                            f"watch{gv}{kind}ListForAllNamespaces",
                            _WATCHLIST_DOC.format(kind=kind),
                            (),
                            ok,
                            _WATCH_EVENT,
                            stream,
                        ),
                    ),
                    kind,
                )
            )
    return out


def _param(name: str, kind: str, v3: bool) -> dict[str, Any]:
    where, type_, description = _PARAMS[name]
    doc: dict[str, Any] = {"name": name, "in": where, "description": description.format(kind=kind)}
    if where == "path":
        doc["required"] = True
    if v3:
        doc["schema"] = {"type": type_, "uniqueItems": True}
    else:
        doc["type"] = type_
        doc["uniqueItems"] = True
    return doc


def _op_doc(op: _Op, tag: str, kind: str, v3: bool) -> dict[str, Any]:
    ref = _V3_REF if v3 else _V2_REF
    doc: dict[str, Any] = {"tags": [tag], "description": op.description, "operationId": op.op_id}
    if not v3:
        doc["consumes"] = list(op.body_types) if op.body else ["*/*"]
        doc["produces"] = list(op.produces)
        doc["schemes"] = ["https"]
    params = [_param(p, kind, v3) for p in op.params]
    if op.body and not v3:
        params.insert(
            0, {"name": "body", "in": "body", "required": True, "schema": {"$ref": ref + op.body}}
        )
    if params:
        doc["parameters"] = params
    if op.body and v3:
        doc["requestBody"] = {
            "content": {t: {"schema": {"$ref": ref + op.body}} for t in op.body_types}
        }
        if op.method in ("post", "put", "patch"):
            doc["requestBody"]["required"] = True
    responses: dict[str, Any] = {}
    for code, description in op.responses:
        if v3:
            responses[code] = {
                "description": description,
                "content": {t: {"schema": {"$ref": ref + op.schema}} for t in op.produces},
            }
        else:
            responses[code] = {"description": description, "schema": {"$ref": ref + op.schema}}
    responses["401"] = {"description": "Unauthorized"}
    doc["responses"] = responses
    doc["x-kubernetes-action"] = op.action
    if op.gvk is not None:
        group, version, gvk_kind = op.gvk
        doc["x-kubernetes-group-version-kind"] = {
            "group": group,
            "version": version,
            "kind": gvk_kind,
        }
    return doc


def _group_root(prefix: str, gv: str, tag: str, v3: bool) -> dict[str, Any]:
    ref = (_V3_REF if v3 else _V2_REF) + _RESOURCE_LIST
    doc: dict[str, Any] = {
        "tags": [tag],
        "description": "get available resources",
        "operationId": f"get{gv}APIResources",
    }
    if v3:
        doc["responses"] = {
            "200": {"description": "OK", "content": {t: {"schema": {"$ref": ref}} for t in _PLAIN}},
            "401": {"description": "Unauthorized"},
        }
    else:
        doc.update(consumes=list(_PLAIN), produces=list(_PLAIN), schemes=["https"])
        doc["responses"] = {
            "200": {"description": "OK", "schema": {"$ref": ref}},
            "401": {"description": "Unauthorized"},
        }
    return {"get": doc}


# ---- the documents --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Document:
    """One encoded document and what its response headers carry."""

    body: bytes
    etag: str  # unquoted; the header quotes it
    content_type: str
    last_modified: datetime

    @property
    def last_modified_header(self) -> str:
        return format_datetime(self.last_modified, usegmt=True)


def _document(doc: dict[str, Any], now: datetime) -> Document:
    body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    return Document(body, hashlib.sha512(body).hexdigest().upper(), JSON, now)


def gv_path(res: ResourceType) -> str:
    """The key of a group-version in ``/openapi/v3``: ``api/v1``, ``apis/apps/v1``."""
    return f"apis/{res.group}/{res.version}" if res.group else f"api/{res.version}"


class OpenAPI:
    """The OpenAPI documents of one cluster, built from its registry and rebuilt when the
    registry changes (``registry.generation``). ``custom_schema`` gives the
    openAPIV3Schema of a CRD version (None when it declares none)."""

    def __init__(
        self,
        registry: Registry,
        custom_schema: Callable[[ResourceType], dict[str, Any] | None],
    ) -> None:
        self._registry = registry
        self._custom_schema = custom_schema
        self._generation = -1
        self._v3: dict[str, Document] = {}
        self._index: Document | None = None
        self._v2: Document | None = None
        self._v2_protobuf: Document | None = None

    def v3_index(self) -> Document:
        """``/openapi/v3``: each group-version and the URL of its current document."""
        self._refresh()
        if self._index is None:
            paths = {
                gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={doc.etag}"}
                for gv, doc in self._all_v3().items()
            }
            self._index = _document({"paths": paths}, datetime.now(UTC))
        return self._index

    def v3(self, path: str) -> Document | None:
        """``/openapi/v3/<path>`` (``api/v1``, ``apis/apps/v1``, ...); None when no kind of
        that group-version is served."""
        self._refresh()
        if path not in self._v3:
            kinds = [r for r in self._registry if gv_path(r) == path]
            if not kinds:
                return None
            self._v3[path] = _document(self._build(kinds, True), datetime.now(UTC))
        return self._v3[path]

    def v2(self) -> Document:
        """``/openapi/v2``: every served kind in one Swagger 2.0 document (JSON)."""
        self._refresh()
        if self._v2 is None:
            self._v2 = _document(self._build(list(self._registry), False), datetime.now(UTC))
        return self._v2

    def v2_protobuf(self) -> Document:
        """``/openapi/v2`` as gnostic's protobuf, the form client-go asks for; the ETag is
        the JSON document's, as kube-openapi keeps it for both forms."""
        json_doc = self.v2()
        if self._v2_protobuf is None:
            body = openapi_proto.document(orjson.loads(json_doc.body))
            self._v2_protobuf = Document(
                body, json_doc.etag, V2_PROTOBUF_SERVED, json_doc.last_modified
            )
        return self._v2_protobuf

    def _all_v3(self) -> dict[str, Document]:
        out: dict[str, Document] = {}
        for gv in sorted({gv_path(r) for r in self._registry}):
            doc = self.v3(gv)
            assert doc is not None
            out[gv] = doc
        return out

    def _refresh(self) -> None:
        if self._generation != self._registry.generation:
            self._generation = self._registry.generation
            self._v3.clear()
            self._index = None
            self._v2 = None
            self._v2_protobuf = None

    def _build(self, kinds: Iterable[ResourceType], v3: bool) -> dict[str, Any]:
        schemas: dict[str, Any] = {}
        needed: set[str] = set()
        paths: dict[str, Any] = {}
        roots: dict[str, tuple[str, str]] = {}
        for res in kinds:
            if res.custom:
                defs = _custom_schemas(res, self._custom_schema(res), v3)
                schemas.update(defs)
                kind_def, list_def = defs
                needed.update((OBJECT_META, _LIST_META))
            else:
                builtin = builtin_definition_name(res)
                if builtin is None:
                    continue
                kind_def, list_def = builtin, f"{builtin}List"
                needed.update(_closure(kind_def))
                if list_def in _raw():
                    needed.update(_closure(list_def))
                if "token" in res.subresources:
                    needed.update(_closure(_TOKEN_REQUEST))
            tag = _tag(res)
            prefix = f"/{gv_path(res)}"
            roots[prefix] = (_camel(res), tag)
            for p in _paths(res, kind_def, list_def):
                item: dict[str, Any] = {op.method: _op_doc(op, tag, p.kind, v3) for op in p.ops}
                item["parameters"] = [_param(name, p.kind, v3) for name in p.params]
                paths[p.path] = item
        for prefix, (gv, tag) in roots.items():
            paths[f"{prefix}/"] = _group_root(prefix, gv, tag, v3)
        for name in _ALWAYS:
            needed.update(_closure(name))
        for name in needed:
            schemas.setdefault(name, _definition(name, v3))
        security = {
            "BearerToken": {
                "type": "apiKey",
                "description": "Bearer Token authentication",
                "name": "authorization",
                "in": "header",
            }
        }
        if v3:
            return {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": paths,
                "components": {"schemas": schemas, "securitySchemes": security},
            }
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths,
            "definitions": schemas,
            "securityDefinitions": security,
            "security": [{"BearerToken": []}],
        }


# ---- HTTP -----------------------------------------------------------------------------------

# The generic API server marks every response it does not mark itself as uncacheable.
_NO_CACHE: Final = "no-cache, private"


def _accepts_json(accept: str) -> bool:
    """Whether an Accept header admits the JSON form (v3 is served as JSON only; client-go
    asks for nothing else)."""
    return _v2_form(accept) == "json"


def _v2_form(accept: str) -> str | None:
    """The form of /openapi/v2 an Accept header asks for first: "json", "protobuf" (either
    spelling of gnostic's media type) or None (kube-openapi then answers 406)."""
    if not accept.strip():
        return "json"
    for clause in accept.split(","):
        media = clause.split(";")[0].strip().lower()
        if media in ("application/json", "application/*", "*/*"):
            return "json"
        if media in (V2_PROTOBUF, V2_PROTOBUF_SERVED):
            return "protobuf"
    return None


def _served(request: web.Request, doc: Document, headers: dict[str, str]) -> web.Response:
    headers = {
        "Etag": f'"{doc.etag}"',
        "Last-Modified": doc.last_modified_header,
        "Cache-Control": _NO_CACHE,
        **headers,
    }
    match = request.headers.get("If-None-Match", "")
    if match and (match.strip() == "*" or f'"{doc.etag}"' in (m.strip() for m in match.split(","))):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=b"" if request.method == "HEAD" else doc.body,
        content_type=doc.content_type,
        headers=headers,
    )


def http_response(openapi: OpenAPI, request: web.Request, parts: Sequence[str]) -> web.Response:
    """The answer to GET ``/openapi/...`` (``parts``: the path split on ``/``), with
    kube-apiserver's headers: a quoted ETag (answering If-None-Match with 304),
    ``Vary: Accept``; v2 as JSON or protobuf, v3 as JSON, 406 for any other Accept; a
    ``?hash=`` that is the current one makes a document cacheable for a year, an old one
    redirects (301) to the current."""
    parts = list(parts)
    accept = request.headers.get("Accept", "")
    if parts == ["openapi", "v2"]:
        form = _v2_form(accept)
        if form is None:
            return web.Response(status=406, headers={"Vary": "Accept", "Cache-Control": _NO_CACHE})
        v2 = openapi.v2() if form == "json" else openapi.v2_protobuf()
        return _served(request, v2, {"Vary": "Accept"})
    if parts == ["openapi", "v3"]:
        return _served(request, openapi.v3_index(), {})
    if len(parts) > 2 and parts[:2] == ["openapi", "v3"]:
        gv = "/".join(parts[2:])
        doc = openapi.v3(gv)
        if doc is None:
            return web.Response(status=404, headers={"Cache-Control": _NO_CACHE})
        if not _accepts_json(accept):
            return web.Response(status=406, headers={"Vary": "Accept", "Cache-Control": _NO_CACHE})
        headers = {"Vary": "Accept"}
        wanted = request.query.get("hash", "")
        if wanted:
            if wanted != doc.etag:
                raise web.HTTPMovedPermanently(
                    f"/openapi/v3/{gv}?hash={doc.etag}", headers={"Cache-Control": _NO_CACHE}
                )
            expires = datetime.now(UTC) + timedelta(days=365)
            headers["Cache-Control"] = "public, immutable"
            headers["Expires"] = format_datetime(expires, usegmt=True)
        return _served(request, doc, headers)
    return web.Response(status=404, headers={"Cache-Control": _NO_CACHE})
