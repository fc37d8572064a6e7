"""The Swagger 2.0 document in gnostic's protobuf form (``openapi.v2.Document``), the only
form in which client-go reads ``/openapi/v2``.

kubectl falls back to the v2 document where v3 does not answer: client-side
validation of a ``kind: List`` manifest (``kubectl apply -f`` of what ``kubectl get
-o yaml`` wrote), the patch type of a custom resource in client-side apply, and
``kubectl explain --output plaintext-openapiv2``. Without it those fail with "error
validating data". Only the parts of the message set a Kubernetes document uses are
encoded; vendor extensions travel as YAML (JSON is YAML) as gnostic carries them.
Field numbers are those of gnostic's OpenAPIv2.proto.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import orjson


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _message(number: int, payload: bytes) -> bytes:
    """A length-delimited field: a string, bytes or an embedded message."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, value: str) -> bytes:
    return _message(number, value.encode()) if value else b""


def _strings(number: int, values: Iterable[str]) -> bytes:
    return b"".join(_message(number, v.encode()) for v in values)


def _bool(number: int, value: bool) -> bytes:
    return _varint(number << 3) + b"\x01" if value else b""


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _double(number: int, value: float) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<d", float(value))


def _any(value: Any) -> bytes:
    """gnostic's ``Any``: the value as YAML text (field 2)."""
    return _string(2, orjson.dumps(value).decode())


def _named_any(number: int, name: str, value: Any) -> bytes:
    return _message(number, _string(1, name) + _message(2, _any(value)))


def _extensions(number: int, doc: dict[str, Any]) -> bytes:
    return b"".join(_named_any(number, k, v) for k, v in doc.items() if k.startswith("x-"))


def schema(doc: dict[str, Any]) -> bytes:
    """``openapi.v2.Schema``; JSON Schema keywords v2 lacks (oneOf, anyOf, not, nullable) are
    left out, as kube-apiserver leaves them out of its v2 document."""
    out = [_string(1, doc.get("$ref", "")), _string(2, doc.get("format", ""))]
    out.append(_string(3, doc.get("title", "")))
    out.append(_string(4, doc.get("description", "")))
    if "default" in doc:
        out.append(_message(5, _any(doc["default"])))
    for key, number in (("multipleOf", 6), ("maximum", 7), ("minimum", 9)):
        if key in doc:
            out.append(_double(number, doc[key]))
    out.append(_bool(8, bool(doc.get("exclusiveMaximum"))))
    out.append(_bool(10, bool(doc.get("exclusiveMinimum"))))
    for key, number in (
        ("maxLength", 11),
        ("minLength", 12),
        ("maxItems", 14),
        ("minItems", 15),
        ("maxProperties", 17),
        ("minProperties", 18),
    ):
        if key in doc:
            out.append(_int(number, int(doc[key])))
    out.append(_string(13, doc.get("pattern", "")))
    out.append(_bool(16, bool(doc.get("uniqueItems"))))
    out.append(_strings(19, doc.get("required", ())))
    out.extend(_message(20, _any(v)) for v in doc.get("enum", ()))
    extra = doc.get("additionalProperties")
    if isinstance(extra, dict):
        out.append(_message(21, _message(1, schema(extra))))
    elif isinstance(extra, bool):
        out.append(_message(21, _varint(2 << 3) + _varint(int(extra))))
    type_ = doc.get("type")
    if type_:
        out.append(_message(22, _strings(1, [type_] if isinstance(type_, str) else type_)))
    items = doc.get("items")
    if isinstance(items, dict):
        out.append(_message(23, _message(1, schema(items))))
    out.extend(_message(24, schema(s)) for s in doc.get("allOf", ()))
    props = doc.get("properties")
    if props:
        named = (_message(1, _string(1, k) + _message(2, schema(v))) for k, v in props.items())
        out.append(_message(25, b"".join(named)))
    out.append(_bool(27, bool(doc.get("readOnly"))))
    if "example" in doc:
        out.append(_message(30, _any(doc["example"])))
    out.append(_extensions(31, doc))
    return b"".join(out)


def _parameter(doc: dict[str, Any]) -> bytes:
    """``openapi.v2.ParametersItem`` holding a body, query or path parameter."""
    where = doc["in"]
    if where == "body":
        body = (
            _string(1, doc.get("description", ""))
            + _string(2, doc["name"])
            + _string(3, where)
            + _bool(4, bool(doc.get("required")))
            + _message(5, schema(doc.get("schema", {})))
        )
        parameter = _message(1, body)
    else:
        # Query and path sub-schemas number their fields differently after ``name``.
        query = where == "query"
        sub = (
            _bool(1, bool(doc.get("required")))
            + _string(2, where)
            + _string(3, doc.get("description", ""))
            + _string(4, doc["name"])
            + _string(6 if query else 5, doc.get("type", ""))
            + _bool(20 if query else 19, bool(doc.get("uniqueItems")))
        )
        parameter = _message(2, _message(3 if query else 4, sub))
    return _message(1, parameter)


def _operation(doc: dict[str, Any]) -> bytes:
    out = [_strings(1, doc.get("tags", ())), _string(3, doc.get("description", ""))]
    out.append(_string(5, doc.get("operationId", "")))
    out.append(_strings(6, doc.get("produces", ())))
    out.append(_strings(7, doc.get("consumes", ())))
    out.extend(_message(8, _parameter(p)) for p in doc.get("parameters", ()))
    codes = []
    for code, response in doc.get("responses", {}).items():
        body = _string(1, response.get("description", ""))
        if "schema" in response:
            body += _message(2, _message(1, schema(response["schema"])))
        codes.append(_message(1, _string(1, code) + _message(2, _message(1, body))))
    out.append(_message(9, b"".join(codes)))
    out.append(_strings(10, doc.get("schemes", ())))
    out.append(_extensions(13, doc))
    return b"".join(out)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(doc: dict[str, Any]) -> bytes:
    out = [_message(_METHODS[m], _operation(op)) for m, op in doc.items() if m in _METHODS]
    out.extend(_message(9, _parameter(p)) for p in doc.get("parameters", ()))
    return b"".join(out)


def document(doc: dict[str, Any]) -> bytes:
    """``openapi.v2.Document`` of a Swagger 2.0 document as ``OpenAPI.v2`` builds it."""
    info = doc.get("info", {})
    out = [
        _string(1, doc.get("swagger", "2.0")),
        _message(2, _string(1, info.get("title", "")) + _string(2, info.get("version", ""))),
    ]
    paths = b"".join(
        _message(2, _string(1, name) + _message(2, _path_item(item)))
        for name, item in doc.get("paths", {}).items()
    )
    out.append(_message(8, paths))
    definitions = b"".join(
        _message(1, _string(1, name) + _message(2, schema(s)))
        for name, s in doc.get("definitions", {}).items()
    )
    out.append(_message(9, definitions))
    for requirement in doc.get("security", ()):
        named = b"".join(
            _message(1, _string(1, name) + _message(2, _strings(1, scopes)))
            for name, scopes in requirement.items()
        )
        out.append(_message(12, named))
    securities = []
    for name, sec in doc.get("securityDefinitions", {}).items():
        api_key = (
            _string(1, sec.get("type", ""))
            + _string(2, sec.get("name", ""))
            + _string(3, sec.get("in", ""))
            + _string(4, sec.get("description", ""))
        )
        securities.append(_message(1, _string(1, name) + _message(2, _message(2, api_key))))
    if securities:
        out.append(_message(13, b"".join(securities)))
    return b"".join(out)
