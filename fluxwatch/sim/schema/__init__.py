"""Custom resources checked against their CRD's structural schema, as kube-apiserver's
apiextensions-apiserver does on every write.

A write of a custom resource goes, on the real server: prune the fields the schema
does not specify (``Schema.prune``, whose paths are what ``fieldValidation=Strict``
reports), apply the schema's defaults (``Schema.default``), then validate
(``Schema.validate``): kube-openapi's schema validator (types, formats, enums,
bounds, patterns, required), ``x-kubernetes-list-type`` set/map uniqueness, and the
``x-kubernetes-validations`` CEL rules, skipped when an earlier error already makes
the object unfit. Errors are ``FieldError``s with the real paths and words, so the
integrator's 422 reads like the real one. Compile a schema once per CRD version;
each step then walks only the parts of an object that carry something to check.

On updates (``old`` given) errors in values that did not change are dropped, as the
real server's validation ratcheting (on by default since 1.30) drops them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import Any, Final

import orjson
import re2

from fluxwatch.sim import fielderrors as fe
from fluxwatch.sim.schema import cel
from fluxwatch.sim.schema.formats import CEL_TYPED, CHECKS
from fluxwatch.sim.schema.structural import Node, compile_node, structural_errors

__all__ = [
    "Schema",
    "structural_errors",
    "unknown_field_warnings",
    "unknown_fields_error",
]

# metav1.ObjectMeta's JSON fields: what survives in ``metadata`` of a custom resource.
OBJECT_META_FIELDS: Final = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_META_FIELDS: Final = frozenset({"apiVersion", "kind", "metadata"})
# Errors after which the real server does not run CEL rules (hasBlockingErr).
_BLOCKING: Final = frozenset(
    {fe.NOT_SUPPORTED, fe.REQUIRED, fe.TOO_LONG, fe.TOO_MANY, fe.TYPE_INVALID}
)
_BLOCKED_DETAIL: Final = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)
_NIL: Final = "<nil>"  # field.Path's String() of no path


class Schema:
    """One CRD version's ``openAPIV3Schema``, compiled."""

    __slots__ = ("group", "kind", "root")

    def __init__(self, root: Node, kind: str, group: str) -> None:
        self.root = root
        self.kind = kind
        self.group = group

    @classmethod
    def compile(cls, openapi_v3_schema: dict[str, Any], *, kind: str, group: str) -> Schema:
        """``ValueError`` naming each field and problem when the schema is not one
        kube-apiserver accepts (``structural_errors`` gives them as FieldErrors)."""
        errors = structural_errors(openapi_v3_schema)
        if errors:
            raise ValueError(
                f"{fe.qualified_kind(kind, group)} schema is not structural: {fe.aggregate(errors)}"
            )
        return cls(compile_node(openapi_v3_schema), kind, group)

    structural_errors = staticmethod(structural_errors)

    # -- pruning -------------------------------------------------------------------

    def prune(self, obj: dict[str, Any]) -> list[str]:
        """Drop, in place, what the schema does not specify, and JSON nulls of fields
        that are neither nullable nor defaulted; the dropped paths in the real
        decoder's order: unknown ``metadata`` fields, then the pruned paths sorted
        (``spec.foo``, ``spec.list[0].bar``), then those of embedded objects' metadata.
        ``unknown_fields_error``/``unknown_field_warnings`` word them for
        ``fieldValidation=Strict``/``Warn``."""
        meta: list[str] = []
        if isinstance(obj.get("metadata"), dict):
            _prune_meta(obj["metadata"], "metadata", meta)
        pruned: list[str] = []
        embedded: list[str] = []
        _prune(obj, self.root, "", pruned, embedded, root=True)
        pruned.sort()
        _drop_nulls(obj, self.root)
        return meta + pruned + embedded

    # -- defaulting ----------------------------------------------------------------

    def default(self, obj: dict[str, Any]) -> None:
        """Apply the schema's defaults in place (after pruning, as the server does)."""
        _default(obj, self.root)

    # -- validation ----------------------------------------------------------------

    def validate(
        self,
        obj: dict[str, Any],
        old: dict[str, Any] | None = None,
        *,
        preceding: Sequence[fe.FieldError] = (),
    ) -> list[fe.FieldError]:
        """The schema's, list-type's and CEL rules' errors for ``obj``; ``old`` is the
        stored object on an update (transition rules, ratcheting). ``preceding`` are
        errors found before (metadata): like these, they stop the CEL rules."""
        has_old = old is not None
        errors: list[fe.FieldError] = []
        _check(self.root, obj, "", errors, old, has_old)
        if self.root.embedded_below:
            _embedded(self.root, obj, "", errors, top=True)
        if self.root.lists_below and (not has_old or not _list_errors(self.root, old, "")):
            errors.extend(_list_errors(self.root, obj, ""))
        self._run_rules(obj, old, has_old, errors, preceding)
        return errors

    def validate_status(
        self,
        obj: dict[str, Any],
        old: dict[str, Any],
        *,
        preceding: Sequence[fe.FieldError] = (),
    ) -> list[fe.FieldError]:
        """A write to the status subresource: ``status`` alone against its schema
        (kube-openapi names paths from ``status``, so the messages say
        ``conditions[0].reason in body ...`` under field ``status.conditions[0].reason``),
        then list types and CEL rules over the whole object, as the real status
        strategy does."""
        errors: list[fe.FieldError] = []
        sub = self.root.properties.get("status")
        status = obj.get("status")
        if sub is not None and "status" in obj:
            found: list[fe.FieldError] = []
            old_status = old.get("status")
            _check(sub, status, "", found, old_status, "status" in old)
            for e in found:
                where = "status" if e.field == _NIL else f"status.{e.field}"
                errors.append(fe.FieldError(e.type, where, e.value, e.detail))
        if self.root.lists_below:
            new_lists = _list_errors(self.root, obj, "")
            if new_lists and not _list_errors(self.root, old, ""):
                errors.extend(new_lists)
        self._run_rules(obj, old, True, errors, preceding)
        return errors

    def _run_rules(
        self,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        has_old: bool,
        errors: list[fe.FieldError],
        preceding: Sequence[fe.FieldError],
    ) -> None:
        if not self.root.rules_below:
            return
        if any(e.type in _BLOCKING for e in (*preceding, *errors)):
            errors.append(fe.invalid_value(_NIL, "null", _BLOCKED_DETAIL))
        else:
            _rules(self.root, _for_cel(obj), "", errors, _for_cel(old), has_old)

    # -- merge strategy for server-side apply --------------------------------------

    def list_type(self, path: tuple[str | int, ...]) -> tuple[str, tuple[str, ...]]:
        """("atomic"|"set"|"map", map keys) for the list at ``path``."""
        node = self._at(path)
        if node is None or not node.list_type:
            return ("atomic", ())
        return (node.list_type, node.list_map_keys if node.list_type == "map" else ())

    def map_type(self, path: tuple[str | int, ...]) -> str:
        """ "granular" or "atomic" for the object at ``path`` (granular unless said)."""
        node = self._at(path)
        if node is None or not node.map_type:
            return "granular"
        return node.map_type

    def field_type(self, path: tuple[str | int, ...]) -> tuple[str, tuple[str, ...]]:
        """What server-side apply asks of the value at ``path`` (field names only; a
        list's items share its path): a list's type and keys, or for an object
        "struct" (declared fields), "map" (free keys) or "atomic"."""
        node: Node | None = self.root
        for step in path:
            while node is not None and node.items is not None and not node.properties:
                node = node.items
            if node is None:
                return ("deduced", ())
            node = node.properties.get(str(step)) or node.additional
        if node is None:
            return ("deduced", ())
        if node.items is not None or node.type == "array":
            if node.list_type in ("set", "map"):
                return (node.list_type, node.list_map_keys)
            return ("atomic", ())
        if node.map_type == "atomic":
            return ("atomic", ())
        if node.properties:
            return ("struct", ())
        if node.additional is not None or node.preserve_unknown:
            return ("map", ())
        return ("struct", ())

    def _at(self, path: tuple[str | int, ...]) -> Node | None:
        node: Node | None = self.root
        for step in path:
            if node is None:
                return None
            if isinstance(step, int):
                node = node.items
            else:
                node = node.properties.get(step) or node.additional
        return node


# -- pruning -------------------------------------------------------------------------


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _prune(
    x: Any, s: Node | None, path: str, out: list[str], meta: list[str], root: bool = False
) -> None:
    """pruning.PruneWithOptions; ``meta`` collects what embedded objects' metadata
    loses (objectmeta.Coerce, which runs after pruning)."""
    if s is not None and s.preserve_unknown:
        _skip_prune(x, s, path, out, meta)
        return
    if isinstance(x, dict):
        if s is None:
            for k in list(x):
                out.append(_join(path, k))
                del x[k]
            return
        embedded = root or s.embedded
        for k in list(x):
            if embedded and k in _META_FIELDS:
                if k == "metadata" and not root:
                    _prune_meta(x[k], _join(path, k), meta)
                continue
            prop = s.properties.get(k)
            if prop is not None:
                _prune(x[k], prop, _join(path, k), out, meta)
            elif s.additional is not None:
                _prune(x[k], s.additional, _join(path, k), out, meta)
            else:
                out.append(_join(path, k))
                del x[k]
    elif isinstance(x, list):
        items = s.items if s is not None else None
        for i, v in enumerate(x):
            _prune(v, items, f"{path}[{i}]", out, meta)


def _skip_prune(x: Any, s: Node, path: str, out: list[str], meta: list[str]) -> None:
    if isinstance(x, dict):
        for k, v in x.items():
            if s.embedded and k in _META_FIELDS:
                if k == "metadata":
                    _prune_meta(v, _join(path, k), meta)
                continue
            prop = s.properties.get(k)
            if prop is not None:
                _prune(v, prop, _join(path, k), out, meta)
            elif s.additional is not None:
                _prune(v, s.additional, _join(path, k), out, meta)
    elif isinstance(x, list) and s.items is not None:
        for i, v in enumerate(x):
            _skip_prune(v, s.items, f"{path}[{i}]", out, meta)


def _prune_meta(meta: Any, path: str, out: list[str]) -> None:
    """ObjectMeta keeps its own fields only (objectmeta.Coerce drops the rest)."""
    if isinstance(meta, dict):
        for k in list(meta):
            if k not in OBJECT_META_FIELDS:
                out.append(f"{path}.{k}")
                del meta[k]


def _drop_nulls(x: Any, s: Node | None) -> None:
    """PruneNonNullableNullsWithoutDefaults: ``field: null`` of a field that may not
    be null and has no default is the field left out. Like the real one it walks the
    schema, not the value: below a field without one (free-form ``values``) it stops."""
    if s is None:
        return
    if isinstance(x, dict):
        for k in list(x):
            sub = None if s is None else (s.properties.get(k) or s.additional)
            v = x[k]
            if v is None and sub is not None and not sub.nullable and not sub.has_default:
                del x[k]
            else:
                _drop_nulls(v, sub)
    elif isinstance(x, list):
        items = s.items if s is not None else None
        for v in x:
            _drop_nulls(v, items)


def unknown_fields_error(paths: Sequence[str]) -> str:
    """The 400 message of a ``fieldValidation=Strict`` write that had unknown fields."""
    return "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in paths)


def unknown_field_warnings(paths: Sequence[str]) -> list[str]:
    """The ``Warning`` headers of a ``fieldValidation=Warn`` write (299 "...")."""
    return [f'unknown field "{p}"' for p in paths]


# -- defaulting ----------------------------------------------------------------------


def _non_nullable_null(x: Any, s: Node | None) -> bool:
    return x is None and s is not None and s.has_default and not s.nullable


def _default(x: Any, s: Node | None) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        for k, prop in s.properties.items():
            if prop.has_default and (k not in x or _non_nullable_null(x[k], prop)):
                x[k] = _copy(prop.default)
        if not s.defaults_below:
            return
        for k in x:
            known = s.properties.get(k)
            if known is not None:
                _default(x[k], known)
            elif s.additional is not None:
                if _non_nullable_null(x[k], s.additional):
                    x[k] = _copy(s.additional.default)
                _default(x[k], s.additional)
    elif isinstance(x, list) and s.items is not None and (s.items.has_default or s.defaults_below):
        for i in range(len(x)):
            if _non_nullable_null(x[i], s.items):
                x[i] = _copy(s.items.default)
            _default(x[i], s.items)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# -- kube-openapi's schema validator -------------------------------------------------


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return ""


def _field(name: str) -> str:
    """kubeOpenAPIResultToFieldErrors: the error's name less one leading dot."""
    if not name or name == ".":
        return _NIL
    return name[1:] if name.startswith(".") else name


def _go_q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def go_float(x: float) -> str:
    """Go's ``%v`` of a float64: shortest round-trip digits (strconv 'g', precision
    -1), in exponent form when the exponent is below -4 or at least 6."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    text = repr(abs(x))
    mantissa, _, e = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    exp = (int(e) if e else 0) + len(whole.lstrip("0")) - 1
    if not whole.strip("0"):  # 0.000123: the exponent counts the zeros after the point
        exp = (int(e) if e else 0) - (len(frac) - len(frac.lstrip("0"))) - 1
    digits = digits.rstrip("0") or "0"
    if exp < -4 or exp >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    if len(digits) <= exp + 1:
        return f"{sign}{digits}{'0' * (exp + 1 - len(digits))}"
    return f"{sign}{digits[: exp + 1]}.{digits[exp + 1 :]}"


def _go_sharp(v: Any) -> str:
    """Go's ``%#v`` of a JSON value as apimachinery holds it."""
    if isinstance(v, dict):
        inner = ", ".join(f"{_go_q(k)}:{_go_sharp(v[k])}" for k in sorted(v))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(_go_sharp(i) for i in v) + "}"
    if v is None:
        return "interface {}(nil)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    return _go_q(str(v))


def _bad(v: Any) -> Any:
    """A bad value as field.Error prints it."""
    if v is None:
        return "null"  # ErrorBody prints nil as the quoted string "null"
    if isinstance(v, float):
        return fe.Verbatim(go_float(v))
    if isinstance(v, dict | list):
        return fe.Verbatim(_go_sharp(v))
    return v


def _num(v: float | int) -> str:
    return go_float(v) if isinstance(v, float) else str(v)


def _type_error(name: str, type_name: str, got: str) -> fe.FieldError:
    detail = f"{name} in body must be of type {type_name}: {_go_q(got)}"
    return fe.FieldError(fe.TYPE_INVALID, _field(name), got, detail)


def _invalid(name: str, value: Any, detail: str) -> fe.FieldError:
    return fe.FieldError(fe.INVALID, _field(name), _bad(value), detail)


def _check(s: Node, v: Any, name: str, errs: list[fe.FieldError], old: Any, has_old: bool) -> None:
    """Validate ``v`` at kube-openapi path ``name``: the validators in kube-openapi's
    order (type, allOf/anyOf/oneOf/not, string, format, number, array, enum, object)."""
    if has_old and v == old and _deep_equal(v, old):
        return  # ratcheting: an unchanged value keeps whatever it had
    if v is None:
        if s.types and not s.nullable:
            errs.append(_type_error(name, ",".join(s.types), "null"))
        if s.enum is not None and None not in s.enum:
            errs.append(_enum_error(name, v, s.enum))
        return
    kind = _kind(v)
    if s.types or s.format:
        err = _type_check(s, v, kind, name)
        if err is not None:
            errs.append(err)
    if s.has_junctors:
        _junctors(s, v, name, errs)
    if kind == "string":
        _string_check(s, v, name, errs)
    elif kind in ("integer", "number"):
        _number_check(s, v, name, errs)
    elif kind == "array":
        _array_check(s, v, name, errs, old, has_old)
    if s.enum is not None and not _in_enum(v, s.enum):
        errs.append(_enum_error(name, v, s.enum))
    if kind == "object":
        _object_check(s, v, name, errs, old, has_old)


def _type_check(s: Node, v: Any, kind: str, name: str) -> fe.FieldError | None:
    float_int = kind == "number" and float(v).is_integer() and "integer" in s.types
    int_float = kind == "integer" and "number" in s.types
    matches = kind in s.types or float_int or int_float
    if kind not in ("string", "array") and s.format and not matches:
        own = {"integer": "int64", "number": "float64"}.get(kind, "")
        return _type_error(name, s.format, own)
    if s.format and kind in ("string", "array") and not ({"number", "integer"} & set(s.types)):
        return None
    if not matches:
        return _type_error(name, ",".join(s.types), kind)
    return None


def _string_check(s: Node, v: str, name: str, errs: list[fe.FieldError]) -> None:
    if s.max_length is not None and len(v) > s.max_length:
        errs.append(fe.FieldError(fe.TOO_LONG, _field(name), fe.OMIT, _too_long(s.max_length)))
    elif s.min_length is not None and len(v) < s.min_length:
        errs.append(
            _invalid(name, v, f"{name} in body should be at least {s.min_length} chars long")
        )
    elif s.pattern_re is not None and not _matches(s.pattern_re, v):
        errs.append(_invalid(name, v, f"{name} in body should match '{s.pattern}'"))
    if s.format_check and not _formatted(s.format_check, v):
        detail = f"{name} in body must be of type {s.format}: {_go_q(v)}"
        errs.append(fe.FieldError(fe.TYPE_INVALID, _field(name), v, detail))


# Every write is validated whole, and a cluster's objects repeat the same strings
# (intervals, kinds, timestamps): remembering the last answers for a pattern or a format
# keeps re2's per-call cost off the write path.
@functools.lru_cache(maxsize=8192)
def _matches(pattern: re2._Regexp, value: str) -> bool:
    return pattern.search(value) is not None


@functools.lru_cache(maxsize=8192)
def _formatted(check: str, value: str) -> bool:
    return bool(CHECKS[check](value))


def _too_long(limit: int) -> str:
    return f"may not be more than {limit} bytes"  # field.TooLong as of v1.32


def _number_check(s: Node, v: float | int, name: str, errs: list[fe.FieldError]) -> None:
    as_int = isinstance(v, int)
    if s.multiple_of is not None:
        factor = s.multiple_of
        if factor <= 0:
            errs.append(
                _invalid(
                    name,
                    factor,
                    f"factor MultipleOf declared for {name} must be positive: {_num(factor)}",
                )
            )
        elif as_int and float(factor).is_integer():
            if v % int(factor):
                errs.append(
                    _invalid(name, v, f"{name} in body should be a multiple of {int(factor)}")
                )
        else:
            mult = (1 / factor * v) if factor < 1 else (v / factor)
            if abs(mult - round(mult)) > 1e-9 * max(1.0, abs(mult)):
                errs.append(
                    _invalid(
                        name, v, f"{name} in body should be a multiple of {_num(float(factor))}"
                    )
                )
    if s.minimum is not None:
        bound: float | int = int(s.minimum) if as_int else float(s.minimum)
        if (v <= bound) if s.exclusive_minimum else (v < bound):
            words = "greater than" if s.exclusive_minimum else "greater than or equal to"
            errs.append(_invalid(name, v, f"{name} in body should be {words} {_num(bound)}"))
    if s.maximum is not None:
        bound = int(s.maximum) if as_int else float(s.maximum)
        if (v >= bound) if s.exclusive_maximum else (v > bound):
            words = "less than" if s.exclusive_maximum else "less than or equal to"
            errs.append(_invalid(name, v, f"{name} in body should be {words} {_num(bound)}"))


def _array_check(
    s: Node, v: list[Any], name: str, errs: list[fe.FieldError], old: Any, has_old: bool
) -> None:
    if s.items is not None:
        olds = _correlate_items(s, old) if has_old and isinstance(old, list) else None
        for i, item in enumerate(v):
            key = _item_key(s, item) if olds is not None else None
            if olds is not None and key is not None and key in olds:
                _check(s.items, item, f"{name}[{i}]", errs, olds[key], True)
            else:
                _check(s.items, item, f"{name}[{i}]", errs, None, False)
    if s.min_items is not None and len(v) < s.min_items:
        errs.append(
            _invalid(name, len(v), f"{name} in body should have at least {s.min_items} items")
        )
    if s.max_items is not None and len(v) > s.max_items:
        errs.append(fe.FieldError(fe.TOO_MANY, _field(name), len(v), _too_many(s.max_items)))
    if s.unique_items:
        seen: list[Any] = []
        for item in v:
            if any(_deep_equal(item, x) for x in seen):
                errs.append(_invalid(name, "", f"{name} in body shouldn't contain duplicates"))
                break
            seen.append(item)


def _too_many(limit: int) -> str:
    return f"must have at most {limit} items"


def _correlate_items(s: Node, old: list[Any]) -> dict[Any, Any] | None:
    """Old items by key, for lists whose items correlate (list-type map and set)."""
    if s.list_type not in ("map", "set"):
        return None
    out: dict[Any, Any] = {}
    for item in old:
        key = _item_key(s, item)
        if key is not None:
            out.setdefault(key, item)
    return out


def _item_key(s: Node, item: Any) -> Any:
    if s.list_type == "map":
        if not isinstance(item, dict):
            return None
        return json.dumps([item.get(k) for k in s.list_map_keys], sort_keys=True)
    if s.list_type == "set":
        return json.dumps(item, sort_keys=True)
    return None


def _in_enum(v: Any, enum: list[Any]) -> bool:
    for e in enum:
        if _deep_equal(v, e):
            return True
        # reflect's ConvertibleTo: numbers match across int64/float64
        if _kind(v) in ("integer", "number") and _kind(e) in ("integer", "number") and v == e:
            return True
    return False


def _deep_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _enum_error(name: str, v: Any, enum: list[Any]) -> fe.FieldError:
    values = tuple(e if isinstance(e, str) else json.dumps(e, separators=(",", ":")) for e in enum)
    return fe.not_supported(_field(name), _bad(v), values)


def _object_check(
    s: Node, v: dict[str, Any], name: str, errs: list[fe.FieldError], old: Any, has_old: bool
) -> None:
    n = len(v)
    if s.min_properties is not None and n < s.min_properties:
        errs.append(
            _invalid(name, n, f"{name} in body should have at least {s.min_properties} properties")
        )
    if s.max_properties is not None and n > s.max_properties:
        errs.append(fe.FieldError(fe.TOO_MANY, _field(name), n, _too_many(s.max_properties)))
    olds = old if has_old and isinstance(old, dict) else None
    if s.additional is not None:
        for key, value in v.items():
            if key not in s.properties:
                child = f"{name}.{key}"
                if olds is not None and key in olds:
                    _check(s.additional, value, child, errs, olds[key], True)
                else:
                    _check(s.additional, value, child, errs, None, False)
    for key, prop in s.properties.items():
        if key in v:
            child = f"{name}.{key}" if name else key
            if olds is not None and key in olds:
                _check(prop, v[key], child, errs, olds[key], True)
            else:
                _check(prop, v[key], child, errs, None, False)
    for key in s.required:
        if key not in v:
            errs.append(fe.required(_field(f"{name}.{key}")))


def _junctors(s: Node, v: Any, name: str, errs: list[fe.FieldError]) -> None:
    quoted = _go_q(name)
    if s.any_of:
        best: list[fe.FieldError] | None = None
        for sub in s.any_of:
            got: list[fe.FieldError] = []
            _check(sub, v, name, got, None, False)
            if not got:
                best = None
                break
            if best is None:
                best = got
        else:
            errs.append(_invalid("", "", f"{quoted} must validate at least one schema (anyOf)"))
        if best:
            errs.extend(best)
    if s.one_of:
        valid = 0
        first_failure: list[fe.FieldError] | None = None
        for sub in s.one_of:
            got = []
            _check(sub, v, name, got, None, False)
            if not got:
                valid += 1
            elif first_failure is None:
                first_failure = got
        if valid != 1:
            extra = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            errs.append(
                _invalid("", "", f"{quoted} must validate one and only one schema (oneOf). {extra}")
            )
            if valid == 0 and first_failure:
                errs.extend(first_failure)
    if s.all_of:
        valid = 0
        for sub in s.all_of:
            got = []
            _check(sub, v, name, got, None, False)
            if not got:
                valid += 1
            errs.extend(got)
        if valid != len(s.all_of):
            extra = ". None validated" if valid == 0 else ""
            errs.append(_invalid("", "", f"{quoted} must validate all the schemas (allOf){extra}"))
    if s.not_ is not None:
        got = []
        _check(s.not_, v, name, got, None, False)
        if not got:
            errs.append(_invalid("", "", f"{quoted} must not validate the schema (not)"))


# -- x-kubernetes-embedded-resource -----------------------------------------------------

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_MSG: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def _embedded(s: Node, v: Any, path: str, errs: list[fe.FieldError], top: bool = False) -> None:
    """schemaobjectmeta.Validate: objects nested as x-kubernetes-embedded-resource need
    a usable apiVersion and kind (their metadata is for ObjectMeta validation)."""
    if isinstance(v, dict):
        if s.embedded and not top:
            _embedded_type_meta(v, path, errs)
        for k, value in v.items():
            prop = s.properties.get(k)
            if prop is not None:
                _embedded(prop, value, _child_path(path, k), errs)
            elif s.additional is not None:
                _embedded(s.additional, value, f"{path}[{k}]", errs)
    elif isinstance(v, list) and s.items is not None:
        for i, item in enumerate(v):
            _embedded(s.items, item, f"{path}[{i}]", errs)


def _embedded_type_meta(v: dict[str, Any], path: str, errs: list[fe.FieldError]) -> None:
    for key in ("apiVersion", "kind"):
        if key not in v:
            errs.append(fe.required(_child_path(path, key), "must not be empty"))
    for key, value in v.items():
        where = _child_path(path, key)
        if key not in ("apiVersion", "kind"):
            continue
        if not isinstance(value, str):
            errs.append(fe.invalid_value(where, _bad(value), "must be a string"))
        elif not value:
            errs.append(fe.invalid_value(where, value, "must not be empty"))
        elif key == "apiVersion" and value.count("/") > 1:
            errs.append(fe.invalid_value(where, value, f"unexpected GroupVersion string: {value}"))
        elif key == "kind":
            problems = []
            if len(value) > 63:
                problems.append("must be no more than 63 characters")
            if not _DNS1035.match(value.lower()):
                problems.append(_DNS1035_MSG)
            if problems:
                detail = "may have mixed case, but should otherwise match: " + ",".join(problems)
                errs.append(fe.invalid_value(where, value, detail))


# -- x-kubernetes-list-type ----------------------------------------------------------


def _child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _list_errors(s: Node, v: Any, path: str) -> list[fe.FieldError]:
    """ValidateListSetsAndMaps: ``Duplicate value`` for the second of equal set items
    or list-map keys. Paths are field.Path's (``spec.m[key]``)."""
    errs: list[fe.FieldError] = []
    _lists(s, v, path, errs)
    return errs


def _lists(s: Node, v: Any, path: str, errs: list[fe.FieldError]) -> None:
    if not s.lists_below:
        return
    if isinstance(v, dict):
        for k, value in v.items():
            prop = s.properties.get(k)
            if prop is not None:
                _lists(prop, value, _child_path(path, k), errs)
            elif s.additional is not None:
                _lists(s.additional, value, f"{path}[{k}]", errs)
    elif isinstance(v, list):
        if s.list_type == "set":
            for i in _repeats([json.dumps(x, sort_keys=True) for x in v]):
                errs.append(fe.duplicate(f"{path}[{i}]", _bad(v[i])))
        elif s.list_type == "map":
            _list_map(s, v, path, errs)
        if s.items is not None:
            for i, item in enumerate(v):
                _lists(s.items, item, f"{path}[{i}]", errs)


def _repeats(keys: list[str]) -> list[int]:
    """Indexes of the second occurrence of each repeated key."""
    counts: dict[str, int] = {}
    out = []
    for i, key in enumerate(keys):
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 2:
            out.append(i)
    return out


def _list_map(s: Node, v: list[Any], path: str, errs: list[fe.FieldError]) -> None:
    for i, item in enumerate(v):
        if item is not None and not isinstance(item, dict):
            errs.append(
                fe.invalid_value(
                    f"{path}[{i}]", _bad(item), "must be an object for an array of list-type map"
                )
            )
            return
    keys: list[dict[str, Any]] = []
    for item in v:
        keys.append({k: item[k] for k in s.list_map_keys if item and k in item})
    for i in _repeats([json.dumps(k, sort_keys=True) for k in keys]):
        errs.append(fe.duplicate(f"{path}[{i}]", fe.Verbatim(_go_sharp(keys[i]))))


# -- x-kubernetes-validations --------------------------------------------------------


def _cel_typed(s: Node | None, v: Any) -> Any:
    """``v`` as a rule sees it: date/date-time strings as timestamps, durations as
    durations, byte strings as bytes (a string that does not parse stays a string;
    format validation has already reported it)."""
    if s is None or not s.typed_below:
        return v
    if isinstance(v, str):
        parsed = CEL_TYPED[s.format_check](v) if s.format_check in CEL_TYPED else None
        return v if parsed is None else parsed
    if isinstance(v, dict):
        return {k: _cel_typed(s.properties.get(k) or s.additional, x) for k, x in v.items()}
    if isinstance(v, list):
        return [_cel_typed(s.items, x) for x in v]
    return v


# The CEL interpreter converts ``self`` to its own values recursively, in native code: a
# free-form field nested thousands of levels (the API server takes 10,000) overflows
# the C stack. No rule reads that deep, so rules see such a value cut at this depth.
_CEL_DEPTH = 500


def _for_cel(obj: Any) -> Any:
    """``obj``, or for one nested deeper than orjson writes (254 levels: a fast test of
    the rare case), a copy whose containers below ``_CEL_DEPTH`` levels are empty."""
    if not isinstance(obj, dict | list):
        return obj
    try:
        orjson.dumps(obj)
    except TypeError:
        return _cut(obj, _CEL_DEPTH)
    return obj


def _cut(v: Any, depth: int) -> Any:
    if isinstance(v, dict):
        return {k: _cut(x, depth - 1) for k, x in v.items()} if depth > 0 else {}
    if isinstance(v, list):
        return [_cut(x, depth - 1) for x in v] if depth > 0 else []
    return v


def _rules(s: Node, v: Any, path: str, errs: list[fe.FieldError], old: Any, has_old: bool) -> None:
    if v is None or not s.rules_below:
        return
    if has_old and _deep_equal(v, old):
        return  # ratcheting: rules on an unchanged value are not reported
    if s.rules:
        here, before = v, old
        if s.typed_below:
            here = _cel_typed(s, v)
            before = _cel_typed(s, old) if has_old else old
        errs.extend(cel.evaluate(s.rules, s.type, path, here, before, has_old and old is not None))
    for sub in s.all_of:
        _rules(sub, v, path, errs, old, has_old)
    if isinstance(v, dict):
        olds = old if has_old and isinstance(old, dict) and s.map_type != "atomic" else None
        for k, value in v.items():
            prop = s.properties.get(k)
            child = s.additional if prop is None else prop
            if child is None:
                continue
            where = _child_path(path, k) if prop is not None else f"{path}[{k}]"
            if olds is not None and k in olds:
                _rules(child, value, where, errs, olds[k], True)
            else:
                _rules(child, value, where, errs, None, False)
    elif isinstance(v, list) and s.items is not None:
        olds_by_key = (
            _correlate_items(s, old)
            if has_old and isinstance(old, list) and s.list_type == "map"
            else None
        )
        for i, item in enumerate(v):
            key = _item_key(s, item) if olds_by_key is not None else None
            if olds_by_key is not None and key in olds_by_key:
                _rules(s.items, item, f"{path}[{i}]", errs, olds_by_key[key], True)
            else:
                _rules(s.items, item, f"{path}[{i}]", errs, None, False)
