"""LeaseView: the Flux controllers' leader-election Leases (FLUX-FACTS §5)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fluxwatch.kube.fields import format_micro, format_rfc3339, parse_rfc3339
from fluxwatch.kube.lease import LeaseView, lease_view

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def lease() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "lease_helm_controller.json").read_text())
    return data


def test_held_lease(lease: dict[str, Any]) -> None:
    """FLUX-FACTS §5: holderIdentity <pod hostname>_<uuid>, leaseDurationSeconds, acquireTime,
    renewTime (MicroTime), leaseTransitions."""
    v = lease_view(lease)
    assert v.malformed is None
    assert v.key == ("flux-system", "helm-controller-leader-election")
    assert v.resource_version == "1848377"
    assert v.uid == "0d5a7c3e-2b1f-4e6d-9c8b-7a6f5e4d3c2b"  # Events about it reference it
    assert v.holder == "helm-controller-5f7c8d9b6-x2k4p_9e0c1f52-3d7a-4b6e-8c21-5a4f3e2d1c0b"
    assert v.lease_duration_seconds == 35
    assert v.transitions == 4
    assert v.acquire_time == pytest.approx(parse_rfc3339("2026-05-05T07:45:41Z") + 0.118329)
    assert v.renew_time == pytest.approx(parse_rfc3339("2026-05-05T07:46:16Z") + 0.204117)


def test_expiry_is_renew_time_plus_duration(lease: dict[str, Any]) -> None:
    """FLUX-FACTS §5: a leader is gone when renewTime + leaseDurationSeconds lies in the past."""
    v = lease_view(lease)
    assert v.renew_time is not None
    assert v.expires_at == pytest.approx(v.renew_time + 35)
    del lease["spec"]["renewTime"]
    assert lease_view(lease).expires_at is None


def test_released_lease_has_empty_holder(lease: dict[str, Any]) -> None:
    """FLUX-FACTS §5: a clean release writes an empty holder."""
    lease["spec"]["holderIdentity"] = ""
    lease["spec"]["leaseDurationSeconds"] = 1
    v = lease_view(lease)
    assert v.malformed is None and v.holder == ""
    del lease["spec"]["holderIdentity"]
    assert lease_view(lease).holder == ""


def test_new_lease_without_optional_fields() -> None:
    """FLUX-FACTS §5: every spec field of a Lease is optional."""
    v = lease_view(
        {"metadata": {"name": "source-controller-leader-election", "namespace": "flux-system"}}
    )
    assert v.malformed is None
    assert (v.holder, v.transitions, v.lease_duration_seconds) == ("", 0, None)
    assert v.acquire_time is None and v.renew_time is None


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("spec.renewTime", "2026-05-05 07:46", "spec.renewTime: not an RFC 3339 time"),
        ("spec.acquireTime", 1777967141, "spec.acquireTime: expected a string, got integer"),
        ("spec.leaseDurationSeconds", "35", "spec.leaseDurationSeconds: expected an integer"),
        ("spec.leaseDurationSeconds", 0, "spec.leaseDurationSeconds: expected a positive"),
        ("spec.leaseTransitions", 4.0, "spec.leaseTransitions: expected an integer, got number"),
        ("spec.holderIdentity", None, None),
        ("metadata.name", None, "metadata.name: missing"),
        ("spec", "held", "spec: expected an object, got string"),
    ],
)
def test_malformed_fields_are_named(
    lease: dict[str, Any], path: str, value: Any, problem: str | None
) -> None:
    """FLUX-FACTS §5 field types: a wrong field gives .malformed naming it, never an exception."""
    section, field = path.split(".") if "." in path else (path, None)
    if field is None:
        lease[section] = value
    else:
        lease[section][field] = value
    v = lease_view(lease)
    if problem is None:
        assert v.malformed is None
    else:
        assert v.malformed is not None and problem in v.malformed, v.malformed
        assert v.name or section == "metadata"


@pytest.mark.parametrize("obj", [None, [], "Lease"])
def test_not_an_object(obj: Any) -> None:
    """lease_view never raises."""
    v = lease_view(obj)
    assert isinstance(v, LeaseView) and v.malformed is not None


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("1970-01-01T00:00:00Z", 0.0),
        ("2026-05-05T07:46:16.204117Z", 1777967176.204117),
        ("2026-05-05T11:46:16.204117+04:00", 1777967176.204117),
        ("2026-05-05t07:46:16z", 1777967176.0),
        ("2026-05-05T07:46:16.123456789Z", 1777967176.123456789),
        ("2016-12-31T23:59:60Z", 1483228800.0),
    ],
)
def test_rfc3339_parsing(text: str, epoch: float) -> None:
    """FLUX-FACTS §5: acquireTime/renewTime are RFC 3339 MicroTime; §2 conditions use Time."""
    assert parse_rfc3339(text) == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-05T07:46:16",
        "2026-02-30T00:00:00Z",
        "2026-05-05T24:00:00Z",
        "2026-05-05T07:46:16+24:00",
        "05/05/2026",
        "",
    ],
)
def test_rfc3339_rejects(text: str) -> None:
    """An offset-less or impossible time is refused, not read in the local zone."""
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_formats_round_trip() -> None:
    """metav1.Time has whole seconds, metav1.MicroTime six fraction digits."""
    t = 1777967176.204117
    assert format_rfc3339(t) == "2026-05-05T07:46:16Z"
    assert format_micro(t) == "2026-05-05T07:46:16.204117Z"
    assert parse_rfc3339(format_micro(t)) == pytest.approx(t, abs=1e-6)


def test_view_does_not_keep_the_raw_object(lease: dict[str, Any]) -> None:
    """Views are detached from the JSON they were read from."""
    original = copy.deepcopy(lease)
    v = lease_view(lease)
    lease["spec"]["holderIdentity"] = "someone-else"
    assert v.holder == original["spec"]["holderIdentity"]
