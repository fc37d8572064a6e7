"""The writes fluxwatch makes to HelmReleases, each with a precondition.

Every patch carries ``metadata.resourceVersion`` of the view the decision was
made on, so the API server applies it only to the object that was judged: if
anything changed in between (a person suspended the release, helm-controller
wrote Ready), the answer is 409 and the caller re-reads and re-decides.

* force-reconcile: ``reconcile.fluxcd.io/requestedAt`` and ``forceAt`` set to
  one new token, what ``flux reconcile hr --force`` writes.
* reset: ``reconcile.fluxcd.io/requestedAt`` and ``resetAt`` set to one new
  token, what ``flux reconcile hr --reset`` writes (fluxcd/flux2
  cmd/flux/reconcile.go; ``forceAt`` only with ``--force``, so not here: the
  cleared failure counters are what lets helm-controller try again).
* suspend / resume: the suspend patch also writes ``fluxwatch.io/suspended-at``
  in the same request, so a crash between the two patches leaves a marker that
  any leader finds and resumes; the resume patch clears both together.
* status-correct: ``Released=True`` and ``Ready=True`` through ``/status``,
  the full conditions list (a merge patch replaces lists whole).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fluxwatch.kube.client import EVENTS, HELMRELEASES, SECRETS, KubeApiError, KubeClient
from fluxwatch.kube.helmrelease import (
    ANNOTATION_FORCE_AT,
    ANNOTATION_REQUESTED_AT,
    ANNOTATION_RESET_AT,
    ANNOTATION_SUSPENDED_AT,
    HRView,
    hr_view,
)
from fluxwatch.kube.helmstorage import StoredRelease, from_metadata, label_selector, newest

STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class HelmReleaseWriter:
    """The kube side of the engine's writer seam: every write returns the new view."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def _patch(
        self, view: HRView, patch: dict[str, Any], subresource: str | None = None
    ) -> HRView:
        patch.setdefault("metadata", {})["resourceVersion"] = view.resource_version
        obj = await self.client.patch(
            HELMRELEASES, view.namespace, view.name, patch, subresource=subresource
        )
        return hr_view(obj)

    async def get(self, namespace: str, name: str) -> HRView:
        return hr_view(await self.client.get(HELMRELEASES, namespace, name))

    async def force_reconcile(self, view: HRView, token: str) -> HRView:
        annotations = {ANNOTATION_REQUESTED_AT: token, ANNOTATION_FORCE_AT: token}
        return await self._patch(view, {"metadata": {"annotations": annotations}})

    async def reset(self, view: HRView, token: str) -> HRView:
        annotations = {ANNOTATION_REQUESTED_AT: token, ANNOTATION_RESET_AT: token}
        return await self._patch(view, {"metadata": {"annotations": annotations}})

    async def suspend(self, view: HRView, marker: str) -> HRView:
        return await self._patch(
            view,
            {
                "metadata": {"annotations": {ANNOTATION_SUSPENDED_AT: marker}},
                "spec": {"suspend": True},
            },
        )

    async def resume(self, view: HRView) -> HRView:
        return await self._patch(
            view,
            {
                "metadata": {"annotations": {ANNOTATION_SUSPENDED_AT: None}},
                "spec": {"suspend": False},
            },
        )

    async def correct_status(self, view: HRView, now: float) -> HRView:
        """Write Released=True and Ready=True from history[0], keeping the other conditions."""
        # The conditions list is replaced whole, so it is built from the stored object; the
        # patch still carries the judged view's resourceVersion: if the release changed since
        # the decision, the server answers 409 and the caller re-reads and re-decides.
        obj = await self.client.get(HELMRELEASES, view.namespace, view.name)
        status = obj.get("status") or {}
        history = status.get("history") or []
        if not history:
            raise ValueError(
                f"HelmRelease {view.namespace}/{view.name}: status.history is empty, "
                "nothing to correct the status from"
            )
        action = str(history[0].get("action") or status.get("lastAttemptedReleaseAction") or "")
        reason = "UpgradeSucceeded" if action == "upgrade" else "InstallSucceeded"
        chart = f"{history[0].get('chartName', '')}@{history[0].get('chartVersion', '')}"
        message = (
            f"Helm {action or 'install'} succeeded for release "
            f"{history[0].get('namespace', '')}/{history[0].get('name', '')}.v"
            f"{history[0].get('version', '')} with chart {chart} "
            "(status corrected by fluxwatch)"
        )
        stamp = rfc3339(now)
        generation = (obj.get("metadata") or {}).get("generation")
        written = {
            t: {
                "type": t,
                "status": "True",
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": stamp,
            }
            for t in ("Ready", "Released")
        }
        conditions = [
            c
            for c in status.get("conditions") or []
            if c.get("type") not in written and c.get("type") != "Reconciling"
        ]
        conditions[:0] = [written["Ready"], written["Released"]]
        patch = {"status": {"conditions": conditions, "observedGeneration": generation}}
        return await self._patch(view, patch, subresource="status")


class HelmStorageReader:
    """Reads Helm's storage Secrets metadata-only: labels answer, payloads stay unread."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def releases(self, namespace: str, release: str) -> list[StoredRelease]:
        items = await self.client.list_metadata(SECRETS, namespace, label_selector(release))
        found = (from_metadata(item.get("metadata") or {}) for item in items)
        return [r for r in found if r is not None]

    async def newest(self, namespace: str, release: str) -> StoredRelease | None:
        return newest(await self.releases(namespace, release))


class KubeEventWriter:
    """Writes core/v1 Events (the kubernetes-event provider's seam), as client-go's
    recorder sink: create, or a strategic merge patch of a repeat's ``count``,
    ``lastTimestamp`` and ``message``. An Event that already exists is taken as
    written; other API errors go to the provider as they are (their ``code`` decides
    whether it tries again)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def create_event(self, body: Mapping[str, Any]) -> Mapping[str, Any] | None:
        meta = body.get("metadata") or {}
        namespace = meta.get("namespace") or (body.get("involvedObject") or {}).get("namespace")
        try:
            return await self.client.create(EVENTS, namespace, body)
        except KubeApiError as exc:
            if exc.code == 409:
                return None
            raise

    async def patch_event(
        self, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        try:
            return await self.client.patch(
                EVENTS, namespace, name, dict(patch), patch_type=STRATEGIC_MERGE_PATCH
            )
        except KubeApiError as exc:
            if exc.not_found:
                return None
            raise


class KubeSecretReader:
    """Reads a Secret's data for provider credentials (never logged)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        """The Secret's data; ``LookupError`` when it does not exist, ``PermissionError``
        with the API server's answer when it refuses (its Status names the verb and the
        user, never data), as ``notify.credentials.SecretReader`` reads them."""
        try:
            obj = await self.client.get(SECRETS, namespace, name)
        except KubeApiError as exc:
            if exc.not_found:
                raise LookupError(f"Secret {namespace}/{name}") from None
            if exc.code in (401, 403):
                raise PermissionError(f"{exc.code} {exc.reason}: {exc.message}") from None
            raise
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
