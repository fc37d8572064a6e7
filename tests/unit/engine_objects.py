"""Realistic HelmRelease and Lease objects for the engine's tests, turned into views.

Everything starts from the shapes in ``tests/fixtures``: the upstream stuck
HelmRelease of fluxcd/helm-controller#1409 (FLUX-FACTS §1) and
helm-controller's Lease (§5), and changes only what a test is about.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from fluxwatch.kube.fields import format_micro, format_rfc3339, parse_rfc3339
from fluxwatch.kube.helmrelease import (
    ANNOTATION_IGNORE,
    ANNOTATION_SUSPENDED_AT,
    HRView,
    hr_view,
)
from fluxwatch.kube.lease import LeaseView, lease_view

FIXTURES = Path(__file__).parent.parent / "fixtures"

# The upstream stuck object's Ready.lastTransitionTime; tests count from here.
T0 = parse_rfc3339("2026-05-05T07:44:58Z")
INSTALL_MESSAGE = "Running 'install' action with timeout of 5m0s"


@cache
def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_fixture(name))
    return data


def stuck_obj(
    name: str = "bp-vpa",
    namespace: str = "flux-system",
    *,
    since: float = T0,
    resource_version: str = "1848390",
) -> dict[str, Any]:
    """The upstream stuck shape: a single condition Ready=Unknown/Progressing, history[0]
    deployed; ``since`` is its lastTransitionTime."""
    obj = load("hr_stuck_upstream.json")
    meta = obj["metadata"]
    meta.update(name=name, namespace=namespace, resourceVersion=resource_version)
    meta["uid"] = f"uid-{namespace}-{name}"
    obj["status"]["conditions"][0]["lastTransitionTime"] = format_rfc3339(since)
    return obj


def stuck(name: str = "bp-vpa", namespace: str = "flux-system", *, since: float = T0) -> HRView:
    return hr_view(stuck_obj(name, namespace, since=since))


def ready(obj: dict[str, Any], *, at: float = T0) -> HRView:
    """What helm-controller writes once the install succeeded: Ready=True and Released=True."""
    obj = copy.deepcopy(obj)
    stamp = format_rfc3339(at)
    obj["status"]["observedGeneration"] = obj["metadata"]["generation"]
    obj["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "InstallSucceeded",
            "message": "Helm install succeeded for release vpa/vpa-bp-vpa.v1",
            "observedGeneration": 1,
            "lastTransitionTime": stamp,
        },
        {
            "type": "Released",
            "status": "True",
            "reason": "InstallSucceeded",
            "message": "Helm install succeeded for release vpa/vpa-bp-vpa.v1",
            "observedGeneration": 1,
            "lastTransitionTime": stamp,
        },
    ]
    return hr_view(obj)


def bumped(obj: dict[str, Any], resource_version: str) -> HRView:
    """The same object written again (a label or status field nobody here reads changed)."""
    obj = copy.deepcopy(obj)
    obj["metadata"]["resourceVersion"] = resource_version
    return hr_view(obj)


def suspended_by_person(obj: dict[str, Any]) -> HRView:
    obj = copy.deepcopy(obj)
    obj["spec"]["suspend"] = True
    obj["metadata"]["generation"] += 1
    return hr_view(obj)


def suspended_by_fluxwatch(obj: dict[str, Any], at: str = "2026-05-05T07:50:02Z") -> HRView:
    """A suspend-toggle interrupted between its two patches."""
    obj = copy.deepcopy(obj)
    obj["spec"]["suspend"] = True
    obj["metadata"]["generation"] += 1
    obj["metadata"].setdefault("annotations", {})[ANNOTATION_SUSPENDED_AT] = at
    return hr_view(obj)


def ignored(obj: dict[str, Any]) -> HRView:
    obj = copy.deepcopy(obj)
    obj["metadata"].setdefault("annotations", {})[ANNOTATION_IGNORE] = "true"
    return hr_view(obj)


def deleting(obj: dict[str, Any]) -> HRView:
    """``kubectl delete`` while the finalizer is still there (FLUX-FACTS §2)."""
    obj = copy.deepcopy(obj)
    obj["metadata"]["deletionTimestamp"] = "2026-05-05T07:47:00Z"
    obj["metadata"]["deletionGracePeriodSeconds"] = 0
    return hr_view(obj)


def pending_upgrade(obj: dict[str, Any]) -> HRView:
    """An upgrade in flight: history[0] is revision 2 pending-upgrade above deployed 1."""
    obj = copy.deepcopy(obj)
    status = obj["status"]
    status["conditions"][0]["message"] = "Running 'upgrade' action with timeout of 5m0s"
    status["lastAttemptedReleaseAction"] = "upgrade"
    previous = status["history"][0]
    status["history"] = [
        {**previous, "version": 2, "status": "pending-upgrade", "action": "upgrade"},
        {**previous, "status": "superseded"},
    ]
    return hr_view(obj)


# helm-controller's ShortenName, worked out by hand: 40 characters, "-", 12 hex of SHA-256.
_LONG_FULL = "observability-platform-kube-prometheus-stack-operator-admission-webhooks"
LONG_RELEASE = _LONG_FULL[:40] + "-" + hashlib.sha256(_LONG_FULL.encode()).hexdigest()[:12]


def long_named(since: float = T0) -> HRView:
    """A name that, prefixed with its targetNamespace, passes Helm's 53 characters."""
    obj = stuck_obj("kube-prometheus-stack-operator-admission-webhooks", "monitoring", since=since)
    obj["spec"]["targetNamespace"] = "observability-platform"
    obj["status"]["history"][0]["name"] = LONG_RELEASE
    obj["status"]["history"][0]["namespace"] = "observability-platform"
    return hr_view(obj)


def lease_obj(
    holder: str = "helm-controller-5f7c8d9b6-x2k4p_9e0c1f52-3d7a-4b6e-8c21-5a4f3e2d1c0b",
    *,
    renew: float = T0,
    acquire: float | None = None,
    transitions: int = 4,
    duration: int = 35,
    name: str = "helm-controller-leader-election",
    namespace: str = "flux-system",
) -> dict[str, Any]:
    obj = load("lease_helm_controller.json")
    obj["metadata"].update(name=name, namespace=namespace)
    spec = obj["spec"]
    spec.update(
        holderIdentity=holder,
        renewTime=format_micro(renew),
        acquireTime=format_micro(renew if acquire is None else acquire),
        leaseTransitions=transitions,
        leaseDurationSeconds=duration,
    )
    return obj


def lease(
    holder: str = "helm-controller-5f7c8d9b6-x2k4p_9e0c1f52-3d7a-4b6e-8c21-5a4f3e2d1c0b",
    **kwargs: Any,
) -> LeaseView:
    return lease_view(lease_obj(holder, **kwargs))
