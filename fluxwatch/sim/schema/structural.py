"""A CRD version's ``openAPIV3Schema`` checked for being structural and compiled into
``Node``s, the form every later step (pruning, defaulting, validation, CEL) walks.

kube-apiserver refuses a CRD whose schema is not structural (every field typed, no
types or defaults hidden inside ``allOf``/``anyOf``/``oneOf``/``not``, ``metadata``
limited to ``name``/``generateName``, valid patterns and rules); the checks here are
those of apiextensions' ``schema/validation.go`` and CRD validation, worded as the
server words them so the CRD create path can answer the same 422.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import re2

from fluxwatch.sim import fielderrors as fe
from fluxwatch.sim.schema import formats
from fluxwatch.sim.schema.cel import Rule, RuleCompileError, compile_rule

_TYPES: Final = ("array", "boolean", "integer", "number", "object", "string")
_NO_DEFAULT: Final = object()
# Keys a schema inside allOf/anyOf/oneOf/not may not carry, and the server's words.
_JUNCTOR_FORBIDDEN: Final = (
    ("type", "must be empty to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)


def _pattern_options() -> re2.Options:
    # Go's regexp is RE2 over UTF-8; allow room for the Unicode classes patterns use.
    options = re2.Options()
    options.max_mem = 64 << 20
    return options


_PATTERN_OPTIONS: Final = _pattern_options()


@dataclass(slots=True, eq=False)
class Node:
    """One schema of the tree, with what validation needs precomputed."""

    type: str = ""
    types: tuple[str, ...] = ()  # what the type check accepts (int-or-string: both)
    nullable: bool = False
    int_or_string: bool = False
    preserve_unknown: bool = False
    embedded: bool = False
    properties: dict[str, Node] = field(default_factory=dict)
    additional: Node | None = None
    items: Node | None = None
    required: tuple[str, ...] = ()
    enum: list[Any] | None = None
    default: Any = _NO_DEFAULT
    format: str = ""  # as written, kept only when the server checks it
    format_check: str = ""  # the registry's name for it
    max_length: int | None = None
    min_length: int | None = None
    pattern: str = ""
    pattern_re: re2._Regexp | None = None
    maximum: float | None = None
    minimum: float | None = None
    exclusive_maximum: bool = False
    exclusive_minimum: bool = False
    multiple_of: float | None = None
    max_items: int | None = None
    min_items: int | None = None
    unique_items: bool = False
    max_properties: int | None = None
    min_properties: int | None = None
    all_of: tuple[Node, ...] = ()
    any_of: tuple[Node, ...] = ()
    one_of: tuple[Node, ...] = ()
    not_: Node | None = None
    rules: tuple[Rule, ...] = ()
    list_type: str = ""
    list_map_keys: tuple[str, ...] = ()
    map_type: str = ""
    # Whether this node or one below it has CEL rules / list-type checks / defaults:
    # walks skip the subtrees that have none.
    rules_below: bool = False
    lists_below: bool = False
    typed_below: bool = False  # a date/date-time/duration/byte string here or below
    embedded_below: bool = False  # an x-kubernetes-embedded-resource below the root
    defaults_below: bool = False

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    @property
    def has_junctors(self) -> bool:
        return bool(self.all_of or self.any_of or self.one_of or self.not_ is not None)


def structural_errors(
    raw: Any, path: str = "spec.versions[0].schema.openAPIV3Schema"
) -> list[fe.FieldError]:
    """Why ``raw`` is not a structural schema kube-apiserver accepts, as the field
    errors of a CRD create (``path`` is where the schema sits in the CRD)."""
    errors: list[fe.FieldError] = []
    if not isinstance(raw, dict):
        return [fe.required(path, "")]
    _check_schema(raw, path, errors, where="root")
    return errors


def _check_schema(s: dict[str, Any], path: str, errors: list[fe.FieldError], where: str) -> None:
    """``where``: root, field, item, junctor (inside allOf...), nested_root (embedded)."""
    typ = s.get("type", "")
    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    if where == "junctor":
        for key, words in _JUNCTOR_FORBIDDEN:
            if s.get(key) not in (None, False, "", [], {}):
                errors.append(fe.forbidden(f"{path}.{key}", words))
    else:
        if typ and typ not in _TYPES:
            errors.append(fe.not_supported(f"{path}.type", typ, _TYPES))
        if embedded and typ != "object":
            if not typ:
                errors.append(
                    fe.required(
                        f"{path}.type", "must be object if x-kubernetes-embedded-resource is true"
                    )
                )
            else:
                errors.append(
                    fe.invalid_value(
                        f"{path}.type",
                        typ,
                        "must be object if x-kubernetes-embedded-resource is true",
                    )
                )
        elif not typ and not int_or_string and not preserve:
            if where == "root":
                errors.append(fe.required(f"{path}.type", "must not be empty at the root"))
            elif where == "item":
                errors.append(
                    fe.required(f"{path}.type", "must not be empty for specified array items")
                )
            else:
                errors.append(
                    fe.required(f"{path}.type", "must not be empty for specified object fields")
                )
        if where == "root" and typ and typ != "object":
            errors.append(fe.invalid_value(f"{path}.type", typ, "must be object at the root"))
        if int_or_string and preserve:
            errors.append(
                fe.invalid_value(
                    f"{path}.x-kubernetes-preserve-unknown-fields",
                    True,
                    "must be false if x-kubernetes-int-or-string is true",
                )
            )
        if where == "root" and "additionalProperties" in s:
            errors.append(
                fe.forbidden(f"{path}.additionalProperties", "must not be used at the root")
            )
        if embedded and "additionalProperties" in s:
            errors.append(
                fe.forbidden(
                    f"{path}.additionalProperties",
                    "must not be used if x-kubernetes-embedded-resource is set",
                )
            )
    if typ == "array" and "items" not in s:
        errors.append(fe.required(f"{path}.items", "must be specified"))
    if "properties" in s and isinstance(s.get("additionalProperties"), dict):
        errors.append(
            fe.forbidden(
                f"{path}.additionalProperties",
                "additionalProperties and properties are mutual exclusive",
            )
        )
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            re2.compile(pattern, _PATTERN_OPTIONS)
        except re2.error as err:
            errors.append(
                fe.invalid_value(
                    f"{path}.pattern",
                    pattern,
                    f"must be a valid regular expression, but isn't: {err}",
                )
            )
    list_type = s.get("x-kubernetes-list-type")
    if list_type is not None:
        if list_type not in ("atomic", "set", "map"):
            errors.append(
                fe.not_supported(
                    f"{path}.x-kubernetes-list-type", list_type, ("atomic", "set", "map")
                )
            )
        elif list_type == "map" and not s.get("x-kubernetes-list-map-keys"):
            errors.append(
                fe.required(
                    f"{path}.x-kubernetes-list-map-keys",
                    "must not be empty if x-kubernetes-list-type is map",
                )
            )
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None and map_type not in ("granular", "atomic"):
        errors.append(
            fe.not_supported(f"{path}.x-kubernetes-map-type", map_type, ("granular", "atomic"))
        )
    for i, rule in enumerate(s.get("x-kubernetes-validations") or []):
        try:
            compile_rule(rule if isinstance(rule, dict) else {})
        except RuleCompileError as err:
            errors.append(err.error(f"{path}.x-kubernetes-validations[{i}]"))
    props = s.get("properties") or {}
    if where == "root" and "metadata" in props:
        _check_metadata(props["metadata"], f"{path}.properties[metadata]", errors)
    for name, sub in props.items():
        if where != "root" and where != "junctor" and name == "metadata" and embedded:
            _check_metadata(sub, f"{path}.properties[metadata]", errors)
        if isinstance(sub, dict):
            _check_schema(
                sub,
                f"{path}.properties[{name}]",
                errors,
                "junctor" if where == "junctor" else "field",
            )
    additional = s.get("additionalProperties")
    if isinstance(additional, dict):
        _check_schema(
            additional,
            f"{path}.additionalProperties",
            errors,
            "junctor" if where == "junctor" else "field",
        )
    items = s.get("items")
    if isinstance(items, dict):
        _check_schema(items, f"{path}.items", errors, "junctor" if where == "junctor" else "item")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(s.get(key) or []):
            if int_or_string and _int_or_string_pattern(s, key, i):
                continue
            if isinstance(sub, dict):
                _check_schema(sub, f"{path}.{key}[{i}]", errors, "junctor")
    if isinstance(s.get("not"), dict):
        _check_schema(s["not"], f"{path}.not", errors, "junctor")


_INT_OR_STRING_ANY_OF: Final = [{"type": "integer"}, {"type": "string"}]


def _int_or_string_pattern(s: dict[str, Any], key: str, i: int) -> bool:
    """The typed ``anyOf`` an int-or-string field may carry (as kubebuilder writes it,
    alone or as the first ``allOf``), which the server lets through."""
    if key == "anyOf":
        return s.get("anyOf") == _INT_OR_STRING_ANY_OF
    if key == "allOf" and i == 0:
        first = (s.get("allOf") or [{}])[0]
        return isinstance(first, dict) and first.get("anyOf") == _INT_OR_STRING_ANY_OF
    return False


def _check_metadata(s: Any, path: str, errors: list[fe.FieldError]) -> None:
    if not isinstance(s, dict):
        return
    allowed = {"type", "description", "properties"}
    extra = set(s) - allowed
    props = s.get("properties") or {}
    if extra or set(props) - {"name", "generateName"}:
        errors.append(
            fe.forbidden(
                path,
                "must not specify anything other than name and generateName, "
                "but metadata is implicitly specified",
            )
        )


def compile_node(s: dict[str, Any]) -> Node:
    """A structural schema (already checked) as a ``Node`` tree."""
    node = Node()
    node.type = s.get("type", "") or ""
    node.int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    node.types = (
        ("integer", "string") if node.int_or_string else ((node.type,) if node.type else ())
    )
    node.nullable = bool(s.get("nullable"))
    node.preserve_unknown = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    node.embedded = bool(s.get("x-kubernetes-embedded-resource"))
    for name in sorted(s.get("properties") or {}):
        node.properties[name] = compile_node(s["properties"][name])
    additional = s.get("additionalProperties")
    if isinstance(additional, dict):
        node.additional = compile_node(additional)
    elif additional is True:
        # additionalProperties: true keeps any field, as preserve-unknown-fields would.
        node.additional = Node(preserve_unknown=True)
    if isinstance(s.get("items"), dict):
        node.items = compile_node(s["items"])
    node.required = tuple(s.get("required") or ())
    if s.get("enum") is not None:
        node.enum = list(s["enum"])
    if "default" in s:
        node.default = s["default"]
    fmt = s.get("format", "") or ""
    node.format_check = formats.normalize(fmt)
    node.format = fmt if node.format_check else ""
    node.max_length = s.get("maxLength")
    node.min_length = s.get("minLength")
    if s.get("pattern"):
        node.pattern = s["pattern"]
        node.pattern_re = re2.compile(node.pattern, _PATTERN_OPTIONS)
    node.maximum = s.get("maximum")
    node.minimum = s.get("minimum")
    node.exclusive_maximum = bool(s.get("exclusiveMaximum"))
    node.exclusive_minimum = bool(s.get("exclusiveMinimum"))
    node.multiple_of = s.get("multipleOf")
    node.max_items = s.get("maxItems")
    node.min_items = s.get("minItems")
    node.unique_items = bool(s.get("uniqueItems"))
    node.max_properties = s.get("maxProperties")
    node.min_properties = s.get("minProperties")
    node.all_of = tuple(compile_node(x) for x in s.get("allOf") or ())
    node.any_of = tuple(compile_node(x) for x in s.get("anyOf") or ())
    node.one_of = tuple(compile_node(x) for x in s.get("oneOf") or ())
    if isinstance(s.get("not"), dict):
        node.not_ = compile_node(s["not"])
    node.rules = tuple(compile_rule(r) for r in s.get("x-kubernetes-validations") or ())
    node.list_type = s.get("x-kubernetes-list-type", "") or ""
    node.list_map_keys = tuple(s.get("x-kubernetes-list-map-keys") or ())
    node.map_type = s.get("x-kubernetes-map-type", "") or ""
    children = [*node.properties.values(), *(c for c in (node.additional, node.items) if c)]
    node.rules_below = bool(node.rules) or any(c.rules_below for c in (*children, *node.all_of))
    node.typed_below = (node.type == "string" and node.format_check in formats.CEL_TYPED) or any(
        c.typed_below for c in children
    )
    node.embedded_below = any(c.embedded or c.embedded_below for c in children)
    node.lists_below = node.list_type in ("set", "map") or any(c.lists_below for c in children)
    node.defaults_below = any(c.has_default or c.defaults_below for c in children)
    return node
