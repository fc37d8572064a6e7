"""Validation of the built-in kinds as a Kubernetes 1.32 API server validates them, with
its field paths and wording, so that a client of the embedded cluster is refused
exactly where, and exactly as, a real cluster would refuse it.

Pure functions on JSON dicts; the store decides when to call them:

- ``default(res_key, obj)`` on every write, before validating;
- ``validate(res_key, obj)`` on create, ``validate(res_key, obj, old)`` on update,
  after defaulting and after the server-set metadata (name from generateName,
  namespace, resourceVersion of an unconditional update) is in place;
- ``validate_object_meta`` for custom resources, whose bodies the CRD schema checks.

An empty list means valid; ``fielderrors.invalid`` words the 422.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from fluxwatch.sim.fielderrors import FieldError
from fluxwatch.sim.validation import coordination, core, events, quota, rbac, workloads
from fluxwatch.sim.validation.defaults import default, prepare_namespace_create
from fluxwatch.sim.validation.events import event_to_events_v1, events_v1_to_core
from fluxwatch.sim.validation.meta import validate_object_meta, validate_object_meta_update
from fluxwatch.sim.validation.rules import (
    NameRule,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    name_is_path_segment,
)

__all__ = [
    "NameRule",
    "decode",
    "default",
    "event_to_events_v1",
    "events_v1_to_core",
    "keep_namespace_spec",
    "name_is_dns1035_label",
    "name_is_dns_label",
    "name_is_dns_subdomain",
    "name_is_path_segment",
    "prepare_namespace_create",
    "validate",
    "validate_object_meta",
    "validate_object_meta_update",
    "validates",
]

keep_namespace_spec = core.keep_namespace_spec

Create = Callable[[dict[str, Any]], list[FieldError]]
Update = Callable[[dict[str, Any], dict[str, Any]], list[FieldError]]


def _events_v1_create(obj: dict[str, Any]) -> list[FieldError]:
    return events.event_create(events_v1_to_core(obj), strict=True)


def _events_v1_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return events.event_update(events_v1_to_core(obj), events_v1_to_core(old), strict=True)


_RULES: dict[str, tuple[Create, Update]] = {
    "namespaces": (core.namespace_create, core.namespace_update),
    "secrets": (core.secret_create, core.secret_update),
    "configmaps": (core.configmap_create, core.configmap_update),
    "serviceaccounts": (core.serviceaccount_create, core.serviceaccount_update),
    "services": (core.service_create, core.service_update),
    "events": (
        partial(events.event_create, strict=False),
        partial(events.event_update, strict=False),
    ),
    "events.events.k8s.io": (_events_v1_create, _events_v1_update),
    "leases.coordination.k8s.io": (coordination.lease_create, coordination.lease_update),
    "roles.rbac.authorization.k8s.io": (
        partial(rbac.role_create, namespaced=True),
        partial(rbac.role_update, namespaced=True),
    ),
    "clusterroles.rbac.authorization.k8s.io": (
        partial(rbac.role_create, namespaced=False),
        partial(rbac.role_update, namespaced=False),
    ),
    "rolebindings.rbac.authorization.k8s.io": (
        partial(rbac.binding_create, namespaced=True),
        partial(rbac.binding_update, namespaced=True),
    ),
    "clusterrolebindings.rbac.authorization.k8s.io": (
        partial(rbac.binding_create, namespaced=False),
        partial(rbac.binding_update, namespaced=False),
    ),
    "deployments.apps": (workloads.deployment_create, workloads.deployment_update),
    "poddisruptionbudgets.policy": (workloads.pdb_create, workloads.pdb_update),
    "networkpolicies.networking.k8s.io": (workloads.netpol_create, workloads.netpol_update),
    "resourcequotas": (quota.quota_create, quota.quota_update),
}


# Typed decoding of a body, for the kinds modelled field by field (ValueError on failure).
_DECODERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "leases.coordination.k8s.io": coordination.decode_spec,
}


def decode(res_key: str, obj: dict[str, Any]) -> None:
    """Decode ``obj``'s typed fields in place as the Go type of ``res_key`` reads them;
    ValueError with the decoder's words when they do not decode."""
    decoder = _DECODERS.get(res_key)
    if decoder is not None:
        decoder(obj)


def validates(res_key: str) -> bool:
    """Whether ``validate`` knows ``res_key`` (custom resources are not among them)."""
    return res_key in _RULES


def validate(
    res_key: str, obj: dict[str, Any], old: dict[str, Any] | None = None
) -> list[FieldError]:
    """The field errors a real server finds in ``obj`` on create (``old`` None) or on
    update from ``old``; both in the JSON shape of the API ``res_key`` names."""
    rules = _RULES.get(res_key)
    if rules is None:
        return []
    create, update = rules
    return create(obj) if old is None else update(obj, old)
