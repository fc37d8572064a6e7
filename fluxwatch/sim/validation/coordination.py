"""Leases, after pkg/apis/coordination/validation: the spec's numbers have floors and
a preferred holder needs a strategy; and the spec as decoding into ``v1.LeaseSpec``
reads it.

``strategy`` and ``preferredHolder`` belong to the CoordinatedLeaderElection
feature, alpha and off by default in 1.32: the lease strategy's PrepareForCreate
and PrepareForUpdate drop both before validating (``drop_disabled_fields``), so a
1.32 server stores neither and refuses neither. Their rules are kept below as a
server with the gate on checks them.

``decode_spec`` is the JSON decoder's part (a 400, before any of the above): the
Go types of the fields (``*string``, ``*int32``, ``*MicroTime``) and the
MicroTime format (``fluxwatch.sim.microtime``).
"""

from __future__ import annotations

from typing import Any, Final

from fluxwatch.sim import deepjson, microtime
from fluxwatch.sim.fielderrors import FieldError, forbidden, invalid_value, not_supported
from fluxwatch.sim.validation.meta import (
    as_dict,
    as_str,
    validate_object_meta,
    validate_object_meta_update,
)
from fluxwatch.sim.validation.rules import is_qualified_name, name_is_dns_subdomain

STRATEGIES: Final = ("OldestEmulationVersion",)


def _spec(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        errs.append(invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        errs.append(
            invalid_value(
                "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
            )
        )
    strategy = spec.get("strategy")
    if isinstance(strategy, str):
        # The real path repeats "strategy": ValidateCoordinatedLeaseStrategy adds it
        # to a path that already ends in it.
        path = "spec.strategy.strategy"
        if "/" not in strategy:
            if strategy not in STRATEGIES:
                errs.append(not_supported(path, strategy, STRATEGIES))
        else:
            errs += [invalid_value(path, strategy, m) for m in is_qualified_name(strategy)]
    if as_str(spec.get("preferredHolder")) and not as_str(strategy):
        errs.append(
            forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")
        )
    return errs


def lease_create(obj: dict[str, Any]) -> list[FieldError]:
    """ValidateLease (apimachinery's ObjectMeta rules: no standard-finalizer check)."""
    errs = validate_object_meta(obj, namespaced=True, name_rule=name_is_dns_subdomain)
    return errs + _spec(as_dict(obj.get("spec")))


def lease_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(obj, old) + _spec(as_dict(obj.get("spec")))


# v1.LeaseSpec's fields and their Go types; every one is a pointer, so null is absent.
_SPEC_TYPES: Final = {
    "holderIdentity": "string",
    "leaseDurationSeconds": "int32",
    "acquireTime": "MicroTime",
    "renewTime": "MicroTime",
    "leaseTransitions": "int32",
    "strategy": "v1.CoordinatedLeaseStrategy",
    "preferredHolder": "string",
}
_INT32: Final = (-(2**31), 2**31 - 1)


class LeaseDecodeError(ValueError):
    """The decoder's error for a Lease body, worded as Go's encoding/json words it."""


def _type_error(value: Any, field: str, go_type: str, *, literal: bool = False) -> str:
    what = deepjson.go_json_type(value)
    if literal:  # a number that does not fit an integer type is named with its text
        what = f"number {value!r}"
    return f"json: cannot unmarshal {what} into Go struct field {field} of type {go_type}"


def decode_spec(obj: dict[str, Any]) -> None:
    """Decode ``obj['spec']`` in place as the server decodes a Lease body: nulls dropped,
    MicroTimes in the UTC form MarshalJSON writes; LeaseDecodeError otherwise.

    encoding/json keeps the first type mismatch and goes on decoding, but an error
    from ``MicroTime.UnmarshalJSON`` ends the decoding at once and wins."""
    spec = obj.get("spec")
    if spec is None:
        obj.pop("spec", None)
        return
    if not isinstance(spec, dict):
        raise LeaseDecodeError(_type_error(spec, "Lease.spec", "v1.LeaseSpec"))
    first: str | None = None
    for key in list(spec):
        go_type = _SPEC_TYPES.get(key)
        value = spec[key]
        if go_type is None:
            continue  # unknown fields are the strict decoder's, after this
        if value is None:
            del spec[key]
            continue
        field = f"LeaseSpec.spec.{key}"
        problem: str | None = None
        if go_type == "MicroTime":
            try:
                decoded = microtime.decode(value)
            except microtime.MicroTimeError as exc:
                raise LeaseDecodeError(str(exc)) from None
            if decoded is None:
                spec[key] = None  # Go's zero time: MarshalJSON writes null
            else:
                spec[key] = decoded
        elif go_type == "int32":
            if isinstance(value, bool) or not isinstance(value, int | float):
                problem = _type_error(value, field, go_type)
            elif isinstance(value, float) or not _INT32[0] <= value <= _INT32[1]:
                problem = _type_error(value, field, go_type, literal=True)
        elif not isinstance(value, str):
            problem = _type_error(value, field, go_type)
        if problem is not None and first is None:
            first = problem
    if first is not None:
        raise LeaseDecodeError(first)


def drop_disabled_fields(obj: dict[str, Any]) -> None:
    """PrepareForCreate/PrepareForUpdate with CoordinatedLeaderElection off (1.32's
    default): ``strategy`` and ``preferredHolder`` are not stored. An update could keep
    them only if the stored Lease had them, which a 1.32 server never stores."""
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec.pop("strategy", None)
        spec.pop("preferredHolder", None)
