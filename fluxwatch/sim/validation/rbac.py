"""Roles and bindings, after pkg/apis/rbac/validation: names are only path segments
(``system:controller:x`` is fine), rules need verbs and, for resources, API groups
and resources, and a binding's roleRef never changes."""

from __future__ import annotations

import json
from typing import Any, Final

from fluxwatch.sim.fielderrors import FieldError, Verbatim, invalid_value, not_supported, required
from fluxwatch.sim.validation.meta import (
    as_dict,
    as_list,
    as_str,
    validate_object_meta,
    validate_object_meta_update,
)
from fluxwatch.sim.validation.rules import (
    go_string_slice,
    name_is_dns_subdomain,
    name_is_path_segment,
)

RBAC_GROUP: Final = "rbac.authorization.k8s.io"


def _rule(rule: dict[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not as_list(rule.get("verbs")):
        errs.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = as_list(rule.get("nonResourceURLs"))
    if urls:
        shown = Verbatim(go_string_slice(urls))
        if namespaced:
            errs.append(
                invalid_value(
                    f"{path}.nonResourceURLs",
                    shown,
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        if (
            as_list(rule.get("apiGroups"))
            or as_list(rule.get("resources"))
            or as_list(rule.get("resourceNames"))
        ):
            errs.append(
                invalid_value(
                    f"{path}.nonResourceURLs",
                    shown,
                    "rules cannot apply to both regular resources and non-resource URLs",
                )
            )
        return errs
    if not as_list(rule.get("apiGroups")):
        errs.append(
            required(f"{path}.apiGroups", "resource rules must supply at least one api group")
        )
    resources = as_list(rule.get("resources"))
    if not resources:
        errs.append(
            required(f"{path}.resources", "resource rules must supply at least one resource")
        )
    if as_list(rule.get("resourceNames")) and len(resources) > 1:
        errs.append(
            required(f"{path}.resourceNames", "resource names cannot apply to multiple resources")
        )
    return errs


def role_create(obj: dict[str, Any], *, namespaced: bool) -> list[FieldError]:
    """ValidateRole / ValidateClusterRole (an aggregated ClusterRole's rules are the
    controller's to fill, and are checked the same way)."""
    errs = validate_object_meta(
        obj, namespaced=namespaced, name_rule=name_is_path_segment, builtin=True
    )
    for i, rule in enumerate(as_list(obj.get("rules"))):
        errs += _rule(as_dict(rule), namespaced, f"rules[{i}]")
    return errs


def role_update(obj: dict[str, Any], old: dict[str, Any], *, namespaced: bool) -> list[FieldError]:
    return role_create(obj, namespaced=namespaced) + validate_object_meta_update(
        obj, old, builtin=True
    )


def _subject(subject: dict[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = as_str(subject.get("name"))
    if not name:
        errs.append(required(f"{path}.name"))
    kind, group = as_str(subject.get("kind")), as_str(subject.get("apiGroup"))
    if kind == "ServiceAccount":
        if name:
            errs += [
                invalid_value(f"{path}.name", name, m) for m in name_is_dns_subdomain(name, False)
            ]
        if group:
            errs.append(not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not as_str(subject.get("namespace")):
            errs.append(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if not name:
            what = "user" if kind == "User" else "group"
            errs.append(invalid_value(f"{path}.name", "", f"{what} name cannot be empty"))
        if group != RBAC_GROUP:
            errs.append(not_supported(f"{path}.apiGroup", group, [RBAC_GROUP]))
    else:
        errs.append(not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"]))
    return errs


def binding_create(obj: dict[str, Any], *, namespaced: bool) -> list[FieldError]:
    """ValidateRoleBinding / ValidateClusterRoleBinding."""
    errs = validate_object_meta(
        obj, namespaced=namespaced, name_rule=name_is_path_segment, builtin=True
    )
    ref = as_dict(obj.get("roleRef"))
    group = as_str(ref.get("apiGroup"))
    if group != RBAC_GROUP:
        errs.append(not_supported("roleRef.apiGroup", group, [RBAC_GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    kind = as_str(ref.get("kind"))
    if kind not in kinds:
        errs.append(not_supported("roleRef.kind", kind, kinds))
    name = as_str(ref.get("name"))
    if not name:
        errs.append(required("roleRef.name"))
    else:
        errs += [invalid_value("roleRef.name", name, m) for m in name_is_path_segment(name, False)]
    for i, subject in enumerate(as_list(obj.get("subjects"))):
        errs += _subject(as_dict(subject), namespaced, f"subjects[{i}]")
    return errs


def _go_role_ref(ref: dict[str, Any]) -> Verbatim:
    return Verbatim(
        f"rbac.RoleRef{{APIGroup:{json.dumps(as_str(ref.get('apiGroup')))}, "
        f"Kind:{json.dumps(as_str(ref.get('kind')))}, Name:{json.dumps(as_str(ref.get('name')))}}}"
    )


def binding_update(
    obj: dict[str, Any], old: dict[str, Any], *, namespaced: bool
) -> list[FieldError]:
    errs = binding_create(obj, namespaced=namespaced)
    errs += validate_object_meta_update(obj, old, builtin=True)
    new_ref, old_ref = as_dict(obj.get("roleRef")), as_dict(old.get("roleRef"))
    keys = ("apiGroup", "kind", "name")
    if any(as_str(new_ref.get(k)) != as_str(old_ref.get(k)) for k in keys):
        errs.append(invalid_value("roleRef", _go_role_ref(new_ref), "cannot change roleRef"))
    return errs
