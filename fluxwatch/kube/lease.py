"""A ``coordination.k8s.io/v1`` Lease read once into a small, frozen view.

The lease monitor needs only who holds the Lease, since when, until when and
how many times it changed hands (FLUX-FACTS §5). ``acquireTime`` and
``renewTime`` are ``metav1.MicroTime`` (RFC 3339 with microseconds) and become
epoch seconds here. Like :func:`fluxwatch.kube.helmrelease.hr_view`, reading
never raises: a malformed Lease gets ``malformed = "<field path>: <problem>"``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fluxwatch.kube.fields import FieldReader, json_type


@dataclass(frozen=True, slots=True)
class LeaseView:
    namespace: str
    name: str
    resource_version: str
    holder: str  # "" when released (a clean release writes an empty holder)
    lease_duration_seconds: int | None
    acquire_time: float | None  # epoch seconds
    renew_time: float | None
    transitions: int
    malformed: str | None = None
    uid: str = ""  # for the involvedObject of Events about this Lease

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def expires_at(self) -> float | None:
        """When the holder is gone unless it renews: ``renewTime + leaseDurationSeconds``."""
        if self.renew_time is None or self.lease_duration_seconds is None:
            return None
        return self.renew_time + self.lease_duration_seconds


def _read(obj: Mapping[str, Any]) -> LeaseView:
    r = FieldReader()
    meta = r.mapping(obj, "metadata")
    spec = r.mapping(obj, "spec")
    name = r.string(meta, "name", "metadata") or ""
    if not name:
        r.problems.append("metadata.name: missing")
    namespace = r.string(meta, "namespace", "metadata") or ""
    if not namespace:
        r.problems.append("metadata.namespace: missing")
    duration = r.integer(spec, "leaseDurationSeconds", "spec")
    if duration is not None and duration <= 0:
        r.problems.append(f"spec.leaseDurationSeconds: expected a positive integer, got {duration}")
        duration = None
    return LeaseView(
        namespace=sys.intern(namespace),
        name=sys.intern(name),
        resource_version=r.string(meta, "resourceVersion", "metadata") or "",
        holder=r.string(spec, "holderIdentity", "spec") or "",
        lease_duration_seconds=duration,
        acquire_time=r.timestamp(spec, "acquireTime", "spec"),
        renew_time=r.timestamp(spec, "renewTime", "spec"),
        transitions=r.integer(spec, "leaseTransitions", "spec") or 0,
        malformed="; ".join(r.problems) if r.problems else None,
        uid=r.string(meta, "uid", "metadata") or "",
    )


def lease_view(obj: Mapping[str, Any]) -> LeaseView:
    """Read a Lease; never raises."""
    if not isinstance(obj, Mapping):
        problem = f"<object>: expected an object, got {json_type(obj)}"
    else:
        try:
            return _read(obj)
        except Exception as exc:  # a view must come out of any input; say what broke
            problem = f"<object>: unreadable: {type(exc).__name__}: {exc}"
    return LeaseView("", "", "", "", None, None, None, 0, malformed=problem)
