"""One Kubernetes API client for the whole daemon, built on kubernetes_asyncio.

kubernetes_asyncio does what we should not write ourselves: kubeconfig and
in-cluster loading, TLS, exec plugins and token refresh. Its generated models
and its ``Watch`` decoder are slow on hot paths (deserialising every object
into model classes), so requests go through its REST layer with
``_preload_content=False`` and bodies are parsed with orjson.

Errors from the API become :class:`KubeApiError` carrying the HTTP code, the
Status ``reason`` and ``message``, and ``Retry-After`` when the server sent
one; connection failures become :class:`KubeConnectionError`, also while a
:class:`Stream` (a watch) is read, where silence beyond its read timeout is a
``TimeoutError``. Both derive from :class:`KubeError`, the one exception the
rest of the package catches (so only this module knows aiohttp's errors). The
tree lives in :mod:`fluxwatch.kube.errors`, which does no I/O, so the engine
catches it without importing this client; it is re-exported here.

A request the server pushes back with ``Retry-After`` (a 429 from API Priority
and Fairness, a 503 from a server shutting down, any 5xx that names a wait) is
sent again after that wait, at most ``MAX_RETRIES`` times, whatever its verb:
client-go's rule (rest/request.go ``checkWait``), so that fluxwatch is no less
patient than kubectl and no more. An answer without ``Retry-After`` is raised
at once; the caller's own loop (the informer's backoff, a resume's) decides.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from multidict import CIMultiDict
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from fluxwatch.kube.codec import loads
from fluxwatch.kube.errors import KubeApiError, KubeConnectionError, KubeError

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


_tracer = trace.get_tracer(__name__)
log = logging.getLogger(__name__)

# client-go's maxRetries; a Retry-After beyond the cap (APF sends 1 to 32) is a broken
# proxy's, not a reason to hang.
MAX_RETRIES = 10
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class Resource:
    """Where a resource lives in the API: enough to build its URLs."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
        return base


def url_template(path: str) -> tuple[str, str | None]:
    """The low-cardinality form of an API path (``.../namespaces/{namespace}/helmreleases/{name}``)
    and the namespace it names, for span names and attributes."""
    parts = path.split("/")
    # ["", "api", "v1", ...] or ["", "apis", group, version, ...]
    start = 3 if len(parts) > 1 and parts[1] == "api" else 4
    rest = parts[start:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace = rest[1]
        rest = ["namespaces", "{namespace}", *rest[2:]]
        plural_at = 2
    else:
        plural_at = 0
    if len(rest) > plural_at + 1:
        rest[plural_at + 1] = "{name}"
    return "/".join(parts[:start] + rest), namespace


# Where the kubelet mounts a pod's ServiceAccount token and the cluster's CA.
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")

HELMRELEASES = Resource("helm.toolkit.fluxcd.io", "v2", "helmreleases")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
SECRETS = Resource("", "v1", "secrets")
EVENTS = Resource("", "v1", "events")


@dataclass(frozen=True, slots=True)
class Impersonation:
    """kubectl's ``--as``/``--as-group``: the API server acts as ``user`` (in ``groups``),
    if the client's own user is allowed to ``impersonate`` them."""

    user: str
    groups: tuple[str, ...] = ()

    def headers(self) -> list[tuple[str, str]]:
        return [("Impersonate-User", self.user)] + [("Impersonate-Group", g) for g in self.groups]


class Stream:
    """An open 2xx response read chunk by chunk; the caller releases it when done."""

    def __init__(self, response: aiohttp.ClientResponse, what: str) -> None:
        self._response = response
        self._what = what

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; a broken connection raises ``KubeConnectionError``."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise  # silence past the read timeout: the caller tells it from a failure
        except aiohttp.ClientError as exc:
            raise KubeConnectionError(f"{self._what}: {exc!r}") from exc

    def release(self) -> None:
        self._response.release()


# A watch holds its connection for its whole life (HTTP/1.1: one stream a connection), and
# kubernetes_asyncio's pool has 100 (Configuration.connection_pool_maxsize). Past that a
# request waits for a connection to come free and fails after the connect timeout: a daemon
# told to watch 120 namespaces never renewed its Lease, so it never led, synced or wrote.
# Watches get connections of their own (``from_config(watches=)``); these are for the rest.
REQUEST_CONNECTIONS = 100


class KubeClient:
    """A thin async client: auth and TLS from kubernetes_asyncio, bytes through orjson."""

    def __init__(
        self, api_client: k8s_client.ApiClient, impersonate: Impersonation | None = None
    ) -> None:
        self._api = api_client
        self._impersonate = impersonate.headers() if impersonate else []
        self._config = api_client.configuration
        self.host: str = str(self._config.host or "").rstrip("/")
        server = urlsplit(self.host)
        self._server_attributes: dict[str, str | int] = {
            "server.address": server.hostname or "",
            "server.port": server.port or (443 if server.scheme == "https" else 80),
        }

    @classmethod
    async def from_config(
        cls,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        *,
        impersonate: Impersonation | None = None,
        watches: int = 0,
        service_account: Path = SERVICE_ACCOUNT,
    ) -> KubeClient:
        """In-cluster config when running in a pod and no kubeconfig is named, else kubeconfig.

        In a pod the token is ``service_account``'s ``token`` file, which the kubelet
        rotates: the library reads it again at most a minute after it changed (its
        refresh hook, run by every request's headers), well before the old one
        expires (the kubelet rotates at 80% of its lifetime). ``watches``: how many
        watches the caller keeps open at once; each holds a connection of its own on top
        of :data:`REQUEST_CONNECTIONS`."""
        configuration = k8s_client.Configuration()
        configuration.connection_pool_maxsize = REQUEST_CONNECTIONS + watches
        path = kubeconfig or os.environ.get("KUBECONFIG")
        if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config(
                client_configuration=configuration,
                token_filename=str(service_account / "token"),
                cert_filename=str(service_account / "ca.crt"),
            )
        else:
            cfg_file = str(path) if path else str(Path.home() / ".kube" / "config")
            await k8s_config.load_kube_config(
                config_file=cfg_file, context=context, client_configuration=configuration
            )
        return cls(k8s_client.ApiClient(configuration), impersonate)

    async def close(self) -> None:
        await self._api.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _headers(self, accept: str, content_type: str | None) -> CIMultiDict[str]:
        # A multidict: impersonating several groups sends Impersonate-Group once per group.
        headers = CIMultiDict([("Accept", accept), ("User-Agent", "fluxwatch")])
        if content_type:
            headers["Content-Type"] = content_type
        # auth_settings() runs the library's token refresh hooks (in-cluster, exec).
        for setting in (await self._config.auth_settings()).values():
            headers[setting["key"]] = setting["value"]
        headers.extend(self._impersonate)
        return headers

    async def open(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = JSON,
        timeout: aiohttp.ClientTimeout | float | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request; return the open 2xx response, which the caller reads and releases.

        A write inside a trace (a recovery, an alert delivery) is a client span of it.
        Reads are not, nor are writes outside any trace: watches, lists and the leader
        Lease renewals every few seconds are the steady state, not part of a story.
        """
        if method == "GET" or not trace.get_current_span().get_span_context().is_valid:
            return await self._send(method, path, query, body, content_type, accept, timeout)
        template, namespace = url_template(path)
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.path": path,
            "url.template": template,
            **self._server_attributes,
        }
        if namespace:
            attributes["k8s.namespace.name"] = namespace
        with _tracer.start_as_current_span(
            f"{method} {template}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            try:
                response = await self._send(
                    method, path, query, body, content_type, accept, timeout
                )
            except KubeApiError as exc:
                span.set_attribute("http.response.status_code", exc.code)
                span.set_attribute("error.type", str(exc.code))
                raise
            except KubeConnectionError as exc:
                span.set_attribute("error.type", type(exc.__cause__ or exc).__name__)
                raise
            span.set_attribute("http.response.status_code", response.status)
            return response

    async def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int] | None,
        body: Any,
        content_type: str | None,
        accept: str,
        timeout: aiohttp.ClientTimeout | float | None,
    ) -> aiohttp.ClientResponse:
        if method in ("POST", "PUT", "PATCH", "DELETE") and content_type is None:
            # The library's REST layer reads Content-Type for every method with a body slot.
            content_type = JSON
        url = self.host + path
        params = dict(query) if query else None
        retries = 0
        while True:
            # Each try asks for the headers again: a rotated token is read in between.
            headers = await self._headers(accept, content_type)
            try:
                response: aiohttp.ClientResponse = await self._api.rest_client.request(
                    method,
                    url,
                    query_params=params,
                    # Annotated dict, passed to aiohttp as given: a multidict keeps repeats.
                    headers=headers,  # type: ignore[arg-type]
                    body=body,
                    _preload_content=False,
                    _request_timeout=timeout,
                )
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise KubeConnectionError(f"{method} {path}: {exc!r}") from exc
            if response.status < 300:
                return response
            try:
                data = await response.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise KubeConnectionError(f"{method} {path}: {exc!r}") from exc
            finally:
                response.release()
            error = KubeApiError.from_response(
                response.status, data, response.headers, method, path
            )
            wait = error.retry_after
            if wait is None or not (error.code == 429 or error.code >= 500):
                raise error
            if retries >= MAX_RETRIES:
                error.retries = retries
                raise error
            retries += 1
            wait = min(wait, MAX_RETRY_AFTER)
            log.info(
                "%s %s: %s %s, retrying in %gs as asked (%d of %d)",
                method,
                path,
                error.code,
                error.reason,
                wait,
                retries,
                MAX_RETRIES,
            )
            await asyncio.sleep(wait)

    async def stream(
        self,
        path: str,
        *,
        query: Mapping[str, str | int],
        accept: str,
        read_timeout: float,
    ) -> Stream:
        """GET a body that never ends by itself (a watch): no total timeout, a silence bound."""
        timeout = aiohttp.ClientTimeout(
            total=None, connect=30.0, sock_connect=30.0, sock_read=read_timeout
        )
        response = await self.open("GET", path, query=query, accept=accept, timeout=timeout)
        return Stream(response, f"GET {path}")

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = JSON,
        timeout: float | None = 30.0,
    ) -> Any:
        """Send a request and return the decoded JSON body."""
        data = await self.read(
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            accept=accept,
            timeout=timeout,
        )
        # A HelmRelease's values may nest deeper than orjson reads: see codec.loads.
        return loads(data) if data else None

    async def read(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
        content_type: str | None = None,
        accept: str = JSON,
        timeout: float | None = 30.0,
    ) -> bytes:
        """Send a request and return the body's bytes, for a caller that decodes them itself."""
        response = await self.open(
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            accept=accept,
            timeout=timeout,
        )
        try:
            data = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise KubeConnectionError(f"{method} {path}: {exc!r}") from exc
        finally:
            response.release()
        return data

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", res.path(namespace, name))
        return result

    async def list_metadata(
        self, res: Resource, namespace: str | None, label_selector: str
    ) -> list[dict[str, Any]]:
        """Metadata-only list: the server sends no data, so Helm release payloads stay unread."""
        items: list[dict[str, Any]] = []
        query: dict[str, str | int] = {"labelSelector": label_selector, "limit": 500}
        while True:
            doc = await self.request("GET", res.path(namespace), query=query, accept=METADATA_LIST)
            items.extend(doc.get("items") or ())
            token = (doc.get("metadata") or {}).get("continue")
            if not token:
                return items
            query["continue"] = token

    async def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: str = MERGE_PATCH,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        path = res.path(namespace, name) + (f"/{subresource}" if subresource else "")
        result: dict[str, Any] = await self.request(
            "PATCH", path, body=patch, content_type=patch_type
        )
        return result

    async def create(
        self, res: Resource, namespace: str | None, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "POST", res.path(namespace), body=dict(body), content_type=JSON
        )
        return result

    async def replace(
        self, res: Resource, namespace: str | None, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "PUT", res.path(namespace, name), body=dict(body), content_type=JSON
        )
        return result


__all__ = [
    "EVENTS",
    "HELMRELEASES",
    "JSON",
    "LEASES",
    "MERGE_PATCH",
    "METADATA_LIST",
    "SECRETS",
    "KubeApiError",
    "KubeClient",
    "KubeConnectionError",
    "KubeError",
    "Resource",
    "Stream",
    "url_template",
]
