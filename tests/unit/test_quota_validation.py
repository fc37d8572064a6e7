"""ResourceQuotas refused as pkg/apis/core/validation's ValidateResourceQuota and
ValidateResourceQuotaUpdate refuse them; Flux's ``critical-pods`` quota (which
config/manager ships too) is accepted."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from fluxwatch.sim.validation import validate

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "manager" / "resourcequota.yaml"


def quota(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q", "namespace": "apps"},
        "spec": spec,
    }


def messages(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [str(e) for e in validate("resourcequotas", obj, old)]


def test_the_shipped_critical_pods_quota_is_valid() -> None:
    shipped = yaml.safe_load(SHIPPED.read_text())
    assert shipped["metadata"]["name"] == "critical-pods"
    assert messages(shipped) == []


def test_hard_names_and_quantities() -> None:
    assert messages(quota({"hard": {"pods": "1.5", "secrets": "-1", "foo": "3"}})) == [
        'spec.hard[foo]: Invalid value: "foo": must be a standard resource type or fully qualified',
        "spec.hard[pods]: Invalid value: 1.5: must be an integer",
        'spec.hard[secrets]: Invalid value: "-1": must be greater than or equal to 0',
    ]
    # A fully qualified name, compute quantities with suffixes, storage is not a quota name.
    assert messages(quota({"hard": {"example.com/gpu": "2", "requests.cpu": "500m"}})) == []
    assert messages(quota({"hard": {"storage": "1Gi"}})) == [
        'spec.hard[storage]: Invalid value: "storage": must be a standard resource for quota'
    ]


def test_scopes() -> None:
    assert messages(
        quota({"hard": {"secrets": "3"}, "scopes": ["BestEffort", "NotBestEffort"]})
    ) == [
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"BestEffort", "NotBestEffort"}: '
        "unsupported scope applied to resource",
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"BestEffort", "NotBestEffort"}: '
        "unsupported scope applied to resource",
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"BestEffort", "NotBestEffort"}: '
        "conflicting scopes",
    ]
    assert messages(quota({"hard": {"pods": "3"}, "scopes": ["Sometimes"]})) == [
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"Sometimes"}: unsupported scope'
    ]


def test_scope_selector_operators_and_values() -> None:
    def selector(*exprs: dict[str, Any]) -> dict[str, Any]:
        return quota({"hard": {"pods": "10"}, "scopeSelector": {"matchExpressions": list(exprs)}})

    path = "spec.scopeSelector.matchExpressions"
    assert messages(selector({"scopeName": "PriorityClass", "operator": "In"})) == [
        f"{path}.values: Required value: must be at least one value when `operator` is 'In' "
        "or 'NotIn' for scope selector"
    ]
    assert messages(
        selector({"scopeName": "PriorityClass", "operator": "Exists", "values": ["a"]})
    ) == [
        f'{path}.values: Invalid value: []string{{"a"}}: must be no value when `operator` is '
        "'Exist' or 'DoesNotExist' for scope selector"
    ]
    assert messages(selector({"scopeName": "PriorityClass", "operator": "Equals"})) == [
        f'{path}.operator: Invalid value: "Equals": not a valid selector operator'
    ]
    assert messages(selector({"scopeName": "BestEffort", "operator": "In", "values": ["x"]}))[
        0
    ].startswith(f"{path}.operator: Invalid value: \"In\": must be 'Exist' when scope is any of")
    assert messages(selector({"scopeName": "Tuesday", "operator": "Exists"})) == [
        f'{path}.scopeName: Invalid value: "Tuesday": unsupported scope'
    ]


def test_scopes_cannot_change() -> None:
    old = quota({"hard": {"pods": "3"}, "scopes": ["NotTerminating"]})
    old["metadata"].update(resourceVersion="5", uid="u-1", creationTimestamp="2026-01-01T00:00:00Z")
    new = copy.deepcopy(old)
    new["spec"]["scopes"] = ["Terminating"]
    assert messages(new, old) == [
        'spec.scopes: Invalid value: []core.ResourceQuotaScope{"Terminating"}: field is immutable'
    ]
    new["spec"]["scopes"] = ["NotTerminating"]
    new["spec"]["hard"]["pods"] = "4"
    assert messages(new, old) == []
