"""Field ownership (``metadata.managedFields``) and server-side apply, as kube-apiserver keeps them.

One idea: every write is a change from a live object to a new one, and the field sets
of that change decide who owns what. An Update (create, update, patch) gives its
manager every field it added or changed and takes those fields from everybody else;
an Apply merges the applied configuration into the live object, removes what the
applier stopped applying and nobody else owns, and refuses (409) to change a value
another manager owns unless forced. The rules follow k8s.io/apimachinery's
``managedfields`` and sigs.k8s.io/structured-merge-diff (SMD), so that kubectl's
``--show-managed-fields``, ``apply --server-side`` conflicts and a controller reading
``fieldsV1`` see what a real cluster would show them.

A field set is kept as a trie in the very shape of ``fieldsV1``: a dict from a path
element (``f:name``, ``k:{"name":"x"}``, ``v:"value"``, ``i:0``) to the child trie, with
``"."`` in a node that is itself a member. A leaf member is ``{".": {}}`` in the trie
and ``{}`` on the wire. Tries are never mutated once built.

The module is pure: it reads and returns plain JSON dicts; the store calls it on its
write path and turns ``ApplyError`` into its ``ApiError``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from fluxwatch.sim import fielderrors
from fluxwatch.sim.patching import json_equal

# (path) -> (kind, keys), asked about the value at ``path``. For a list: "set", "map"
# with its key fields, anything else atomic. For a dict: "struct" when its fields are
# declared (members only when null or empty), "atomic" when it is replaced whole,
# anything else ("map", "deduced") a free map whose every key is a member (labels).
# Paths are field names only; the elements of a list share the list's own path. An
# answer for a CRD comes from its schema: properties -> struct, additionalProperties or
# x-kubernetes-preserve-unknown-fields -> map, x-kubernetes-map-type/list-type atomic
# -> atomic, list-type set/map (+ x-kubernetes-list-map-keys), no schema -> deduced.
ListTypes = Callable[[tuple[str | int, ...]], tuple[str, tuple[str, ...]]]
Path = tuple[str | int, ...]
Trie = dict[str, "Trie"]

MEMBER: Final = "."
_EMPTY: Final[Trie] = {}  # the value under "." (never mutated)
APPLY: Final = "Apply"
UPDATE: Final = "Update"
FIELDS_TYPE: Final = "FieldsV1"
# The manager that owns what an object held before its first apply.
BEFORE_FIRST_APPLY: Final = "before-first-apply"
# Update entries beyond this many are folded, oldest first, into "ancient-changes".
MAX_UPDATE_MANAGERS: Final = 10
ANCIENT_CHANGES: Final = "ancient-changes"
FIELD_MANAGER_MAX_LENGTH: Final = 128
# Never owned by anybody: identity and bookkeeping the server writes itself.
_STRIPPED: Final[Trie] = {
    "f:apiVersion": {MEMBER: _EMPTY},
    "f:kind": {MEMBER: _EMPTY},
    "f:metadata": {
        MEMBER: _EMPTY,
        **{
            f"f:{name}": {MEMBER: _EMPTY}
            for name in (
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "clusterName",
                "generation",
                "managedFields",
                "resourceVersion",
            )
        },
    },
}
# Key fields that the built-in schemas default, so an applied item may leave them out.
_KEY_DEFAULTS: Final = {"protocol": "TCP"}


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Final = _Missing()


class ApplyError(Exception):
    """A write the field manager refuses, with the Status the real server answers."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


class ApplyConflict(ApplyError):
    """409: the apply would change fields other managers own. ``conflicts`` holds
    (manager as the message names it, field path) pairs."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        causes = [
            {"reason": "FieldManagerConflict", "message": f"conflict with {who}", "field": path}
            for who, path in conflicts
        ]
        super().__init__(409, "Conflict", _conflict_message(conflicts), {"causes": causes})


def _conflict_message(conflicts: list[tuple[str, str]]) -> str:
    if len(conflicts) == 1:
        who, path = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {who}: {path}"
    by_manager: dict[str, list[str]] = {}
    for who, path in conflicts:
        by_manager.setdefault(who, []).append(path)
    lines: list[str] = []
    for who in sorted(by_manager):
        lines.append(f"conflicts with {who}:")
        lines.extend(f"- {path}" for path in by_manager[who])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


class _Untyped(Exception):
    """The object does not fit the list types (an item without its key, duplicates)."""


# --------------------------------------------------------------------------- list types


def default_list_types(path: Path) -> tuple[str, tuple[str, ...]]:
    """What SMD deduces for an object without a schema: lists atomic, dicts granular
    with every key a member (``"deduced"``)."""
    return ("deduced", ())


_OBJECT_META: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "labels": ("map", ()),
    "annotations": ("map", ()),
    "finalizers": ("set", ()),
    "ownerReferences": ("map", ("uid",)),
    "managedFields": ("atomic", ()),
}
# Dicts with free keys anywhere in a built-in kind.
_FREE_MAPS: Final = frozenset(
    {"labels", "annotations", "data", "binaryData", "stringData", "nodeSelector", "matchLabels"}
)
_Table = dict[tuple[str, ...], tuple[str, tuple[str, ...]]]
_POD_SPEC: Final[_Table] = {
    ("containers",): ("map", ("name",)),
    ("initContainers",): ("map", ("name",)),
    ("ephemeralContainers",): ("map", ("name",)),
    ("containers", "ports"): ("map", ("containerPort", "protocol")),
    ("initContainers", "ports"): ("map", ("containerPort", "protocol")),
    ("containers", "env"): ("map", ("name",)),
    ("initContainers", "env"): ("map", ("name",)),
    ("containers", "volumeMounts"): ("map", ("mountPath",)),
    ("initContainers", "volumeMounts"): ("map", ("mountPath",)),
    ("volumes",): ("map", ("name",)),
    ("imagePullSecrets",): ("map", ("name",)),
}
_CONDITIONS: Final[_Table] = {("status", "conditions"): ("map", ("type",))}
_SELECTOR_ATOMIC: Final[_Table] = {("spec", "selector"): ("atomic", ())}
_BUILTIN_KINDS: Final[dict[tuple[str, str], _Table]] = {
    ("apps/v1", "Deployment"): {
        **_SELECTOR_ATOMIC,
        **_CONDITIONS,
        **{("spec", "template", "spec", *k): v for k, v in _POD_SPEC.items()},
    },
    ("v1", "Service"): {
        ("spec", "ports"): ("map", ("port", "protocol")),
        ("spec", "selector"): ("map", ()),
        **_CONDITIONS,
    },
    ("policy/v1", "PodDisruptionBudget"): {**_SELECTOR_ATOMIC, **_CONDITIONS},
    ("networking.k8s.io/v1", "NetworkPolicy"): {("spec", "podSelector"): ("atomic", ())},
    ("v1", "ResourceQuota"): {
        ("spec", "hard"): ("map", ()),
        ("status", "hard"): ("map", ()),
        ("status", "used"): ("map", ()),
    },
    ("rbac.authorization.k8s.io/v1", "Role"): {("rules",): ("atomic", ())},
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): {("rules",): ("atomic", ())},
    ("v1", "Namespace"): {**_CONDITIONS},
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): {
        ("spec", "versions"): ("map", ("name",)),
        **_CONDITIONS,
    },
}
# Built-in kinds are typed: their dicts are structs unless listed as free maps.
_TYPED_KINDS: Final = frozenset(
    {
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "ServiceAccount"),
        ("v1", "Event"),
        ("events.k8s.io/v1", "Event"),
        ("coordination.k8s.io/v1", "Lease"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        *_BUILTIN_KINDS,
    }
)


def builtin_list_types(api_version: str, kind: str) -> ListTypes:
    """The list (and dict) types of a built-in kind; ``default_list_types`` for others."""
    if (api_version, kind) not in _TYPED_KINDS:
        return default_list_types
    table = _BUILTIN_KINDS.get((api_version, kind), {})

    def types(path: Path) -> tuple[str, tuple[str, ...]]:
        found = table.get(tuple(str(p) for p in path))
        if found is not None:
            return found
        if path and path[-1] in _FREE_MAPS:
            return ("map", ())
        # Unknown lists of a typed kind are atomic unless listed; dicts are structs
        # (the caller asks about dicts with the "struct" default in mind).
        return ("struct", ())

    return types


def _kind_at(lists: ListTypes, path: Path, cache: dict[Path, tuple[str, tuple[str, ...]]]) -> Any:
    found = cache.get(path)
    if found is None:
        if len(path) >= 2 and path[0] == "metadata":
            found = _OBJECT_META.get(str(path[1]), ("struct", ())) if len(path) == 2 else None
        elif path == ("metadata",) or path == ():
            found = ("struct", ())
        if found is None:
            found = lists(path)
        cache[path] = found
    return found


class _Schema:
    """``ListTypes`` with metadata always typed as ObjectMeta, memoised per call."""

    __slots__ = ("_cache", "_lists")

    def __init__(self, lists: ListTypes) -> None:
        self._lists = lists
        self._cache: dict[Path, tuple[str, tuple[str, ...]]] = {}

    def list_type(self, path: Path) -> tuple[str, tuple[str, ...]]:
        kind, keys = _kind_at(self._lists, path, self._cache)
        if kind == "set" or (kind == "map" and keys):
            return kind, keys
        return ("atomic", ())

    def dict_type(self, path: Path) -> str:
        kind, _ = _kind_at(self._lists, path, self._cache)
        if kind in ("struct", "atomic"):
            return str(kind)
        # A free map, and what an untyped list-type answer means for a dict: granular.
        return "map"


# --------------------------------------------------------------------------- path elements


def _go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it: compact, sorted keys, HTML escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _key_element(item: Any, keys: tuple[str, ...], path: Path) -> str:
    if not isinstance(item, dict):
        raise _Untyped(f"{_dotted(path)}: expected map, got {_go_json(item)}")
    fields = []
    for name in sorted(keys):
        if name in item:
            fields.append(f"{_go_json(name)}:{_go_json(item[name])}")
        elif name in _KEY_DEFAULTS:
            fields.append(f"{_go_json(name)}:{_go_json(_KEY_DEFAULTS[name])}")
        else:
            raise _Untyped(
                f"{_dotted(path)}: associative list with keys has an element that omits key "
                f'field "{name}" (and doesn\'t have default value)'
            )
    return "k:{" + ",".join(fields) + "}"


def _element(item: Any, kind: str, keys: tuple[str, ...], path: Path) -> str:
    if kind == "set":
        if isinstance(item, dict | list):
            raise _Untyped(f"{_dotted(path)}: set elements must be scalars")
        return "v:" + _go_json(item)
    return _key_element(item, keys, path)


def _duplicate(path: Path, element: str) -> _Untyped:
    return _Untyped(f"{_dotted(path)}: duplicate entries for key {element_string(element)}")


def _dotted(path: Path) -> str:
    return "".join(f".{p}" for p in path)


def _go_scalar(value: Any) -> str:
    """value.ToString: strings quoted as Go's %q, numbers and booleans bare."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_go_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={_go_scalar(v)}" for k, v in value.items())
    return str(value)


def element_string(element: str) -> str:
    """A ``fieldsV1`` key as fieldpath.PathElement.String() prints it in messages:
    ``.image``, ``[name="nginx"]``, ``[="finalizer"]``, ``[0]``."""
    prefix, body = element[:2], element[2:]
    if prefix == "f:":
        return "." + body
    if prefix == "k:":
        fields = json.loads(body)
        return "[" + ",".join(f"{k}={_go_scalar(v)}" for k, v in sorted(fields.items())) + "]"
    if prefix == "v:":
        return f"[={_go_scalar(json.loads(body))}]"
    return f"[{body}]"


def _element_order(element: str) -> tuple[Any, ...]:
    """fieldpath.PathElement.Compare: fields by name, then keys, values, indices."""
    prefix, body = element[:2], element[2:]
    if prefix == "f:":
        return (0, body)
    if prefix == "k:":
        return (1, tuple((k, _value_order(v)) for k, v in sorted(json.loads(body).items())))
    if prefix == "v:":
        return (2, _value_order(json.loads(body)))
    return (3, int(body))


def _value_order(value: Any) -> tuple[Any, ...]:
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (3, _go_json(value))


# --------------------------------------------------------------------------- sets


def _leaf() -> Trie:
    return {MEMBER: _EMPTY}


def union(a: Trie, b: Trie) -> Trie:
    if not a:
        return b
    if not b:
        return a
    out = dict(a)
    for key, child in b.items():
        mine = out.get(key)
        if mine is None:
            out[key] = child
        elif key != MEMBER:
            out[key] = union(mine, child)
    return out


def difference(a: Trie, b: Trie) -> Trie:
    """The paths of ``a`` not in ``b`` (exact paths: a member of ``b`` does not take
    ``a``'s paths below it)."""
    if not a or not b:
        return a
    out: Trie = {}
    for key, child in a.items():
        theirs = b.get(key)
        if theirs is None:
            out[key] = child
        elif key != MEMBER:
            rest = difference(child, theirs)
            if rest:
                out[key] = rest
    return out


def intersection(a: Trie, b: Trie) -> Trie:
    out: Trie = {}
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    for key, child in small.items():
        other = big.get(key)
        if other is None:
            continue
        if key == MEMBER:
            out[MEMBER] = _EMPTY
        else:
            both = intersection(child, other)
            if both:
                out[key] = both
    return out


def paths(trie: Trie, prefix: str = "") -> list[str]:
    """The member paths of a set, sorted, as fieldpath.Path.String() prints them."""
    out: list[str] = []
    for key in sorted(trie, key=_sort_key):
        if key == MEMBER:
            out.append(prefix)
            continue
        out.extend(paths(trie[key], prefix + element_string(key)))
    return out


def _sort_key(element: str) -> tuple[Any, ...]:
    return (-1,) if element == MEMBER else _element_order(element)


# --------------------------------------------------------------------------- fieldsV1


def to_fields_v1(trie: Trie) -> dict[str, Any]:
    """The wire form: ``"."`` first, then elements in SMD's order, leaves as ``{}``."""
    return _emit(trie, {})


def _emit(trie: Trie, out: dict[str, Any]) -> dict[str, Any]:
    keys = sorted(trie)
    # Plain string order puts "." first and agrees with SMD's while every element is
    # a field name, which the last (greatest) key tells.
    if len(keys) > 1 and not keys[-1].startswith("f:"):
        keys.sort(key=_sort_key)
    for key in keys:
        if key == MEMBER:
            continue
        child = trie[key]
        if len(child) == 1 and MEMBER in child:
            out[key] = {}
        else:
            out[key] = _emit(child, {MEMBER: {}} if MEMBER in child else {})
    return out


def from_fields_v1(raw: Any) -> Trie:
    """Parse ``fieldsV1``; ValueError when it is not a field set."""
    if not isinstance(raw, dict):
        raise ValueError("fieldsV1 must be an object")
    return _parse_node(raw, top=True)


def _parse_node(raw: dict[str, Any], *, top: bool = False) -> Trie:
    out: Trie = {}
    if not raw and not top:
        return _leaf()
    for key, child in raw.items():
        if not isinstance(child, dict):
            raise ValueError(f"expected an object under {key!r}")
        if key == MEMBER:
            if child or top:
                raise ValueError("'.' must be an empty object inside a field")
            out[MEMBER] = _EMPTY
            continue
        prefix = key[:2]
        if prefix == "f:":
            out[key] = _parse_node(child)
        elif prefix == "k:":
            fields = json.loads(key[2:])
            if not isinstance(fields, dict) or not fields:
                raise ValueError(f"invalid key element {key!r}")
            canon = ",".join(f"{_go_json(k)}:{_go_json(v)}" for k, v in sorted(fields.items()))
            out["k:{" + canon + "}"] = _parse_node(child)
        elif prefix == "v:":
            out["v:" + _go_json(json.loads(key[2:]))] = _parse_node(child)
        elif prefix == "i:":
            out[f"i:{int(key[2:])}"] = _parse_node(child)
        else:
            raise ValueError(f"unknown path element {key!r}")
    return out


# --------------------------------------------------------------------------- walking objects


def _whole(value: Any, path: Path, schema: _Schema) -> Trie:
    """Every path of ``value`` as a member (what Compare adds or removes for a subtree)."""
    node = _leaf()
    if isinstance(value, dict):
        if value and schema.dict_type(path) != "atomic":
            for key, child in value.items():
                node[f"f:{key}"] = _whole(child, (*path, key), schema)
    elif isinstance(value, list) and value:
        kind, keys = schema.list_type(path)
        if kind != "atomic":
            for item in value:
                pe = _element(item, kind, keys, path)
                if pe in node:
                    raise _Untyped(
                        f"{_dotted(path)}: duplicate entries for key {element_string(pe)}"
                    )
                node[pe] = _leaf() if kind == "set" else _whole_item(item, path, schema)
    return node


def _whole_item(item: dict[str, Any], path: Path, schema: _Schema) -> Trie:
    node = _leaf()
    for key, child in item.items():
        node[f"f:{key}"] = _whole(child, (*path, key), schema)
    return node


def _index(items: list[Any], kind: str, keys: tuple[str, ...], path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        pe = _element(item, kind, keys, path)
        if pe in out:
            raise _duplicate(path, pe)
        out[pe] = item
    return out


@dataclass(slots=True)
class _Comparison:
    added: Trie
    modified: Trie
    removed: Trie


def compare(old: Any, new: Any, lists: ListTypes, ignore: Iterable[str] = ()) -> _Comparison:
    """SMD's Compare of two whole objects: the paths ``new`` added, modified (leaves
    whose value changed) and removed. Top-level fields in ``ignore`` are left out, as
    the server's reset fields are; ``metadata.managedFields`` is never compared."""
    schema = _Schema(lists)
    result = _Comparison({}, {}, {})
    skip = {"managedFields"}
    ignored = set(ignore)
    for key in old.keys() | new.keys() if isinstance(old, dict) else new.keys():
        if key in ignored:
            continue
        lhs, rhs = old.get(key, _MISSING), new.get(key, _MISSING)
        if key == "metadata" and isinstance(lhs, dict) and isinstance(rhs, dict):
            lhs = {k: v for k, v in lhs.items() if k not in skip}
            rhs = {k: v for k, v in rhs.items() if k not in skip}
        _compare_into(result, f"f:{key}", lhs, rhs, (key,), schema)
    return result


def _compare_into(
    out: _Comparison, element: str, lhs: Any, rhs: Any, path: Path, schema: _Schema
) -> None:
    added, modified, removed = _compare(lhs, rhs, path, schema)
    if added:
        out.added[element] = added
    if modified:
        out.modified[element] = modified
    if removed:
        out.removed[element] = removed


_NOTHING: Final[tuple[Trie, Trie, Trie]] = ({}, {}, {})


def _same(lhs: Any, rhs: Any) -> bool:
    """Equal JSON, fast: Python's == in C first, then orjson to keep true apart from 1."""
    return bool(lhs == rhs) and orjson.dumps(lhs) == orjson.dumps(rhs)


def _compare(lhs: Any, rhs: Any, path: Path, schema: _Schema) -> tuple[Trie, Trie, Trie]:
    if lhs is _MISSING:
        return _whole(rhs, path, schema), {}, {}
    if rhs is _MISSING:
        return {}, {}, _whole(lhs, path, schema)
    if type(lhs) is type(rhs) and isinstance(lhs, str | int | float | bool):
        return _NOTHING if lhs == rhs else ({}, _leaf(), {})
    if lhs is rhs or _same(lhs, rhs):
        return _NOTHING
    if isinstance(lhs, dict) and isinstance(rhs, dict):
        if (not lhs and not rhs) or schema.dict_type(path) == "atomic":
            return ({}, {}, {}) if json_equal(lhs, rhs) else ({}, _leaf(), {})
        sub = _Comparison({}, {}, {})
        for key in lhs.keys() | rhs.keys() if lhs.keys() != rhs.keys() else lhs.keys():
            left, right = lhs.get(key, _MISSING), rhs.get(key, _MISSING)
            if left is right:  # shared, unchanged subtree: nothing to walk
                continue
            _compare_into(sub, f"f:{key}", left, right, (*path, key), schema)
        return sub.added, sub.modified, sub.removed
    if isinstance(lhs, list) and isinstance(rhs, list):
        kind, keys = schema.list_type(path)
        if kind == "atomic" or (not lhs and not rhs):
            return ({}, {}, {}) if json_equal(lhs, rhs) else ({}, _leaf(), {})
        left_items = _index(lhs, kind, keys, path)
        right_items = _index(rhs, kind, keys, path)
        sub = _Comparison({}, {}, {})
        for pe in left_items.keys() | right_items.keys():
            left, right = left_items.get(pe, _MISSING), right_items.get(pe, _MISSING)
            if kind == "set":
                if left is _MISSING:
                    sub.added[pe] = _leaf()
                elif right is _MISSING:
                    sub.removed[pe] = _leaf()
            elif left is _MISSING:
                sub.added[pe] = _whole_item(right, path, schema)
            elif right is _MISSING:
                sub.removed[pe] = _whole_item(left, path, schema)
            else:
                a, m, r = _compare(left, right, path, schema)
                if a:
                    sub.added[pe] = a
                if m:
                    sub.modified[pe] = m
                if r:
                    sub.removed[pe] = r
        return sub.added, sub.modified, sub.removed
    if (lhs is None and rhs) or (rhs is None and lhs):
        # null and a non-empty map or list are the same type in a schema: an atomic
        # value is modified, a granular one changed only in what hangs below.
        value = lhs if rhs is None else rhs
        if _is_atomic(value, path, schema):
            return {}, _leaf(), {}
        below = {k: v for k, v in _whole(value, path, schema).items() if k != MEMBER}
        return ({}, {}, below) if rhs is None else (below, {}, {})
    if isinstance(lhs, dict | list) or isinstance(rhs, dict | list):
        # The value changed shape: the node is modified, and what hung below the old
        # shape is removed while what hangs below the new one is added.
        below_old = {k: v for k, v in _whole(lhs, path, schema).items() if k != MEMBER}
        below_new = {k: v for k, v in _whole(rhs, path, schema).items() if k != MEMBER}
        return below_new, _leaf(), below_old
    return ({}, {}, {}) if json_equal(lhs, rhs) else ({}, _leaf(), {})


def _is_atomic(value: Any, path: Path, schema: _Schema) -> bool:
    if isinstance(value, dict):
        return schema.dict_type(path) == "atomic"
    return schema.list_type(path)[0] == "atomic"


def applied_fields(config: dict[str, Any], lists: ListTypes) -> Trie:
    """SMD's ToFieldSet of an applied configuration: leaves, list items and free-map
    keys are members; declared struct fields only when null or empty."""
    return _struct_fields(config, (), _Schema(lists), "struct")


def _struct_fields(value: dict[str, Any], path: Path, schema: _Schema, kind: str) -> Trie:
    node: Trie = {}
    for key, child in value.items():
        sub_path = (*path, key)
        if isinstance(child, dict):
            child_kind = schema.dict_type(sub_path)
            if not child or child_kind == "atomic":
                sub = _leaf()
            else:
                sub = _struct_fields(child, sub_path, schema, child_kind)
        elif isinstance(child, list):
            list_kind, keys = schema.list_type(sub_path)
            if list_kind == "atomic":
                sub = _leaf()
            else:
                sub = _list_fields(child, sub_path, schema, list_kind, keys)
        else:
            sub = _leaf()
        if kind != "struct" and MEMBER not in sub:
            sub = {MEMBER: _EMPTY, **sub}
        if sub:
            node[f"f:{key}"] = sub
    return node


def _list_fields(
    items: list[Any], path: Path, schema: _Schema, kind: str, keys: tuple[str, ...]
) -> Trie:
    node: Trie = {}
    for item in items:
        pe = _element(item, kind, keys, path)
        if pe in node:
            raise _duplicate(path, pe)
        if kind == "set":
            node[pe] = _leaf()
        else:
            node[pe] = {MEMBER: _EMPTY, **_struct_fields(item, path, schema, "struct")}
    return node


# --------------------------------------------------------------------------- merge and prune


def _merge(lhs: Any, rhs: Any, path: Path, schema: _Schema) -> Any:
    """SMD's Merge: the applied value wins; granular maps and lists merge below."""
    if lhs is _MISSING:
        return rhs
    if isinstance(lhs, dict) and isinstance(rhs, dict):
        if schema.dict_type(path) == "atomic":
            return rhs
        out = dict(lhs)
        for key, value in rhs.items():
            out[key] = _merge(lhs.get(key, _MISSING), value, (*path, key), schema)
        return out
    if isinstance(lhs, list) and isinstance(rhs, list):
        kind, keys = schema.list_type(path)
        if kind == "atomic":
            return rhs
        return _merge_list(lhs, rhs, path, schema, kind, keys)
    return rhs


def _merge_list(
    lhs: list[Any], rhs: list[Any], path: Path, schema: _Schema, kind: str, keys: tuple[str, ...]
) -> list[Any]:
    """Items keep the live order, except that items both sides hold follow the applied
    order and items only the applier has come where it put them (SMD's merge order)."""
    right = _index(rhs, kind, keys, path)
    left_pes = [_element(item, kind, keys, path) for item in lhs]
    left: dict[str, Any] = {}
    for pe, item in zip(left_pes, lhs, strict=True):
        left.setdefault(pe, item)
    left_order = list(dict.fromkeys(left_pes))
    right_order = list(right)
    shared = [pe for pe in right_order if pe in left]
    next_shared = 0
    done: set[str] = set()
    out: list[Any] = []

    def merged(pe: str) -> Any:
        if kind == "set":
            return right[pe]
        return _merge(left.get(pe, _MISSING), right[pe], path, schema)

    li = ri = 0
    while li < len(left_order) or ri < len(right_order):
        if li < len(left_order) and ri < len(right_order):
            pe = left_order[li]
            if pe == right_order[ri]:
                done.add(pe)
                out.append(merged(pe))
                li += 1
                ri += 1
                next_shared += 1
                continue
            if pe in right and next_shared < len(shared) and shared[next_shared] != pe:
                li += 1
                continue
        if li < len(left_order):
            pe = left_order[li]
            if pe not in right:
                out.append(left[pe])
                li += 1
                continue
            if pe in done:
                li += 1
        if ri < len(right_order):
            pe = right_order[ri]
            done.add(pe)
            out.append(merged(pe))
            ri += 1
            if next_shared < len(shared) and shared[next_shared] == pe:
                next_shared += 1
    return out


def _prune(value: Any, last: Trie, owned: Trie, path: Path, schema: _Schema) -> Any:
    """Remove what the applier applied last time (``last``) and nobody owns now: a
    path goes when neither it nor anything below it is in ``owned``."""
    if isinstance(value, dict):
        out = dict(value)
        for key in value:
            element = f"f:{key}"
            mine = last.get(element)
            if mine is None:
                continue
            theirs = owned.get(element)
            if theirs is None:
                del out[key]
            elif len(theirs) > 1 or MEMBER not in theirs:
                out[key] = _prune(value[key], mine, theirs, (*path, key), schema)
        return out
    if isinstance(value, list):
        kind, keys = schema.list_type(path)
        if kind == "atomic":
            return value
        kept = []
        for item in value:
            pe = _element(item, kind, keys, path)
            mine = last.get(pe)
            if mine is None:
                kept.append(item)
                continue
            theirs = owned.get(pe)
            if theirs is None:
                continue
            if kind == "map" and (len(theirs) > 1 or MEMBER not in theirs):
                item = _prune(item, mine, theirs, path, schema)
            kept.append(item)
        return kept
    return value


# --------------------------------------------------------------------------- managedFields


@dataclass(slots=True)
class Entry:
    """One ``managedFields`` entry, its fields as a trie."""

    manager: str
    operation: str
    api_version: str
    time: str | None
    fields: Trie
    subresource: str = ""
    # The stored wire form this entry was read from, sent back as is while unchanged.
    raw: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def identity(self) -> tuple[str, str, str, str]:
        # Appliers keep one entry across API versions; updaters one per version.
        version = "" if self.operation == APPLY else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def printed(self) -> str:
        """How conflict messages name this manager (the time is never part of it)."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource, ensure_ascii=False)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text

    def encode(self) -> dict[str, Any]:
        if self.raw is not None:
            return self.raw
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = FIELDS_TYPE
        out["fieldsV1"] = to_fields_v1(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


Managed = dict[tuple[str, str, str, str], Entry]


# Decoded stored managedFields by the identity of the stored list (kept alive here, so
# the id is not reused): objects in the store are never mutated, and most writes
# start from the managedFields of the live object.
_DECODED: dict[int, tuple[list[Any], Managed]] = {}
_DECODED_MAX: Final = 4096


def decode(entries: Any, *, stored: bool = False) -> Managed:
    """``metadata.managedFields`` as the server reads it; ValueError when an entry is not
    one it would accept (then the server falls back to the live object's). ``stored``:
    the list is a stored object's, never mutated, which is decoded once and whose
    entries are written back unchanged while their fields are."""
    if not isinstance(entries, list):
        raise ValueError("managedFields must be a list")
    if stored:
        hit = _DECODED.get(id(entries))
        if hit is not None and hit[0] is entries:
            return dict(hit[1])
    managed: Managed = {}
    for i, raw in enumerate(entries):
        if not isinstance(raw, dict):
            raise ValueError(f"managed fields entry {i} is not an object")
        operation = raw.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ValueError("operation must be `Apply` or `Update`")
        if not raw.get("apiVersion"):
            raise ValueError("apiVersion must not be empty")
        if raw.get("fieldsType") != FIELDS_TYPE:
            raise ValueError(f"invalid fieldsType in managed fields entry {i}")
        entry = Entry(
            str(raw.get("manager", "")),
            operation,
            str(raw["apiVersion"]),
            raw.get("time"),
            from_fields_v1(raw.get("fieldsV1", {})),
            str(raw.get("subresource", "")),
            raw if stored else None,
        )
        managed[entry.identity] = entry
    if stored:
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[id(entries)] = (entries, managed)
        return dict(managed)
    return managed


def encode(managed: Managed) -> list[dict[str, Any]]:
    """Entries in the server's order: Apply before Update, then by time, manager,
    apiVersion and subresource."""
    entries = sorted(
        managed.values(),
        key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource),
    )
    return [e.encode() for e in entries]


def _is_reset(sent: Any) -> bool:
    """``managedFields: []`` or ``[{}]``: the client asks to forget all ownership."""
    return isinstance(sent, list) and (not sent or (len(sent) == 1 and sent[0] == {}))


def _cap_updaters(managed: Managed) -> None:
    """Keep at most MAX_UPDATE_MANAGERS Update entries: fold the oldest into one
    ``ancient-changes`` entry per apiVersion."""
    updaters = [k for k, e in managed.items() if e.operation == UPDATE]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda k: (managed[k].time or "", json.dumps(k)))
    first_of_version: dict[str, tuple[str, str, str, str]] = {}
    remaining = len(updaters)
    for ident in updaters:
        if remaining <= MAX_UPDATE_MANAGERS:
            break
        entry = managed[ident]
        bucket = (ANCIENT_CHANGES, UPDATE, entry.api_version, "")
        first = first_of_version.get(entry.api_version)
        if first is None:
            first_of_version[entry.api_version] = ident
            continue
        if bucket not in managed:
            seed = managed.pop(first)
            managed[bucket] = Entry(
                ANCIENT_CHANGES, UPDATE, entry.api_version, seed.time, seed.fields
            )
        held = managed[bucket]
        managed[bucket] = Entry(
            ANCIENT_CHANGES, UPDATE, entry.api_version, entry.time, union(entry.fields, held.fields)
        )
        del managed[ident]
        remaining -= 1


def _take_from_others(
    managed: Managed, changes: _Comparison, skip: tuple[str, str, str, str] | None
) -> None:
    """Other managers lose what changed under them (Update always forces)."""
    taken = union(changes.modified, changes.added)
    for ident in list(managed):
        if ident == skip:
            continue
        entry = managed[ident]
        rest = difference(difference(entry.fields, taken), changes.removed)
        if rest is entry.fields:
            continue
        if rest:
            managed[ident] = Entry(
                entry.manager,
                entry.operation,
                entry.api_version,
                entry.time,
                rest,
                entry.subresource,
            )
        else:
            del managed[ident]


def _update(
    managed: Managed,
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    subresource: str,
    lists: ListTypes,
    ignore: Iterable[str],
) -> None:
    changes = compare(old, new, lists, ignore)
    _take_from_others(managed, changes, None)
    gained = difference(union(changes.modified, changes.added), _STRIPPED)
    if not gained:
        return
    ident = (manager, UPDATE, api_version, subresource)
    previous = managed.get(ident)
    fields = union(previous.fields, gained) if previous is not None else gained
    managed[ident] = Entry(manager, UPDATE, api_version, now, fields, subresource)


# What the Go zero value of a built-in kind holds once serialized (structs that are
# not pointers, fields without omitempty): a create is compared with it, so these
# nodes exist before and do not become members ("f:spec" without ".").
_ZERO: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("apps/v1", "Deployment"): {
        "spec": {
            "selector": None,
            "template": {"metadata": {}, "spec": {"containers": None}},
            "strategy": {},
        },
        "status": {},
    },
    ("v1", "Service"): {"spec": {}, "status": {"loadBalancer": {}}},
    ("v1", "Namespace"): {"spec": {}, "status": {}},
    ("coordination.k8s.io/v1", "Lease"): {"spec": {}},
    ("policy/v1", "PodDisruptionBudget"): {"spec": {}, "status": {}},
    ("networking.k8s.io/v1", "NetworkPolicy"): {"spec": {"podSelector": {}}},
    ("v1", "ResourceQuota"): {"spec": {}, "status": {}},
    ("rbac.authorization.k8s.io/v1", "Role"): {"rules": None},
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): {"rules": None},
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): {
        "roleRef": {"apiGroup": "", "kind": "", "name": ""}
    },
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): {
        "roleRef": {"apiGroup": "", "kind": "", "name": ""}
    },
}


def _zero(obj: dict[str, Any]) -> dict[str, Any]:
    """The empty object a create is compared with: the Go zero value of a built-in
    kind, nothing at all for a custom resource (unstructured)."""
    gvk = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if gvk not in _TYPED_KINDS:
        return {}
    return {"metadata": {}, **_ZERO.get(gvk, {})}


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    now: str,
    subresource: str = "",
    lists: ListTypes = default_list_types,
    ignore: Iterable[str] = (),
) -> None:
    """Set ``new["metadata"]["managedFields"]`` for a create (``old`` None), update or
    patch by ``manager`` (operation Update), in place.

    ``new`` carries the managedFields the client sent (or the live ones a patch kept):
    ``[]`` or ``[{}]`` resets ownership; a valid non-empty list is taken as the new
    ownership; anything else (absent, invalid) falls back to the live object's, as the
    server silently does. A subresource write always starts from the live object's.
    An existing object without managedFields stays untracked until its first apply.
    ``old`` is the stored object and must never be mutated: its decoded managedFields
    are remembered by identity, so that a patch need not parse them again.
    ``ignore``: top-level fields the server resets for this request (``status`` on the
    main resource of a kind with a status subresource; ``spec`` and ``metadata`` on
    ``status``): no manager gains or loses them.
    """
    meta = new.setdefault("metadata", {})
    live = ((old or {}).get("metadata") or {}).get("managedFields") or []
    managed = _starting_point(live, meta.get("managedFields"), subresource)
    if not managed and old is not None:
        meta.pop("managedFields", None)
        return
    try:
        _update(
            managed,
            old if old is not None else _zero(new),
            new,
            manager=manager or "unknown",
            api_version=api_version,
            now=now,
            subresource=subresource,
            lists=lists,
            ignore=ignore,
        )
    except _Untyped:
        # UpdateNoErrors: an object the types cannot index keeps the live ownership.
        if live:
            meta["managedFields"] = live
        else:
            meta.pop("managedFields", None)
        return
    _cap_updaters(managed)
    if managed:
        meta["managedFields"] = encode(managed)
    else:
        meta.pop("managedFields", None)


def _starting_point(live: Any, sent: Any, subresource: str) -> Managed:
    def live_or_empty() -> Managed:
        try:
            return decode(live, stored=True)
        except ValueError:
            return {}

    if subresource:
        return live_or_empty()
    if _is_reset(sent):
        return {}
    try:
        managed = decode(sent, stored=sent is live) if sent is not None else {}
    except ValueError:
        managed = {}
    return managed or live_or_empty()


def validate(entries: Any) -> list[fielderrors.FieldError]:
    """ValidateManagedFields on what is stored: operation, fieldsType, manager."""
    errors: list[fielderrors.FieldError] = []
    if not isinstance(entries, list):
        return errors
    for i, raw in enumerate(entries):
        if not isinstance(raw, dict):
            continue
        base = f"metadata.managedFields[{i}]"
        operation = raw.get("operation", "")
        if not operation:
            errors.append(fielderrors.required(f"{base}.operation", "must not be empty"))
        elif operation not in (APPLY, UPDATE):
            errors.append(
                fielderrors.not_supported(f"{base}.operation", operation, (APPLY, UPDATE))
            )
        fields_type = raw.get("fieldsType", "")
        if fields_type and fields_type != FIELDS_TYPE:
            errors.append(
                fielderrors.invalid_value(f"{base}.fieldsType", fields_type, "must be `FieldsV1`")
            )
        errors.extend(validate_manager(str(raw.get("manager", "")), f"{base}.manager"))
        if len(str(raw.get("subresource", ""))) > 256:
            errors.append(fielderrors.too_long(f"{base}.subresource", 256))
    return errors


def validate_manager(manager: str, field: str = "fieldManager") -> list[fielderrors.FieldError]:
    """ValidateFieldManager: at most 128 bytes, printable characters only."""
    errors: list[fielderrors.FieldError] = []
    if len(manager.encode()) > FIELD_MANAGER_MAX_LENGTH:
        errors.append(fielderrors.too_long(field, FIELD_MANAGER_MAX_LENGTH))
    for i, char in enumerate(manager):
        if not _printable(char):
            detail = f"invalid character U+{ord(char):04X} (at position {i})"
            errors.append(fielderrors.invalid_value(field, manager, detail))
    return errors


def _printable(char: str) -> bool:
    # Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and ASCII space.
    return char == " " or unicodedata.category(char)[0] in "LMNPS"


def default_manager(user_agent: str) -> str:
    """The manager of a write that names none: the user agent up to its first ``/``,
    unprintable characters dropped, cut to 128 bytes (``kubectl/v1.32.0 (linux/amd64)``
    is ``kubectl``; the Python client's ``OpenAPI-Generator/31.0.0/python`` is
    ``OpenAPI-Generator``). An empty result becomes ``unknown`` when recorded."""
    head = user_agent.split("/", 1)[0]
    out: list[str] = []
    size = 0
    for char in head:
        if not _printable(char):
            continue
        width = len(char.encode())
        if size + width > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(char)
        size += width
    return "".join(out)


def apply_options_errors(field_manager: str | None) -> list[fielderrors.FieldError]:
    """ValidatePatchOptions for an apply patch: fieldManager is required and valid."""
    if not field_manager:
        return [fielderrors.required("fieldManager", "is required for apply patch")]
    return validate_manager(field_manager)


def missing_manager_error() -> ApplyError:
    """422 for an apply without ``?fieldManager=``, worded as the real server."""
    errors = apply_options_errors(None)
    return ApplyError(
        422,
        "Invalid",
        fielderrors.invalid_message("PatchOptions", "meta.k8s.io", "", errors),
        {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": _causes(errors)},
    )


def _causes(errors: list[fielderrors.FieldError]) -> list[dict[str, str]]:
    return [{"reason": e.type, "message": e.body(), "field": e.field} for e in errors]


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    force: bool,
    api_version: str,
    now: str,
    lists: ListTypes = default_list_types,
    subresource: str = "",
    ignore: Iterable[str] = (),
    kind: str = "",
) -> dict[str, Any]:
    """Server-side apply of ``config`` by ``manager`` onto ``live`` (None: create).

    ``api_version`` and ``kind`` are those of the URL; the configuration must name
    them (``kind`` defaults to the live object's). The result may share unchanged
    subtrees with ``live`` and ``config``: copy it before mutating either.

    Returns the new object with its managedFields; raises ``ApplyConflict`` (409) when
    another manager owns a field whose value would change and ``force`` is false, and
    ``ApplyError`` for an apply the server refuses before merging (400, 422, 500).
    The caller still applies its own create/update rules (defaults, validation, the
    server-set metadata) to the result.
    """
    if not manager:
        raise missing_manager_error()
    expected_kind = kind or (live or {}).get("kind") or config.get("kind")
    if (config.get("apiVersion"), config.get("kind")) != (api_version, expected_kind):
        raise ApplyError(400, "BadRequest", f"invalid object type: {_gvk(config)}")
    meta = config.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise ApplyError(400, "BadRequest", "metadata.managedFields must be nil")
    base: dict[str, Any] = live if live is not None else {}
    schema = _Schema(lists)
    try:
        managed = _apply_starting_point(base, live is None, api_version, now, subresource, lists)
        config_set = difference(applied_fields(config, lists), _STRIPPED)
    except _Untyped as exc:
        raise _typed_error("failed to create typed patch object", config, exc) from None
    ignored = set(ignore)
    if ignored:
        config_set = {k: v for k, v in config_set.items() if k[2:] not in ignored}
    ident = (manager, APPLY, "", subresource)
    last = managed.get(ident)
    try:
        merged = _merge(base, config, (), schema)
        for name in ignored:
            if name in base:
                merged[name] = base[name]
            else:
                merged.pop(name, None)
        managed[ident] = Entry(
            manager, APPLY, api_version, last.time if last else None, config_set, subresource
        )
        if last is not None and last.fields:
            owned: Trie = {}
            for entry in managed.values():
                owned = union(owned, entry.fields)
            merged = _prune(merged, last.fields, owned, (), schema)
        changes = compare(base, merged, lists, ignored)
    except _Untyped as exc:
        raise _typed_error("failed to merge config", config, exc) from None
    if not force:
        _check_conflicts(managed, ident, changes, base, lists)
    _take_from_others(managed, changes, ident)
    if not managed[ident].fields:
        del managed[ident]
    elif changes.added or changes.modified or changes.removed:
        # As the server, the apply's time moves only when the object changed.
        current = managed[ident]
        managed[ident] = Entry(manager, APPLY, api_version, now, current.fields, subresource)
    merged_meta = dict(merged.get("metadata") or {})
    encoded = encode(managed)
    if encoded:
        merged_meta["managedFields"] = encoded
    else:
        merged_meta.pop("managedFields", None)
    merged["metadata"] = merged_meta
    if manager == "kubectl" and (merged_meta.get("annotations") or {}).get(LAST_APPLIED):
        # kubectl's server-side apply keeps a client-side apply annotation in step.
        merged_meta["annotations"] = {
            **merged_meta["annotations"],
            LAST_APPLIED: _last_applied(config),
        }
    return merged


LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"


def _last_applied(config: dict[str, Any]) -> str:
    """The applied configuration as kubectl's annotation holds it: Go's JSON of the
    object without the annotation itself, newline-terminated."""
    meta = dict(config.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    if "annotations" in meta:
        meta["annotations"] = annotations
    return _go_json({**config, "metadata": meta} if "metadata" in config else config) + "\n"


def _check_conflicts(
    managed: Managed,
    ident: tuple[str, str, str, str],
    changes: _Comparison,
    live: dict[str, Any],
    lists: ListTypes,
) -> None:
    """Raise ApplyConflict for the changed fields other managers own. For ``kubectl``
    moving from client-side apply, fields its last-applied annotation holds at their
    live values are not conflicts: the apply then takes them, as if forced."""
    changed = union(changes.modified, changes.added)
    clashes = [
        (entry, clash)
        for other, entry in managed.items()
        if other != ident and (clash := intersection(entry.fields, changed))
    ]
    if not clashes:
        return
    if ident[0] == "kubectl":
        allowed = _unchanged_last_applied(live, lists)
        clashes = [(e, rest) for e, c in clashes if (rest := difference(c, allowed))]
        if not clashes:
            return
    conflicts = [(entry.printed(), p) for entry, clash in clashes for p in paths(clash)]
    conflicts.sort(key=lambda c: c[0])
    raise ApplyConflict(conflicts)


def _unchanged_last_applied(live: dict[str, Any], lists: ListTypes) -> Trie:
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not raw:
        return {}
    try:
        last = json.loads(raw)
        if not isinstance(last, dict) or last.get("apiVersion") != live.get("apiVersion"):
            return {}
        drift = compare(last, live, lists)
        held = applied_fields(last, lists)
    except (ValueError, _Untyped):
        return {}
    return difference(difference(difference(held, drift.modified), drift.added), drift.removed)


def _apply_starting_point(
    live: dict[str, Any],
    creating: bool,
    api_version: str,
    now: str,
    subresource: str,
    lists: ListTypes,
) -> Managed:
    try:
        managed = decode((live.get("metadata") or {}).get("managedFields") or [], stored=True)
    except ValueError:
        managed = {}
    if not managed and not creating:
        # Fields set before anybody applied belong to "before-first-apply".
        _update(
            managed,
            {},
            live,
            manager=BEFORE_FIRST_APPLY,
            api_version=api_version,
            now=now,
            subresource="",
            lists=lists,
            ignore=(),
        )
        entry = managed.get((BEFORE_FIRST_APPLY, UPDATE, api_version, ""))
        if entry is not None:
            entry.time = None
    return managed


def _gvk(obj: dict[str, Any]) -> str:
    """schema.GroupVersionKind.String(): ``apps/v1, Kind=Deployment``, ``/v1, Kind=Secret``."""
    version = str(obj.get("apiVersion") or "")
    group_version = version if "/" in version else f"/{version}"
    return f"{group_version}, Kind={obj.get('kind') or ''}"


def _typed_error(what: str, obj: dict[str, Any], exc: _Untyped) -> ApplyError:
    meta = obj.get("metadata") or {}
    name = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    return ApplyError(500, "", f"{what} ({name}; {_gvk(obj)}): {exc}")
