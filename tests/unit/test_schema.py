"""Schema: each keyword a CRD schema may carry accepts, rejects (with kube-apiserver's
field path, reason and words), prunes and defaults as the real server does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fluxwatch.sim import fielderrors as fe
from fluxwatch.sim.schema import (
    Schema,
    structural_errors,
    unknown_field_warnings,
    unknown_fields_error,
)


def spec_schema(props: dict[str, Any], **extra: Any) -> Schema:
    spec = {"type": "object", "properties": props, **extra}
    return Schema.compile(
        {"type": "object", "properties": {"spec": spec}}, kind="Widget", group="example.com"
    )


def widget(spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": spec,
    }


def errors(schema: Schema, spec: Any, old_spec: Any = None) -> list[str]:
    old = widget(old_spec) if old_spec is not None else None
    return [str(e) for e in schema.validate(widget(spec), old)]


# -- types ---------------------------------------------------------------------------


def test_type_mismatch_is_a_type_invalid_error_naming_both_types() -> None:
    s = spec_schema({"interval": {"type": "string"}})
    assert errors(s, {"interval": "5m"}) == []
    [err] = s.validate(widget({"interval": 5}))
    assert err.type == fe.TYPE_INVALID
    assert str(err) == (
        'spec.interval: Invalid value: "integer": spec.interval in body must be of type string: '
        '"integer"'
    )


@pytest.mark.parametrize(
    ("typ", "value", "ok"),
    [
        ("integer", 3, True),
        ("integer", 3.0, True),  # a whole float is an integer to kube-openapi
        ("integer", 3.5, False),
        ("number", 3, True),
        ("number", 3.5, True),
        ("boolean", "true", False),
        ("array", {}, False),
        ("object", [], False),
    ],
)
def test_integer_number_and_other_types(typ: str, value: Any, ok: bool) -> None:
    s = spec_schema(
        {"x": {"type": typ, **({"items": {"type": "string"}} if typ == "array" else {})}}
    )
    assert (errors(s, {"x": value}) == []) is ok


def test_float_for_integer_names_number() -> None:
    s = spec_schema({"n": {"type": "integer"}})
    assert errors(s, {"n": 1.5}) == [
        'spec.n: Invalid value: "number": spec.n in body must be of type integer: "number"'
    ]


def test_null_is_rejected_unless_nullable() -> None:
    s = spec_schema({"a": {"type": "string"}, "b": {"type": "string", "nullable": True}})
    assert errors(s, {"a": None, "b": None}) == [
        'spec.a: Invalid value: "null": spec.a in body must be of type string: "null"'
    ]


def test_int_or_string_takes_both_and_names_both_when_neither() -> None:
    s = spec_schema({"port": {"x-kubernetes-int-or-string": True}})
    assert errors(s, {"port": 80}) == []
    assert errors(s, {"port": "http"}) == []
    assert errors(s, {"port": True}) == [
        'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: '
        '"boolean"'
    ]


def test_int_or_string_with_its_typed_any_of_is_structural() -> None:
    s = spec_schema(
        {
            "port": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "pattern": "^[0-9]+$",
            }
        }
    )
    assert errors(s, {"port": 8080}) == []
    assert errors(s, {"port": "8080"}) == []
    assert errors(s, {"port": "http"}) == [
        "spec.port: Invalid value: \"http\": spec.port in body should match '^[0-9]+$'"
    ]


# -- formats -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date-time", "2024-05-01T10:00:00Z", "yesterday"),
        ("date", "2024-02-29", "2023-02-29"),
        ("duration", "1h30m", "soon"),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", "123e4567"),
        ("ipv4", "10.0.0.1", "10.0.0.256"),
        ("ipv6", "fe80::1", "10.0.0.1"),
        ("cidr", "10.0.0.0/8", "10.0.0.0/33"),
        ("mac", "01:23:45:67:89:ab", "01:23:45"),
        ("hostname", "example.com", "-bad-.com"),
        ("email", "ops@example.com", "not-an-email"),
        ("uri", "https://example.com/x", "relative/path"),
        ("byte", "aGVsbG8=", "not base64!"),
    ],
)
def test_formats_the_server_checks(fmt: str, good: str, bad: str) -> None:
    s = spec_schema({"v": {"type": "string", "format": fmt}})
    assert errors(s, {"v": good}) == []
    [err] = s.validate(widget({"v": bad}))
    assert err.type == fe.TYPE_INVALID
    assert (
        str(err) == f'spec.v: Invalid value: "{bad}": spec.v in body must be of type {fmt}: "{bad}"'
    )


def test_numeric_formats_are_not_checked() -> None:
    # apiextensions strips int32/int64/float/double before validating.
    s = spec_schema({"n": {"type": "integer", "format": "int32"}})
    assert errors(s, {"n": 2**40}) == []


# -- enum, required, bounds, lengths, sizes ------------------------------------------


def test_enum_lists_the_supported_values() -> None:
    s = spec_schema({"mode": {"type": "string", "enum": ["a", "b"]}})
    assert errors(s, {"mode": "b"}) == []
    [err] = s.validate(widget({"mode": "x"}))
    assert err.type == fe.NOT_SUPPORTED
    assert str(err) == 'spec.mode: Unsupported value: "x": supported values: "a", "b"'


def test_required_field_missing() -> None:
    s = spec_schema({"chart": {"type": "string"}}, required=["chart"])
    assert errors(s, {"chart": "c"}) == []
    assert errors(s, {}) == ["spec.chart: Required value"]


def test_required_at_the_root() -> None:
    s = Schema.compile(
        {"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}},
        kind="Widget",
        group="example.com",
    )
    assert [str(e) for e in s.validate({"apiVersion": "v", "kind": "Widget"})] == [
        "spec: Required value"
    ]


@pytest.mark.parametrize(
    ("bounds", "value", "message"),
    [
        ({"maximum": 10}, 11, "should be less than or equal to 10"),
        ({"maximum": 10, "exclusiveMaximum": True}, 10, "should be less than 10"),
        ({"minimum": 1}, 0, "should be greater than or equal to 1"),
        ({"minimum": 1, "exclusiveMinimum": True}, 1, "should be greater than 1"),
        ({"multipleOf": 5}, 12, "should be a multiple of 5"),
    ],
)
def test_numeric_bounds(bounds: dict[str, Any], value: int, message: str) -> None:
    s = spec_schema({"n": {"type": "integer", **bounds}})
    assert errors(s, {"n": value}) == [f"spec.n: Invalid value: {value}: spec.n in body {message}"]


def test_number_bounds_print_floats_as_go() -> None:
    s = spec_schema({"r": {"type": "number", "maximum": 1.5, "multipleOf": 0.5}})
    assert errors(s, {"r": 1.0}) == []
    assert errors(s, {"r": 2.25}) == [
        "spec.r: Invalid value: 2.25: spec.r in body should be a multiple of 0.5",
        "spec.r: Invalid value: 2.25: spec.r in body should be less than or equal to 1.5",
    ]


def test_string_lengths_count_characters_not_bytes() -> None:
    s = spec_schema({"s": {"type": "string", "minLength": 2, "maxLength": 5}})
    assert errors(s, {"s": "héllo"}) == []  # 5 characters, 6 bytes
    [err] = s.validate(widget({"s": "héllo!"}))
    assert (err.type, str(err)) == (fe.TOO_LONG, "spec.s: Too long: may not be more than 5 bytes")
    assert errors(s, {"s": "a"}) == [
        'spec.s: Invalid value: "a": spec.s in body should be at least 2 chars long'
    ]


def test_item_and_property_counts() -> None:
    s = spec_schema(
        {
            "l": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
            "m": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "minProperties": 1,
                "maxProperties": 1,
            },
        }
    )
    assert errors(s, {"l": ["a"], "m": {"a": "b"}}) == []
    assert errors(s, {"l": ["a", "b", "c"], "m": {"a": "1", "b": "2"}}) == [
        "spec.l: Too many: 3: must have at most 2 items",
        "spec.m: Too many: 2: must have at most 1 items",
    ]
    assert errors(s, {"l": [], "m": {}}) == [
        "spec.l: Invalid value: 0: spec.l in body should have at least 1 items",
        "spec.m: Invalid value: 0: spec.m in body should have at least 1 properties",
    ]


def test_pattern_uses_go_re2_semantics() -> None:
    duration = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
    s = spec_schema(
        {
            "d": {"type": "string", "pattern": duration},
            "u": {"type": "string", "pattern": r"^\p{Lu}"},
        }
    )
    assert errors(s, {"d": "1m30s", "u": "Élan"}) == []
    assert errors(s, {"d": "5 minutes", "u": "élan"}) == [
        f"spec.d: Invalid value: \"5 minutes\": spec.d in body should match '{duration}'",
        "spec.u: Invalid value: \"élan\": spec.u in body should match '^\\p{Lu}'",
    ]


def test_errors_inside_list_items_and_maps_name_the_element() -> None:
    s = spec_schema(
        {
            "refs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    )
    assert errors(s, {"refs": [{"name": "a"}, {}], "labels": {"team": 1}}) == [
        'spec.labels.team: Invalid value: "integer": spec.labels.team in body must be of type '
        'string: "integer"',
        "spec.refs[1].name: Required value",
    ]


# -- list types ----------------------------------------------------------------------


def test_list_type_set_and_map_reject_duplicates() -> None:
    s = spec_schema(
        {
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                },
            },
        }
    )
    assert errors(s, {"tags": ["a", "b"], "ports": [{"name": "a"}, {"name": "b"}]}) == []
    bad = s.validate(
        widget(
            {
                "tags": ["a", "b", "a", "a"],
                "ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}],
            }
        )
    )
    assert [e.type for e in bad] == [fe.DUPLICATE, fe.DUPLICATE]
    assert [str(e) for e in bad] == [
        'spec.tags[2]: Duplicate value: "a"',
        'spec.ports[1]: Duplicate value: map[string]interface {}{"name":"a"}',
    ]
    assert s.list_type(("spec", "ports")) == ("map", ("name",))
    assert s.list_type(("spec", "tags")) == ("set", ())


def test_list_type_and_map_type_lookup_defaults() -> None:
    s = spec_schema(
        {
            "l": {
                "type": "array",
                "items": {
                    "type": "object",
                    "x-kubernetes-map-type": "atomic",
                    "properties": {"a": {"type": "string"}},
                },
            },
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    )
    assert s.list_type(("spec", "l")) == ("atomic", ())
    assert s.map_type(("spec", "l", 0)) == "atomic"
    assert s.map_type(("spec", "m")) == "granular"


# -- junctors ------------------------------------------------------------------------


def test_any_of_one_of_all_of_not() -> None:
    s = spec_schema(
        {
            "any": {"type": "string", "anyOf": [{"maxLength": 1}, {"pattern": "^x"}]},
            "one": {"type": "string", "oneOf": [{"maxLength": 2}, {"pattern": "^x"}]},
            "all": {"type": "string", "allOf": [{"maxLength": 3}]},
            "nope": {"type": "string", "not": {"enum": ["bad"]}},
        }
    )
    assert errors(s, {"any": "xyz", "one": "abc", "all": "abc", "nope": "ok"}) == [
        '<nil>: Invalid value: "": "spec.one" must validate one and only one schema (oneOf). '
        "Found none valid",
        "spec.one: Too long: may not be more than 2 bytes",
    ]
    # Properties are checked in name order: all, any, nope, one.
    assert errors(s, {"any": "ab", "one": "x", "all": "abcd", "nope": "bad"}) == [
        "spec.all: Too long: may not be more than 3 bytes",
        '<nil>: Invalid value: "": "spec.all" must validate all the schemas (allOf). '
        "None validated",
        '<nil>: Invalid value: "": "spec.any" must validate at least one schema (anyOf)',
        "spec.any: Too long: may not be more than 1 bytes",
        '<nil>: Invalid value: "": "spec.nope" must not validate the schema (not)',
        '<nil>: Invalid value: "": "spec.one" must validate one and only one schema (oneOf). '
        "Found 2 valid alternatives",
    ]


# -- CEL rules -----------------------------------------------------------------------


def test_cel_rule_message_and_default_message() -> None:
    s = spec_schema(
        {"a": {"type": "integer"}, "b": {"type": "integer"}},
        **{
            "x-kubernetes-validations": [
                {"rule": "self.a < self.b", "message": "a must be below b"},
                {"rule": "self.a >= 0"},
            ]
        },
    )
    assert errors(s, {"a": 1, "b": 2}) == []
    assert errors(s, {"a": -3, "b": -5}) == [
        'spec: Invalid value: "object": a must be below b',
        'spec: Invalid value: "object": failed rule: self.a >= 0',
    ]


def test_cel_message_expression_field_path_and_reason() -> None:
    s = spec_schema(
        {"replicas": {"type": "integer"}, "name": {"type": "string"}},
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "self.replicas <= 5",
                    "messageExpression": "'too many: ' + string(self.replicas)",
                    "fieldPath": ".replicas",
                },
                {
                    "rule": "self.name != 'root'",
                    "message": "root is reserved",
                    "reason": "FieldValueForbidden",
                    "fieldPath": ".name",
                },
            ]
        },
    )
    assert errors(s, {"replicas": 3, "name": "x"}) == []
    found = s.validate(widget({"replicas": 9, "name": "root"}))
    assert [str(e) for e in found] == [
        'spec.replicas: Invalid value: "object": too many: 9',
        "spec.name: Forbidden: root is reserved",
    ]
    assert found[1].type == fe.FORBIDDEN


def test_cel_missing_key_is_reported_as_the_server_does() -> None:
    s = spec_schema(
        {"a": {"type": "string"}},
        **{"x-kubernetes-validations": [{"rule": "self.a == 'x'", "message": "a must be x"}]},
    )
    assert errors(s, {}) == [
        'spec: Invalid value: "object": no such key: a evaluating rule: a must be x'
    ]


def test_cel_rules_on_list_items_and_map_values() -> None:
    item_rule = {"x-kubernetes-validations": [{"rule": "self.startsWith('v')"}]}
    s = spec_schema(
        {
            "l": {"type": "array", "items": {"type": "string", **item_rule}},
            "m": {"type": "object", "additionalProperties": {"type": "string", **item_rule}},
        }
    )
    assert errors(s, {"l": ["v1"], "m": {"k": "v2"}}) == []
    assert errors(s, {"l": ["v1", "x"], "m": {"k": "y"}}) == [
        "spec.l[1]: Invalid value: \"string\": failed rule: self.startsWith('v')",
        "spec.m[k]: Invalid value: \"string\": failed rule: self.startsWith('v')",
    ]


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("self.lowerAscii() == 'podinfo'", "PodInfo"),
        ("self.split('/').size() == 2", "ghcr.io/podinfo"),
        ("self.substring(0, 3) == 'oci'", "oci://x"),
        ("self.find('[0-9]+') == '42'", "v42"),
    ],
)
def test_kubernetes_cel_library_functions(rule: str, value: str) -> None:
    s = spec_schema({"v": {"type": "string", "x-kubernetes-validations": [{"rule": rule}]}})
    assert errors(s, {"v": value}) == []
    assert errors(s, {"v": "nope-nope"}) == [
        f'spec.v: Invalid value: "string": failed rule: {rule}'
    ]


def test_cel_sees_date_time_and_duration_fields_as_typed_values() -> None:
    s = spec_schema(
        {
            "at": {"type": "string", "format": "date-time"},
            "every": {"type": "string", "format": "duration"},
        },
        **{
            "x-kubernetes-validations": [
                {"rule": "self.at > timestamp('2024-01-01T00:00:00Z')", "message": "too early"},
                {"rule": "self.every >= duration('1m')", "message": "too often"},
            ]
        },
    )
    assert errors(s, {"at": "2024-06-01T10:00:00Z", "every": "5m"}) == []
    assert errors(s, {"at": "2023-06-01T10:00:00Z", "every": "30s"}) == [
        'spec: Invalid value: "object": too early',
        'spec: Invalid value: "object": too often',
    ]


def test_kubernetes_cel_list_functions() -> None:
    s = spec_schema(
        {
            "l": {
                "type": "array",
                "items": {"type": "integer"},
                "x-kubernetes-validations": [{"rule": "self.isSorted() && self.sum() < 10"}],
            }
        }
    )
    assert errors(s, {"l": [1, 2, 3]}) == []
    assert len(errors(s, {"l": [3, 1]})) == 1


def test_transition_rules_run_only_on_update() -> None:
    s = spec_schema(
        {
            "name": {
                "type": "string",
                "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "name is immutable"}
                ],
            }
        }
    )
    assert errors(s, {"name": "a"}) == []
    assert errors(s, {"name": "b"}, old_spec={"name": "a"}) == [
        'spec.name: Invalid value: "string": name is immutable'
    ]
    assert errors(s, {"name": "a"}, old_spec={"name": "a"}) == []


def test_blocking_errors_stop_cel_rules() -> None:
    s = spec_schema(
        {"a": {"type": "string"}},
        **{"x-kubernetes-validations": [{"rule": "false", "message": "never"}]},
    )
    found = s.validate(widget({"a": 1}))
    assert [str(e) for e in found] == [
        'spec.a: Invalid value: "integer": spec.a in body must be of type string: "integer"',
        '<nil>: Invalid value: "null": some validation rules were not checked because the object '
        "was invalid; correct the existing errors to complete validation",
    ]
    # A non-blocking error (a pattern) lets the rules run.
    s2 = spec_schema(
        {"a": {"type": "string", "pattern": "^x$"}},
        **{"x-kubernetes-validations": [{"rule": "false", "message": "never"}]},
    )
    assert errors(s2, {"a": "y"})[-1] == 'spec: Invalid value: "object": never'


def test_errors_found_before_also_stop_cel_rules() -> None:
    s = spec_schema({}, **{"x-kubernetes-validations": [{"rule": "false", "message": "never"}]})
    meta_error = fe.required("metadata.name", "name or generateName is required")
    found = s.validate(widget({}), preceding=[meta_error])
    assert [e.detail for e in found] == [
        "some validation rules were not checked because the object was invalid; correct the "
        "existing errors to complete validation"
    ]


def test_ratcheting_keeps_unchanged_invalid_values_on_update() -> None:
    s = spec_schema({"a": {"type": "string", "maxLength": 1}, "b": {"type": "string"}})
    assert errors(s, {"a": "long", "b": "new"}, old_spec={"a": "long", "b": "old"}) == []
    assert errors(s, {"a": "longer"}, old_spec={"a": "long"}) == [
        "spec.a: Too long: may not be more than 1 bytes"
    ]


# -- pruning -------------------------------------------------------------------------


def test_prune_drops_unknown_fields_and_names_them() -> None:
    s = spec_schema(
        {
            "known": {"type": "string"},
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"a": {"type": "string"}}},
            },
            "values": {"x-kubernetes-preserve-unknown-fields": True},
        }
    )
    obj = widget(
        {"known": "k", "extra": 1, "items": [{"a": "x", "b": "y"}], "values": {"any": {"thing": 1}}}
    )
    obj["status"] = {"x": 1}
    obj["metadata"]["bogus"] = "z"
    assert s.prune(obj) == ["metadata.bogus", "spec.extra", "spec.items[0].b", "status"]
    assert obj == widget({"known": "k", "items": [{"a": "x"}], "values": {"any": {"thing": 1}}})


def test_prune_keeps_embedded_resource_type_and_metadata() -> None:
    s = spec_schema(
        {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "properties": {"spec": {"type": "object"}},
            }
        }
    )
    obj = widget(
        {
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "junk": 1},
                "spec": {},
                "other": 2,
            }
        }
    )
    # Embedded metadata is coerced after pruning: its paths come last.
    assert s.prune(obj) == ["spec.template.other", "spec.template.metadata.junk"]
    assert obj["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {},
    }


def test_prune_drops_nulls_of_fields_that_cannot_be_null() -> None:
    s = spec_schema(
        {
            "a": {"type": "string"},
            "b": {"type": "string", "nullable": True},
            "c": {"type": "string", "default": "x"},
        },
        required=["a"],
    )
    obj = widget({"a": None, "b": None, "c": None})
    assert s.prune(obj) == []  # dropped, not reported as unknown
    assert obj["spec"] == {"b": None, "c": None}
    s.default(obj)
    assert obj["spec"] == {"b": None, "c": "x"}
    assert [str(e) for e in s.validate(obj)] == ["spec.a: Required value"]


def test_unknown_field_wording_for_strict_and_warn() -> None:
    paths = ["metadata.junk", "spec.foo"]
    assert unknown_fields_error(paths) == (
        'strict decoding error: unknown field "metadata.junk", unknown field "spec.foo"'
    )
    assert unknown_field_warnings(paths) == [
        'unknown field "metadata.junk"',
        'unknown field "spec.foo"',
    ]


def test_embedded_resources_need_api_version_and_kind() -> None:
    s = spec_schema(
        {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "x-kubernetes-preserve-unknown-fields": True,
            }
        }
    )
    assert errors(s, {"template": {"apiVersion": "v1", "kind": "ConfigMap"}}) == []
    assert errors(s, {"template": {"kind": "Config_Map"}}) == [
        "spec.template.apiVersion: Required value: must not be empty",
        'spec.template.kind: Invalid value: "Config_Map": may have mixed case, but should '
        "otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters "
        "or '-', start with an alphabetic character, and end with an alphanumeric character "
        "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
        "'[a-z]([-a-z0-9]*[a-z0-9])?')",
    ]


# -- defaulting ----------------------------------------------------------------------


def test_defaults_fill_missing_fields_of_present_objects() -> None:
    s = spec_schema(
        {
            "mode": {"type": "string", "default": "fast"},
            "nested": {"type": "object", "properties": {"x": {"type": "integer", "default": 1}}},
            "withDefault": {
                "type": "object",
                "default": {},
                "properties": {"y": {"type": "string", "default": "why"}},
            },
            "nullable": {"type": "string", "nullable": True, "default": "n"},
            "plain": {"type": "string", "default": "p"},
            "list": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"z": {"type": "string", "default": "zed"}},
                },
            },
            "map": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"w": {"type": "integer", "default": 7}},
                },
            },
        }
    )
    obj = widget({"nullable": None, "plain": None, "list": [{}, {"z": "set"}], "map": {"k": {}}})
    s.default(obj)
    assert obj["spec"] == {
        "mode": "fast",
        "withDefault": {"y": "why"},  # a defaulted object gets its own defaults too
        "nullable": None,  # null is a value for a nullable field
        "plain": "p",  # null of a non-nullable field is defaulted
        "list": [{"z": "zed"}, {"z": "set"}],
        "map": {"k": {"w": 7}},
    }
    assert "nested" not in obj["spec"]  # absent objects without a default stay absent


def test_defaults_are_copies() -> None:
    s = spec_schema(
        {
            "o": {
                "type": "object",
                "default": {"a": [1]},
                "properties": {"a": {"type": "array", "items": {"type": "integer"}}},
            }
        }
    )
    one, two = widget({}), widget({})
    s.default(one)
    s.default(two)
    one["spec"]["o"]["a"].append(2)
    assert two["spec"]["o"] == {"a": [1]}


# -- structural schema checks --------------------------------------------------------


def test_non_structural_schema_is_refused_with_field_errors() -> None:
    raw = {
        "type": "object",
        "properties": {
            "spec": {
                "properties": {
                    "x": {"type": "array"},
                    "p": {"type": "string", "pattern": "(unclosed"},
                }
            },
            "j": {"type": "string", "anyOf": [{"type": "string"}]},
        },
    }
    found = [str(e) for e in structural_errors(raw)]
    base = "spec.versions[0].schema.openAPIV3Schema"
    untyped = "Required value: must not be empty for specified object fields"
    assert f"{base}.properties[spec].type: {untyped}" in found
    assert (
        f"{base}.properties[spec].properties[x].items: Required value: must be specified" in found
    )
    assert f"{base}.properties[j].anyOf[0].type: Forbidden: must be empty to be structural" in found
    assert any(
        e.startswith(f'{base}.properties[spec].properties[p].pattern: Invalid value: "(unclosed"')
        for e in found
    )
    with pytest.raises(ValueError, match=r"properties\[spec\]\.type: Required value"):
        Schema.compile(raw, kind="Widget", group="example.com")


def test_bad_cel_rule_is_refused() -> None:
    raw = {"type": "object", "x-kubernetes-validations": [{"rule": "self.(", "message": "m"}]}
    [err] = structural_errors(raw)
    assert err.field == "spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].rule"
    assert err.type == fe.INVALID
    assert err.detail.startswith("compilation failed:")


def test_validate_does_not_change_the_object() -> None:
    s = spec_schema({"a": {"type": "string", "default": "x"}})
    obj = widget({"b": 1})
    before = copy.deepcopy(obj)
    s.validate(obj)
    assert obj == before
