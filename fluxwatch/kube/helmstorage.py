"""Helm v3 release storage in Secrets: names, labels and the payload encoding.

Helm keeps one Secret per revision, ``sh.helm.release.v1.<release>.v<N>`` of
type ``helm.sh/release.v1``, labelled ``owner=helm``, ``name=<release>``,
``status=<helm status>`` and ``version=<N>`` (FLUX-FACTS §4). Those labels
alone answer "is the newest revision deployed?", so the daemon lists Secret
*metadata* only and reads them through :func:`from_metadata` and
:func:`newest`; the payload is decoded only by the simulator and by tools
that need the release itself.

The payload (``data.release`` as the API returns it) is
``base64(base64(gzip(JSON)))``: Helm stores ``base64(gzip(JSON))`` and the
API base64-encodes Secret data once more. Helm reads a stored value that
lacks the gzip magic as plain JSON (releases written before compression), and
so does :func:`decode_release`.

Pure functions only: no I/O, no Kubernetes client.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

SECRET_TYPE = "helm.sh/release.v1"
OWNER = "helm"

HELM_STATUSES = frozenset(
    {
        "unknown",
        "deployed",
        "uninstalled",
        "superseded",
        "failed",
        "uninstalling",
        "pending-install",
        "pending-upgrade",
        "pending-rollback",
    }
)

_GZIP_MAGIC = b"\x1f\x8b"


class ReleaseDecodeError(ValueError):
    """A Helm release payload that is not base64(base64(gzip(JSON)))."""


@dataclass(frozen=True, slots=True)
class StoredRelease:
    """One revision of a Helm release, read from its Secret's labels."""

    name: str  # Helm release name (label ``name``)
    namespace: str  # storage namespace (the Secret's namespace)
    version: int  # Helm revision (label ``version``)
    status: str  # Helm status (label ``status``)

    @property
    def secret_name(self) -> str:
        return secret_name(self.name, self.version)


def secret_name(release: str, version: int) -> str:
    return f"sh.helm.release.v1.{release}.v{version}"


def label_selector(release: str) -> str:
    """The selector that lists every stored revision of one release."""
    return f"owner={OWNER},name={release}"


def _parse(meta: Mapping[str, Any]) -> StoredRelease | str:
    if not isinstance(meta, Mapping):
        return "metadata: expected an object"
    # Accept a whole Secret / PartialObjectMetadata as well as its metadata.
    inner = meta.get("metadata")
    if isinstance(inner, Mapping):
        meta = inner
    labels = meta.get("labels")
    if not isinstance(labels, Mapping):
        return "metadata.labels: missing"
    owner = labels.get("owner")
    if owner != OWNER:
        return f"metadata.labels.owner: expected 'helm', got {owner!r}"
    name = labels.get("name")
    if not isinstance(name, str) or not name:
        return f"metadata.labels.name: expected a release name, got {name!r}"
    version = labels.get("version")
    # Digits only: int() would also take " 7", "+7" and "7_0"; and no more than Helm's
    # int holds (a label value is at most 63 characters; int() refuses 4,300 digits).
    if (
        not isinstance(version, str)
        or not version.isascii()
        or not version.isdigit()
        or len(version) > 18
    ):
        return f"metadata.labels.version: expected a decimal revision, got {version!r}"
    status = labels.get("status")
    if not isinstance(status, str) or status not in HELM_STATUSES:
        return f"metadata.labels.status: expected a Helm status, got {status!r}"
    namespace = meta.get("namespace")
    if not isinstance(namespace, str):
        namespace = ""
    return StoredRelease(name=name, namespace=namespace, version=int(version), status=status)


def from_metadata(meta: Mapping[str, Any]) -> StoredRelease | None:
    """The revision a Secret's labels describe, or None when they are missing or garbled.

    ``meta`` is ``metadata`` of a Secret or PartialObjectMetadata, or the
    whole object. :func:`metadata_problem` says why None was returned.
    """
    parsed = _parse(meta)
    return parsed if isinstance(parsed, StoredRelease) else None


def metadata_problem(meta: Mapping[str, Any]) -> str | None:
    """Why :func:`from_metadata` rejects ``meta`` (``"<field path>: <problem>"``), or None."""
    parsed = _parse(meta)
    return parsed if isinstance(parsed, str) else None


def newest(releases: Iterable[StoredRelease]) -> StoredRelease | None:
    """The revision with the highest ``version`` label, compared as integers (v10 beats v9)."""
    best: StoredRelease | None = None
    for rel in releases:
        if best is None or rel.version > best.version:
            best = rel
    return best


def decode_release(data_field: str | bytes) -> dict[str, Any]:
    """Decode ``data.release`` of a Helm release Secret as the API returns it."""
    try:
        stored = base64.b64decode(data_field, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReleaseDecodeError(f"Secret data is not base64: {exc}") from None
    try:
        payload = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReleaseDecodeError(f"Helm release value is not base64: {exc}") from None
    if payload[:2] == _GZIP_MAGIC:
        try:
            payload = gzip.decompress(payload)
        except (OSError, EOFError, zlib.error) as exc:
            raise ReleaseDecodeError(f"Helm release value is not valid gzip: {exc}") from None
    elif payload[:1] not in (b"{", b" ", b"\n", b"\t", b"\r"):
        raise ReleaseDecodeError(
            f"Helm release value is not gzip (no magic 1f8b) nor plain JSON; "
            f"starts with {payload[:8]!r}"
        )
    try:
        release = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ReleaseDecodeError(f"Helm release is not JSON: {exc}") from None
    if not isinstance(release, dict):
        raise ReleaseDecodeError(f"Helm release is not a JSON object: got {type(release).__name__}")
    return release


def encode_release(release: Mapping[str, Any]) -> str:
    """The inverse of :func:`decode_release`: what the API returns as ``data.release``.

    ``mtime=0`` keeps the gzip header stable, so one release always encodes to
    the same string.
    """
    packed = gzip.compress(orjson.dumps(release), compresslevel=9, mtime=0)
    return base64.b64encode(base64.b64encode(packed)).decode("ascii")
