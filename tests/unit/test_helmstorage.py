"""Helm v3 release storage: Secret names, labels and the payload encoding (FLUX-FACTS §4)."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from fluxwatch.kube.helmstorage import (
    SECRET_TYPE,
    ReleaseDecodeError,
    StoredRelease,
    decode_release,
    encode_release,
    from_metadata,
    label_selector,
    metadata_problem,
    newest,
    secret_name,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"

RELEASE = {
    "name": "vpa-bp-vpa",
    "namespace": "vpa",
    "version": 1,
    "info": {
        "first_deployed": "2026-05-05T07:45:03.118329Z",
        "last_deployed": "2026-05-05T07:45:03.118329Z",
        "deleted": "",
        "description": "Install complete",
        "status": "deployed",
    },
    "chart": {
        "metadata": {
            "name": "vertical-pod-autoscaler",
            "version": "4.7.1",
            "appVersion": "1.0.0",
            "apiVersion": "v2",
        },
        "templates": [],
        "values": {},
    },
    "config": {"recommender": {"enabled": True}},
    "manifest": "---\n# Source: vertical-pod-autoscaler/templates/recommender.yaml\n",
}


@pytest.fixture
def listing() -> list[dict[str, Any]]:
    data = json.loads((FIXTURES / "secret_metadata_list.json").read_text())
    items: list[dict[str, Any]] = data["items"]
    return items


def test_names_and_selector() -> None:
    """FLUX-FACTS §4: Secret sh.helm.release.v1.<release>.v<version>, type helm.sh/release.v1,
    listed with owner=helm,name=<release>."""
    assert secret_name("vpa-bp-vpa", 10) == "sh.helm.release.v1.vpa-bp-vpa.v10"
    assert label_selector("vpa-bp-vpa") == "owner=helm,name=vpa-bp-vpa"
    assert SECRET_TYPE == "helm.sh/release.v1"
    rel = StoredRelease("vpa-bp-vpa", "flux-system", 3, "deployed")
    assert rel.secret_name == "sh.helm.release.v1.vpa-bp-vpa.v3"


def test_metadata_list_items(listing: list[dict[str, Any]]) -> None:
    """FLUX-FACTS §4: the labels alone answer "is the newest revision deployed?"."""
    releases = [from_metadata(item) for item in listing]
    assert all(r is not None for r in releases)
    assert {(r.version, r.status) for r in releases if r} == {
        (8, "superseded"),
        (9, "superseded"),
        (10, "deployed"),
    }
    first = releases[0]
    assert first is not None and (first.name, first.namespace) == ("cert-manager", "cert-manager")
    # The bare metadata works as well as the whole PartialObjectMetadata.
    assert from_metadata(listing[0]["metadata"]) == first


def test_newest_compares_versions_as_integers(listing: list[dict[str, Any]]) -> None:
    """FLUX-FACTS §1/§4: the seed sorted names so v9 beat v10; the version label is the truth."""
    releases = [r for r in map(from_metadata, listing) if r is not None]
    # The API lists by name: ...v10 comes before ...v8 and ...v9.
    assert [r.version for r in releases] == [10, 8, 9]
    best = newest(releases)
    assert best is not None and (best.version, best.status) == (10, "deployed")
    assert newest(reversed(releases)) == best
    assert newest([]) is None


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        (None, "metadata.labels: missing"),
        ({"name": "x", "status": "deployed", "version": "1"}, "metadata.labels.owner"),
        ({"owner": "helm", "status": "deployed", "version": "1"}, "metadata.labels.name"),
        ({"owner": "helm", "name": "x", "status": "deployed"}, "metadata.labels.version"),
        ({"owner": "helm", "name": "x", "status": "deployed", "version": "v9"}, "version"),
        ({"owner": "helm", "name": "x", "status": "deployed", "version": "+9"}, "version"),
        ({"owner": "helm", "name": "x", "status": "deployed", "version": ""}, "version"),
        ({"owner": "helm", "name": "x", "status": "Deployed", "version": "9"}, "labels.status"),
        ({"owner": "helm", "name": "x", "version": "9"}, "metadata.labels.status"),
        # Types and sizes no real API server sends, read without raising all the same.
        ({"owner": "helm", "name": "x", "status": ["deployed"], "version": "9"}, "status"),
        ({"owner": "helm", "name": "x", "status": {}, "version": "9"}, "labels.status"),
        ({"owner": "helm", "name": "x", "status": "deployed", "version": "9" * 5000}, "version"),
    ],
)
def test_garbled_labels_are_refused_with_a_reason(
    labels: dict[str, str] | None, problem: str
) -> None:
    """FLUX-FACTS §4: owner=helm, name, status (a Helm status), version (an integer)."""
    meta: dict[str, Any] = {"name": "sh.helm.release.v1.x.v9", "namespace": "apps"}
    if labels is not None:
        meta["labels"] = labels
    assert from_metadata(meta) is None
    reason = metadata_problem(meta)
    assert reason is not None and problem in reason, reason


def test_every_helm_status_is_accepted() -> None:
    """FLUX-FACTS §4: the nine Helm release statuses."""
    for status in (
        "unknown",
        "deployed",
        "uninstalled",
        "superseded",
        "failed",
        "uninstalling",
        "pending-install",
        "pending-upgrade",
        "pending-rollback",
    ):
        labels = {"owner": "helm", "name": "x", "status": status, "version": "2"}
        assert from_metadata({"labels": labels}) == StoredRelease("x", "", 2, status)
        assert metadata_problem({"labels": labels}) is None


def test_decode_payload_built_layer_by_layer() -> None:
    """FLUX-FACTS §4: data.release = base64(base64(gzip(JSON))), the outer layer from the API."""
    stored = base64.b64encode(gzip.compress(json.dumps(RELEASE).encode()))
    assert decode_release(base64.b64encode(stored).decode()) == RELEASE
    assert decode_release(base64.b64encode(stored)) == RELEASE


def test_decode_uncompressed_release() -> None:
    """Helm reads a stored value without the gzip magic as plain JSON (pre-compression releases)."""
    stored = base64.b64encode(json.dumps(RELEASE).encode())
    assert decode_release(base64.b64encode(stored).decode()) == RELEASE


def test_encode_is_the_inverse_and_deterministic() -> None:
    """FLUX-FACTS §4: encode_release writes what the simulator stores as data.release."""
    encoded = encode_release(RELEASE)
    assert decode_release(encoded) == RELEASE
    assert encode_release(RELEASE) == encoded
    stored = base64.b64decode(encoded)
    assert base64.b64decode(stored)[:2] == b"\x1f\x8b"


def _outer(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("not base64 at all!", "Secret data is not base64"),
        (_outer(b"%%%%"), "Helm release value is not base64"),
        (_outer(base64.b64encode(b"\x1f\x8bbroken")), "not valid gzip"),
        (_outer(base64.b64encode(b"PK\x03\x04zip")), "not gzip"),
        (_outer(base64.b64encode(gzip.compress(b"{not json"))), "not JSON"),
        (_outer(base64.b64encode(gzip.compress(b"[1, 2]"))), "not a JSON object"),
        (_outer(base64.b64encode(b"{truncated")), "not JSON"),
    ],
)
def test_garbage_at_each_layer(data: str, message: str) -> None:
    """FLUX-FACTS §4: a clear ReleaseDecodeError names the layer that is not what it should be."""
    with pytest.raises(ReleaseDecodeError, match=message):
        decode_release(data)
