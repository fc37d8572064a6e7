"""What ``fluxwatch approve`` sends: who am I (a SelfSubjectReview), then one annotation.

The approval itself, its annotation and why it lives on the leader Lease are in
``kube/approvals.py``; this module is the command's two requests, apart so that
the parsing stays free of I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fluxwatch.kube.approvals import Approval, ApprovalError
from fluxwatch.kube.client import LEASES, MERGE_PATCH, KubeApiError, KubeClient

SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


async def whoami(client: KubeClient) -> tuple[str, float | None]:
    """The user name the API server authenticated this client as (after impersonation),
    and the server's time of the answer (its ``creationTimestamp``) when it gives one: an
    approval is dated by the cluster's clock, which the leader reads by, not the
    laptop's."""
    review = await client.request(
        "POST",
        SELF_SUBJECT_REVIEWS,
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    review = review if isinstance(review, dict) else {}
    user = (review.get("status") or {}).get("userInfo") or {}
    name = user.get("username")
    if not isinstance(name, str) or not name:
        raise ApprovalError("the API server's SelfSubjectReview names no user")
    stamp = (review.get("metadata") or {}).get("creationTimestamp")
    try:
        at = datetime.fromisoformat(stamp).timestamp() if isinstance(stamp, str) else None
    except ValueError:
        at = None
    return name, at


async def write_approval(
    client: KubeClient, namespace: str, lease: str, approval: Approval
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Merge ``approval`` into the Lease's annotations; the Lease before and after.

    The Lease is read first so that a missing one is named for what it means (no
    fluxwatch leads there) and the command can say who will read the approval. The
    merge patch carries no resourceVersion: it sets one key, so there is nothing to
    lose by racing the leader's renewals, and nothing to retry.
    """
    try:
        before = await client.get(LEASES, namespace, lease)
    except KubeApiError as exc:
        if exc.not_found:
            raise ApprovalError(
                f"Lease {namespace}/{lease} does not exist: no fluxwatch leads there. "
                "Approvals are read by the leader from its Lease, so fluxwatch must run "
                "with leader election on (leader.enabled, the default) in that namespace "
                "(leader.namespace, or --config with the daemon's settings)"
            ) from None
        raise
    patch = {"metadata": {"annotations": {approval.key: approval.value()}}}
    after = await client.patch(LEASES, namespace, lease, patch, patch_type=MERGE_PATCH)
    return before, after
