"""Leases, after pkg/apis/coordination/validation: the spec's numbers have floors and
a preferred holder needs a strategy.

``strategy`` and ``preferredHolder`` belong to the CoordinatedLeaderElection
feature (alpha, off by default in 1.32, where the server drops both fields before
validating); their rules are checked here as a server with the gate on checks them.
"""

from __future__ import annotations

from typing import Any, Final

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
