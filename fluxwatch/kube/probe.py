"""Questions ``fluxwatch doctor`` asks a cluster, with requests that change nothing.

Permissions are probed, not reviewed: the emulator (and some clusters) do not
serve SelfSubjectAccessReview, and a probe also proves the path works. Each
probe is a request the API server must authorize before anything else, made
harmless: a list with ``limit=1``, a watch closed as soon as its headers
arrive, a get of a name that does not exist, a create or a patch with
``dryRun=All`` (on a name that does not exist, so no admission webhook runs).
A permission RBAC grants by ``resourceNames`` (fluxwatch's own Lease, its
providers' Secrets) is probed on that name: a get reads it, an update is a
dry run of it.
Authorization comes first on every API server, so any answer but 401 and 403
(a 404, a 409, a 422) means the request was allowed; a 5xx, or a 400 that
rejects ``dryRun``, leaves the question open.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fluxwatch.kube.client import (
    JSON,
    MERGE_PATCH,
    METADATA_LIST,
    KubeApiError,
    KubeClient,
    KubeConnectionError,
    Resource,
)

DEPLOYMENTS = Resource("apps", "v1", "deployments")
# A name no object has: probes on it reach authorization and stop at 404.
PROBE_NAME = "fluxwatch-doctor-probe-0000"


class Access(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Probe:
    """The answer to "may I ``verb`` ``resource`` in ``namespace``?"."""

    verb: str
    resource: str  # plural[/subresource], with the group: "helmreleases.helm.toolkit.fluxcd.io"
    namespace: str | None
    access: Access
    detail: str = ""
    # The server did not answer the question: it throttled, failed (5xx) or could not
    # be reached, after the client's own retries. Asking it more now would not help.
    pushed_back: bool = False

    @property
    def where(self) -> str:
        return f"in {self.namespace}" if self.namespace else "cluster-wide"


def _resource_name(res: Resource, subresource: str | None) -> str:
    name = f"{res.plural}.{res.group}" if res.group else res.plural
    return f"{name}/{subresource}" if subresource else name


def _judge(exc: KubeApiError) -> tuple[Access, str]:
    if exc.code in (401, 403):
        return Access.DENIED, f"{exc.code} {exc.reason}: {exc.message}"
    if exc.code in (404, 409, 422):
        return Access.ALLOWED, f"authorized (then {exc.code} {exc.reason})"
    return Access.UNKNOWN, f"{exc.code} {exc.reason}: {exc.message}"


async def probe(
    client: KubeClient,
    verb: str,
    res: Resource,
    namespace: str | None = None,
    *,
    subresource: str | None = None,
    name: str = PROBE_NAME,
) -> Probe:
    """Whether the client's credentials may ``verb`` (get, list, watch, create, update,
    patch) ``res`` in ``namespace`` (None: cluster-wide), asked without changing anything.
    A verb on one object of a namespaced resource needs a namespace."""
    if verb not in ("list", "watch") and res.namespaced and not namespace:
        raise ValueError(f"probe: {verb} {res.plural} names one object, so it needs a namespace")
    what = _resource_name(res, subresource)
    try:
        detail = await _ask(client, verb, res, namespace, subresource, name)
    except KubeApiError as exc:
        access, detail = _judge(exc)
        pushed_back = exc.code == 429 or exc.code >= 500
        return Probe(verb, what, namespace, access, detail, pushed_back)
    except KubeConnectionError as exc:
        return Probe(verb, what, namespace, Access.UNKNOWN, str(exc), pushed_back=True)
    return Probe(verb, what, namespace, Access.ALLOWED, detail)


async def _ask(
    client: KubeClient,
    verb: str,
    res: Resource,
    namespace: str | None,
    subresource: str | None,
    name: str,
) -> str:
    dry_run: dict[str, str | int] = {"dryRun": "All"}
    if verb == "list":
        await client.request("GET", res.path(namespace), query={"limit": 1}, accept=METADATA_LIST)
        return "listed (limit=1, metadata only)"
    if verb == "watch":
        listed = await client.request(
            "GET", res.path(namespace), query={"limit": 1}, accept=METADATA_LIST
        )
        version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
        # From the list's version: no replay of existing objects, closed at once.
        query: dict[str, str | int] = {"watch": "true", "timeoutSeconds": 1}
        if version:
            query["resourceVersion"] = version
        response = await client.open("GET", res.path(namespace), query=query, timeout=10.0)
        response.close()
        return "watch opened and closed"
    if verb == "get":
        await client.request("GET", res.path(namespace, name))
        return "got"
    if verb == "create":
        body = _probe_object(res, namespace)
        await client.request("POST", res.path(namespace), query=dry_run, body=body)
        return "dry-run create accepted"
    if verb == "update":
        body = _probe_object(res, namespace, name)
        path = res.path(namespace, name) + (f"/{subresource}" if subresource else "")
        await client.request("PUT", path, query=dry_run, body=body)
        return "dry-run update accepted"
    if verb == "patch":
        path = res.path(namespace, PROBE_NAME) + (f"/{subresource}" if subresource else "")
        await client.request("PATCH", path, query=dry_run, body={}, content_type=MERGE_PATCH)
        return "dry-run patch accepted"
    raise ValueError(f"probe: unknown verb {verb!r}")


def _probe_object(res: Resource, namespace: str | None, name: str = PROBE_NAME) -> dict[str, Any]:
    """The smallest body the API server validates for a dry-run create of ``res``."""
    api_version = f"{res.group}/{res.version}" if res.group else res.version
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    body: dict[str, Any] = {"apiVersion": api_version, "metadata": metadata}
    if res.plural == "leases":
        body["kind"] = "Lease"
        body["spec"] = {"holderIdentity": "fluxwatch-doctor", "leaseDurationSeconds": 1}
    elif res.plural == "events":
        body["kind"] = "Event"
        body.update(
            {
                "involvedObject": {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "namespace": namespace or "default",
                    "name": PROBE_NAME,
                },
                "reason": "FluxwatchDoctor",
                "message": "permission probe (dry run)",
                "type": "Normal",
                "source": {"component": "fluxwatch"},
            }
        )
    return body


async def api_group(client: KubeClient, group: str) -> dict[str, Any] | None:
    """The discovery document of an API group (its served versions), None when not served."""
    try:
        doc: dict[str, Any] = await client.request("GET", f"/apis/{group}", accept=JSON)
    except KubeApiError as exc:
        if exc.not_found:
            return None
        raise
    return doc


async def deployment(client: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    """A Deployment, None when it does not exist; a 403 raises."""
    try:
        return await client.get(DEPLOYMENTS, namespace, name)
    except KubeApiError as exc:
        if exc.not_found:
            return None
        raise


__all__ = ["DEPLOYMENTS", "PROBE_NAME", "Access", "Probe", "api_group", "deployment", "probe"]
