"""Deployments, PodDisruptionBudgets and NetworkPolicies: the required fields, the
enumerations and the cross-field rules of pkg/apis/apps, policy and networking
validation. The pod template is checked for what a Deployment cannot run without
(containers with names and images, restartPolicy Always), not the whole PodSpec.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from fluxwatch.sim.fielderrors import (
    FieldError,
    Verbatim,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
)
from fluxwatch.sim.validation.core import validate_port_num_or_name
from fluxwatch.sim.validation.meta import (
    as_dict,
    as_int,
    as_list,
    as_str,
    immutable,
    validate_annotations,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from fluxwatch.sim.validation.rules import (
    go_label_selector,
    go_string_map,
    is_dns1123_label,
    is_label_value,
    is_qualified_name,
    is_valid_port_name,
    is_valid_port_num,
    name_is_dns_subdomain,
    regex_error,
)

NONNEGATIVE: Final = "must be greater than or equal to 0"


def nonnegative(value: Any, path: str) -> list[FieldError]:
    number = as_int(value)
    return [invalid_value(path, number, NONNEGATIVE)] if number < 0 else []


# --- label selectors ---------------------------------------------------------------


def validate_label_selector(sel: Any, path: str) -> list[FieldError]:
    """ValidateLabelSelector (metav1): keys, values and operators of a selector."""
    if not isinstance(sel, dict):
        return []
    errs = validate_labels(sel.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(as_list(sel.get("matchExpressions"))):
        at = f"{path}.matchExpressions[{i}]"
        expr = as_dict(expr)
        operator, values = as_str(expr.get("operator")), as_list(expr.get("values"))
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(
                    required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    forbidden(
                        f"{at}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            errs.append(invalid_value(f"{at}.operator", operator, "not a valid selector operator"))
        key = as_str(expr.get("key"))
        errs += [invalid_value(f"{at}.key", key, m) for m in is_qualified_name(key)]
        for j, value in enumerate(values):
            errs += [
                invalid_value(f"{at}.values[{j}]", value, m) for m in is_label_value(as_str(value))
            ]
    return errs


def selector_matches(sel: dict[str, Any], labels: dict[str, Any]) -> bool:
    for key, value in as_dict(sel.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in as_list(sel.get("matchExpressions")):
        expr = as_dict(expr)
        key, operator = as_str(expr.get("key")), as_str(expr.get("operator"))
        values = as_list(expr.get("values"))
        present = key in labels
        if operator == "In" and (not present or labels[key] not in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


# --- IntOrString percentages -------------------------------------------------------

_PERCENT_RE: Final = re.compile("[0-9]+%")
_PERCENT_MSG: Final = regex_error(
    "a valid percent string must be a numeric string followed by an ending '%'",
    "[0-9]+%",
    "1%",
    "93%",
)


def go_int_or_string(value: Any) -> Verbatim:
    """An intstr.IntOrString as %#v prints it (the real message shows the struct)."""
    if isinstance(value, str):
        return Verbatim(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{json.dumps(value)}}}")
    return Verbatim(f'intstr.IntOrString{{Type:0, IntVal:{as_int(value)}, StrVal:""}}')


def positive_int_or_percent(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str):
        if _PERCENT_RE.fullmatch(value):
            return []
        return [invalid_value(path, go_int_or_string(value), _PERCENT_MSG)]
    return nonnegative(value, path)


def _int_or_percent(value: Any) -> int:
    if isinstance(value, str):
        digits = value.removesuffix("%")
        return int(digits) if digits.isdigit() else 0
    return as_int(value)


def not_more_than_100_percent(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str) and _PERCENT_RE.fullmatch(value) and _int_or_percent(value) > 100:
        return [invalid_value(path, go_int_or_string(value), "must not be greater than 100%")]
    return []


# --- Deployment --------------------------------------------------------------------

PULL_POLICIES: Final = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES: Final = ("File", "FallbackToLogsOnError")


def _containers(spec: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    containers = as_list(spec.get("containers"))
    if not containers:
        return [required(f"{path}.containers")]
    seen: set[str] = set()
    for i, ctr in enumerate(containers):
        at = f"{path}.containers[{i}]"
        ctr = as_dict(ctr)
        name = as_str(ctr.get("name"))
        if not name:
            errs.append(required(f"{at}.name"))
        else:
            errs += [invalid_value(f"{at}.name", name, m) for m in is_dns1123_label(name)]
            if name in seen:
                errs.append(duplicate(f"{at}.name", name))
            seen.add(name)
        if not as_str(ctr.get("image")).strip():
            errs.append(required(f"{at}.image"))
        policy = as_str(ctr.get("imagePullPolicy"))
        if not policy:
            errs.append(required(f"{at}.imagePullPolicy"))
        elif policy not in PULL_POLICIES:
            errs.append(not_supported(f"{at}.imagePullPolicy", policy, PULL_POLICIES))
        message_policy = as_str(ctr.get("terminationMessagePolicy"))
        if not message_policy:
            errs.append(
                required(
                    f"{at}.terminationMessagePolicy", "must be 'File' or 'FallbackToLogsOnError'"
                )
            )
        elif message_policy not in TERMINATION_MESSAGE_POLICIES:
            errs.append(
                invalid_value(
                    f"{at}.terminationMessagePolicy",
                    message_policy,
                    "must be 'File' or 'FallbackToLogsOnError'",
                )
            )
        for j, port in enumerate(as_list(ctr.get("ports"))):
            number = as_int(as_dict(port).get("containerPort"))
            errs += [
                invalid_value(f"{at}.ports[{j}].containerPort", number, m)
                for m in is_valid_port_num(number)
            ]
            port_name = as_str(as_dict(port).get("name"))
            if port_name:
                errs += [
                    invalid_value(f"{at}.ports[{j}].name", port_name, m)
                    for m in is_valid_port_name(port_name)
                ]
    return errs


def _template(template: Any, selector: Any, path: str) -> list[FieldError]:
    """ValidatePodTemplateSpecForReplicaSet, for the fields a Deployment needs."""
    if not isinstance(template, dict):
        return [required(path)]
    errs: list[FieldError] = []
    meta = as_dict(template.get("metadata"))
    labels = meta.get("labels")
    # A missing selector matches nothing (labels.Nothing), so the template fails too.
    if not isinstance(selector, dict) or not selector_matches(selector, as_dict(labels)):
        errs.append(
            invalid_value(
                f"{path}.metadata.labels",
                Verbatim(go_string_map(labels if isinstance(labels, dict) else None)),
                "`selector` does not match template `labels`",
            )
        )
    errs += validate_labels(labels, f"{path}.metadata.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations")
    spec = as_dict(template.get("spec"))
    errs += _containers(spec, f"{path}.spec")
    restart = as_str(spec.get("restartPolicy"))
    if restart != "Always":
        errs.append(not_supported(f"{path}.spec.restartPolicy", restart, ["Always"]))
    if spec.get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                f"{path}.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in ReplicaSet is not Supported",
            )
        )
    return errs


def _strategy(strategy: dict[str, Any], path: str) -> list[FieldError]:
    kind = as_str(strategy.get("type"))
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [
                forbidden(
                    f"{path}.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            ]
        return []
    if kind != "RollingUpdate":
        # The real error names the whole strategy and prints the struct; a set
        # rollingUpdate shows as a pointer, whose address no one can reproduce.
        pointer = "nil" if rolling is None else "0xc000000000"
        shown = Verbatim(
            f"apps.DeploymentStrategy{{Type:{json.dumps(kind)}, "
            f"RollingUpdate:(*apps.RollingUpdateDeployment)({pointer})}}"
        )
        return [not_supported(path, shown, ["Recreate", "RollingUpdate"])]
    if not isinstance(rolling, dict):
        return [required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
    at = f"{path}.rollingUpdate"
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errs = positive_int_or_percent(unavailable, f"{at}.maxUnavailable")
    errs += positive_int_or_percent(surge, f"{at}.maxSurge")
    if _int_or_percent(unavailable) == 0 and _int_or_percent(surge) == 0:
        errs.append(
            invalid_value(
                f"{at}.maxUnavailable",
                go_int_or_string(unavailable),
                "may not be 0 when `maxSurge` is 0",
            )
        )
    errs += not_more_than_100_percent(unavailable, f"{at}.maxUnavailable")
    return errs


def deployment_create(obj: dict[str, Any]) -> list[FieldError]:
    """ValidateDeployment (apps/v1), after defaulting."""
    errs = validate_object_meta(obj, namespaced=True, name_rule=name_is_dns_subdomain, builtin=True)
    return errs + _deployment_spec(as_dict(obj.get("spec")))


def _deployment_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs = nonnegative(spec.get("replicas"), "spec.replicas")
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        errs.append(required("spec.selector"))
    else:
        errs += validate_label_selector(selector, "spec.selector")
        if not as_dict(selector.get("matchLabels")) and not as_list(
            selector.get("matchExpressions")
        ):
            errs.append(
                invalid_value(
                    "spec.selector",
                    go_label_selector(selector),
                    "empty selector is invalid for deployment",
                )
            )
    errs += _template(spec.get("template"), selector, "spec.template")
    errs += _strategy(as_dict(spec.get("strategy")), "spec.strategy")
    min_ready = as_int(spec.get("minReadySeconds"))
    errs += nonnegative(min_ready, "spec.minReadySeconds")
    if spec.get("revisionHistoryLimit") is not None:
        errs += nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        errs += nonnegative(deadline, "spec.progressDeadlineSeconds")
        if as_int(deadline) <= min_ready:
            errs.append(
                invalid_value(
                    "spec.progressDeadlineSeconds",
                    as_int(deadline),
                    "must be greater than minReadySeconds",
                )
            )
    return errs


def deployment_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """ValidateDeploymentUpdate: through apps/v1 the selector never changes."""
    errs = validate_object_meta_update(obj, old, builtin=True)
    errs += _deployment_spec(as_dict(obj.get("spec")))
    new_sel = as_dict(obj.get("spec")).get("selector")
    old_sel = as_dict(old.get("spec")).get("selector")
    if isinstance(new_sel, dict):
        errs += immutable("spec.selector", new_sel, old_sel, go_label_selector(new_sel))
    return errs


# --- PodDisruptionBudget -----------------------------------------------------------

EVICTION_POLICIES: Final = ("AlwaysAllow", "IfHealthyBudget")


def pdb_create(obj: dict[str, Any]) -> list[FieldError]:
    """ValidatePodDisruptionBudget (policy/v1)."""
    errs = validate_object_meta(obj, namespaced=True, name_rule=name_is_dns_subdomain, builtin=True)
    return errs + _pdb_spec(as_dict(obj.get("spec")))


def _pdb_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        shown = Verbatim(
            "policy.PodDisruptionBudgetSpec{MinAvailable:"
            f"{go_int_or_string(min_available)!s}, MaxUnavailable:"
            f"{go_int_or_string(max_unavailable)!s}}}"
        )
        errs.append(
            invalid_value("spec", shown, "minAvailable and maxUnavailable cannot be both set")
        )
    for name, value in (("minAvailable", min_available), ("maxUnavailable", max_unavailable)):
        if value is not None:
            errs += positive_int_or_percent(value, f"spec.{name}")
            errs += not_more_than_100_percent(value, f"spec.{name}")
    errs += validate_label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in EVICTION_POLICIES:
        errs.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, EVICTION_POLICIES))
    return errs


def pdb_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(obj, old, builtin=True) + _pdb_spec(as_dict(obj.get("spec")))


# --- NetworkPolicy -----------------------------------------------------------------

POLICY_TYPES: Final = ("Ingress", "Egress")
NETPOL_PROTOCOLS: Final = ("TCP", "UDP", "SCTP")


def _netpol_port(port: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    protocol = port.get("protocol")
    if protocol is not None and protocol not in NETPOL_PROTOCOLS:
        errs.append(not_supported(f"{path}.protocol", protocol, NETPOL_PROTOCOLS))
    number, end = port.get("port"), port.get("endPort")
    if number is None:
        if end is not None:
            errs.append(
                invalid_value(
                    f"{path}.endPort", end, "may not be specified when `port` is not specified"
                )
            )
    elif isinstance(number, int):
        errs += [invalid_value(f"{path}.port", number, m) for m in is_valid_port_num(number)]
        if end is not None:
            if as_int(end) < number:
                errs.append(
                    invalid_value(
                        f"{path}.endPort", number, "must be greater than or equal to `port`"
                    )
                )
            errs += [
                invalid_value(f"{path}.endPort", end, m) for m in is_valid_port_num(as_int(end))
            ]
    else:
        if end is not None:
            errs.append(
                invalid_value(
                    f"{path}.endPort", end, "may not be specified when `port` is non-numeric"
                )
            )
        errs += validate_port_num_or_name(number, f"{path}.port")
    return errs


def _peer(peer: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    count = 0
    for name in ("podSelector", "namespaceSelector"):
        if peer.get(name) is not None:
            count += 1
            errs += validate_label_selector(peer[name], f"{path}.{name}")
    block = peer.get("ipBlock")
    if block is not None:
        count += 1
        if not as_str(as_dict(block).get("cidr")):
            errs.append(required(f"{path}.ipBlock.cidr"))
    if count == 0:
        errs.append(required(path, "must specify a peer"))
    elif count > 1 and block is not None:
        errs.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def netpol_create(obj: dict[str, Any]) -> list[FieldError]:
    """ValidateNetworkPolicy (networking.k8s.io/v1)."""
    errs = validate_object_meta(obj, namespaced=True, name_rule=name_is_dns_subdomain, builtin=True)
    return errs + _netpol_spec(as_dict(obj.get("spec")))


def _netpol_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs = validate_label_selector(spec.get("podSelector"), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(as_list(spec.get(direction))):
            at = f"spec.{direction}[{i}]"
            rule = as_dict(rule)
            for j, port in enumerate(as_list(rule.get("ports"))):
                errs += _netpol_port(as_dict(port), f"{at}.ports[{j}]")
            for j, peer in enumerate(as_list(rule.get(peers))):
                errs += _peer(as_dict(peer), f"{at}.{peers}[{j}]")
    types = as_list(spec.get("policyTypes"))
    if len(types) > len(POLICY_TYPES):
        shown = Verbatim(
            "&[]networking.PolicyType{" + ", ".join(json.dumps(str(t)) for t in types) + "}"
        )
        errs.append(
            invalid_value("spec.policyTypes", shown, "may not specify more than two policyTypes")
        )
        return errs
    for i, kind in enumerate(types):
        if kind not in POLICY_TYPES:
            errs.append(not_supported(f"spec.policyTypes[{i}]", kind, POLICY_TYPES))
    return errs


def netpol_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(obj, old, builtin=True) + _netpol_spec(
        as_dict(obj.get("spec"))
    )
