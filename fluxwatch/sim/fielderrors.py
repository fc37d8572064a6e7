"""Field errors and the 422 ``Invalid`` Status they make, worded as kube-apiserver words them.

Every validator of the embedded cluster (built-in kinds, CRD structural schemas,
CEL rules, server-side apply) reports ``FieldError``s; ``invalid()`` turns a list
of them into the ``ApiError`` the real server answers with, so that a client
reading ``details.causes`` or the message cannot tell the two apart:

    Secret "s" is invalid: data[a b]: Invalid value: "a b": a valid config key must ...
    HelmRelease.helm.toolkit.fluxcd.io "x" is invalid: [spec.interval: Required value, ...]

The wording follows k8s.io/apimachinery's ``field.Error``: ``<path>: <type>[: <value>][:
<detail>]``, one error alone, several in brackets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

REQUIRED: Final = "FieldValueRequired"
NOT_FOUND: Final = "FieldValueNotFound"
DUPLICATE: Final = "FieldValueDuplicate"
INVALID: Final = "FieldValueInvalid"
NOT_SUPPORTED: Final = "FieldValueNotSupported"
FORBIDDEN: Final = "FieldValueForbidden"
TOO_LONG: Final = "FieldValueTooLong"
TOO_MANY: Final = "FieldValueTooMany"
INTERNAL: Final = "InternalError"
TYPE_INVALID: Final = "FieldValueTypeInvalid"

_WORDS: Final = {
    REQUIRED: "Required value",
    NOT_FOUND: "Not found",
    DUPLICATE: "Duplicate value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    FORBIDDEN: "Forbidden",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
    INTERNAL: "Internal error",
    TYPE_INVALID: "Invalid value",
}
# Types whose message never shows the value (as in field.Error.ErrorBody).
_NO_VALUE: Final = frozenset({REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL})


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final = _Omit()  # a value the message leaves out (field.OmitValueType)


class Verbatim(str):
    """A bad value already written as Go's ``%#v`` writes it (``map[string]interface {}{...}``),
    printed as it is rather than quoted."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field: ``type`` is a reason above, ``field`` the JSON path
    as the real server writes it (``spec.values``, ``data[key]``, ``spec.x[0].name``)."""

    type: str
    field: str
    value: Any = OMIT
    detail: str = ""

    def body(self) -> str:
        """What ``details.causes[].message`` carries: the error without its path."""
        words = _WORDS.get(self.type, self.type)
        if self.type in _NO_VALUE or self.value is OMIT:
            text = words
        else:
            text = f"{words}: {go_value(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()


def go_value(value: Any) -> str:
    """A bad value as Go's ``%q``/``%v`` prints it in a field error."""
    if isinstance(value, Verbatim):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) and not value.is_integer() else str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, field, OMIT, detail)


def invalid_value(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError(INVALID, field, value, detail)


def not_supported(field: str, value: Any, supported: list[str] | tuple[str, ...]) -> FieldError:
    detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
    return FieldError(NOT_SUPPORTED, field, value, detail)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, field, OMIT, detail)


def too_long(field: str, limit: int) -> FieldError:
    # field.TooLong as of apimachinery 0.32 (older servers said "must have at most").
    return FieldError(TOO_LONG, field, OMIT, f"may not be more than {limit} bytes")


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, field, value)


def aggregate(errors: list[FieldError]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message alone, several in brackets,
    repeats dropped."""
    seen: list[str] = []
    for err in errors:
        text = str(err)
        if text not in seen:
            seen.append(text)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


def qualified_kind(kind: str, group: str) -> str:
    """schema.GroupKind.String(): ``Secret``, ``HelmRelease.helm.toolkit.fluxcd.io``."""
    return f"{kind}.{group}" if group else kind


def status_details(kind: str, group: str, name: str, errors: list[FieldError]) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": e.type, "message": e.body(), "field": e.field} for e in errors]
    return details


def invalid_message(kind: str, group: str, name: str, errors: list[FieldError]) -> str:
    return f'{qualified_kind(kind, group)} "{name}" is invalid: {aggregate(errors)}'
