"""ResourceQuotas, after pkg/apis/core/validation: hard limits name quota resources with
non-negative (and, for object counts, whole) quantities; scopes and scope selectors name
known scopes, fit the resources they limit, and use operators that fit the scope.

Flux ships one (``critical-pods``) so that pods of the system-critical priority classes
are admitted outside kube-system; fluxwatch ships the same. Quantities are read as far
as these rules need (sign and whole units); a malformed one is not refused here, as
nowhere else in the emulator yet.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from fluxwatch.sim.fielderrors import FieldError, Verbatim, invalid_value, required
from fluxwatch.sim.validation.meta import (
    as_dict,
    as_list,
    as_str,
    validate_object_meta,
    validate_object_meta_update,
)
from fluxwatch.sim.validation.rules import go_quote, is_qualified_name, name_is_dns_subdomain

STANDARD_RESOURCES: Final = frozenset(
    {
        "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory",
        "requests.ephemeral-storage", "limits.cpu", "limits.memory",
        "limits.ephemeral-storage", "pods", "resourcequotas", "services",
        "replicationcontrollers", "secrets", "configmaps", "persistentvolumeclaims",
        "storage", "requests.storage", "services.nodeports", "services.loadbalancers",
    }
)  # fmt: skip
QUOTA_RESOURCES: Final = STANDARD_RESOURCES - {"storage"}
INTEGER_RESOURCES: Final = frozenset(
    {
        "pods", "resourcequotas", "services", "replicationcontrollers", "secrets",
        "configmaps", "persistentvolumeclaims", "services.nodeports",
        "services.loadbalancers",
    }
)  # fmt: skip
SCOPES: Final = (
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
)
EXISTS_ONLY: Final = frozenset(
    {"BestEffort", "NotBestEffort", "Terminating", "NotTerminating", "CrossNamespacePodAffinity"}
)
POD_COUNT: Final = frozenset({"pods"})
POD_COMPUTE: Final = frozenset(
    {"cpu", "memory", "limits.cpu", "limits.memory", "requests.cpu", "requests.memory"}
)
CONFLICTING: Final = (
    frozenset({"BestEffort", "NotBestEffort"}),
    frozenset({"Terminating", "NotTerminating"}),
)
_HUGEPAGES: Final = ("hugepages-", "requests.hugepages-")
_QUANTITY: Final = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_SUFFIXES: Final[dict[str, Decimal | int]] = {
    "": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
NOT_INTEGER: Final = "must be an integer"
EXISTS_ONLY_MSG: Final = (
    "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, "
    "ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, "
    "ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"
)
NEGATIVE: Final = "must be greater than or equal to 0"


def _standard(name: str, names: frozenset[str]) -> bool:
    return name in names or name.startswith(_HUGEPAGES)


def _quantity(text: str) -> Decimal | None:
    """The value of a well-formed quantity, None for anything else."""
    match = _QUANTITY.match(text)
    if match is None:
        return None
    number, suffix = match[1], match[2]
    try:
        value = Decimal(number)
        if suffix in _SUFFIXES:
            return value * _SUFFIXES[suffix]
        if suffix[:1] in "eE":
            return value * Decimal(10) ** int(suffix[1:])
    except (InvalidOperation, ValueError):
        return None
    return None


def _resource_name(name: str, path: str) -> list[FieldError]:
    """ValidateResourceQuotaResourceName (validateResourceName first)."""
    errs = [invalid_value(path, name, msg) for msg in is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name:
        if not _standard(name, STANDARD_RESOURCES):
            return [
                invalid_value(path, name, "must be a standard resource type or fully qualified")
            ]
        if not _standard(name, QUOTA_RESOURCES):
            return [invalid_value(path, name, "must be a standard resource for quota")]
    return []


def _quantity_value(name: str, raw: Any, path: str) -> list[FieldError]:
    """ValidateResourceQuantityValue: not negative; whole for counted resources."""
    text = as_str(raw) if isinstance(raw, str) else str(raw)
    value = _quantity(text)
    if value is None:
        return []
    errs: list[FieldError] = []
    if value < 0:
        errs.append(invalid_value(path, text, NEGATIVE))
    counted = name in INTEGER_RESOURCES or ("/" in name and "kubernetes.io/" not in name)
    if counted and (value * 1000) % 1000 != 0:
        errs.append(invalid_value(path, Verbatim(text), NOT_INTEGER))
    return errs


def _valid_for(scope: str, resource: str) -> bool:
    """IsResourceQuotaScopeValidForResource."""
    if scope == "BestEffort":
        return resource in POD_COUNT
    if scope in SCOPES:
        return resource in POD_COUNT or resource in POD_COMPUTE
    return True


def _go_scopes(scopes: list[Any] | None) -> Verbatim:
    if not scopes:
        return Verbatim("[]core.ResourceQuotaScope(nil)")
    return Verbatim(
        "[]core.ResourceQuotaScope{" + ", ".join(go_quote(str(s)) for s in scopes) + "}"
    )


def _go_selector(selector: dict[str, Any]) -> Verbatim:
    exprs = []
    for e in as_list(selector.get("matchExpressions")):
        e = as_dict(e)
        values = e.get("values")
        shown = (
            "[]string(nil)"
            if values is None
            else "[]string{" + ", ".join(go_quote(str(v)) for v in values) + "}"
        )
        scope, operator = go_quote(as_str(e.get("scopeName"))), go_quote(as_str(e.get("operator")))
        exprs.append(
            f"core.ScopedResourceSelectorRequirement{{ScopeName:{scope}, "
            f"Operator:{operator}, Values:{shown}}}"
        )
    return Verbatim(
        "&core.ScopeSelector{MatchExpressions:[]core.ScopedResourceSelectorRequirement{"
        + ", ".join(exprs)
        + "}}"
    )


def _spec(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    hard = as_dict(spec.get("hard"))
    # Go ranges over a map; the emulator reports the keys in order.
    for name in sorted(hard):
        path = f"spec.hard[{name}]"
        errs += _resource_name(name, path)
        errs += _quantity_value(name, hard[name], path)
    scopes = as_list(spec.get("scopes"))
    if scopes:
        shown = _go_scopes(scopes)
        for scope in scopes:
            if scope not in SCOPES:
                errs.append(invalid_value("spec.scopes", shown, "unsupported scope"))
            for name in sorted(hard):
                if _standard(name, QUOTA_RESOURCES) and not _valid_for(str(scope), name):
                    errs.append(
                        invalid_value("spec.scopes", shown, "unsupported scope applied to resource")
                    )
        errs += [
            invalid_value("spec.scopes", shown, "conflicting scopes")
            for pair in CONFLICTING
            if pair <= set(map(str, scopes))
        ]
    selector = spec.get("scopeSelector")
    if isinstance(selector, dict):
        errs += _scope_selector(spec, selector)
    return errs


def _scope_selector(spec: dict[str, Any], selector: dict[str, Any]) -> list[FieldError]:
    """validateScopedResourceSelectorRequirement."""
    errs: list[FieldError] = []
    hard = as_dict(spec.get("hard"))
    path = "spec.scopeSelector.matchExpressions"
    seen: set[str] = set()
    for raw in as_list(selector.get("matchExpressions")):
        req = as_dict(raw)
        scope, operator = as_str(req.get("scopeName")), as_str(req.get("operator"))
        values = as_list(req.get("values"))
        if scope not in SCOPES:
            errs.append(invalid_value(f"{path}.scopeName", scope, "unsupported scope"))
        for name in sorted(hard):
            if _standard(name, QUOTA_RESOURCES) and not _valid_for(scope, name):
                errs.append(
                    invalid_value(
                        path, _go_selector(selector), "unsupported scope applied to resource"
                    )
                )
        if scope in EXISTS_ONLY and operator != "Exists":
            errs.append(
                invalid_value(
                    f"{path}.operator",
                    operator,
                    EXISTS_ONLY_MSG,
                )
            )
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(
                    required(
                        f"{path}.values",
                        "must be at least one value when `operator` is 'In' or 'NotIn' "
                        "for scope selector",
                    )
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                shown = Verbatim("[]string{" + ", ".join(go_quote(str(v)) for v in values) + "}")
                errs.append(
                    invalid_value(
                        f"{path}.values",
                        shown,
                        "must be no value when `operator` is 'Exist' or 'DoesNotExist' "
                        "for scope selector",
                    )
                )
        else:
            errs.append(
                invalid_value(f"{path}.operator", operator, "not a valid selector operator")
            )
        seen.add(scope)
    errs += [
        invalid_value(path, _go_scopes(as_list(spec.get("scopes")) or None), "conflicting scopes")
        for pair in CONFLICTING
        if pair <= seen
    ]
    return errs


def quota_create(obj: dict[str, Any]) -> list[FieldError]:
    """ValidateResourceQuota."""
    errs = validate_object_meta(obj, namespaced=True, name_rule=name_is_dns_subdomain, builtin=True)
    return errs + _spec(as_dict(obj.get("spec")))


def quota_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """ValidateResourceQuotaUpdate: the spec again, and scopes that stay as they were."""
    errs = validate_object_meta_update(obj, old, builtin=True) + _spec(as_dict(obj.get("spec")))
    new_scopes = as_list(as_dict(obj.get("spec")).get("scopes"))
    old_scopes = as_list(as_dict(old.get("spec")).get("scopes"))
    if set(map(str, new_scopes)) != set(map(str, old_scopes)):
        errs.append(
            invalid_value("spec.scopes", _go_scopes(new_scopes or None), "field is immutable")
        )
    return errs
