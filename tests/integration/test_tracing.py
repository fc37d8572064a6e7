"""Traces of a real recovery, exported over OTLP/HTTP (protobuf) to a local receiver.

The seed's incident (FLUX-FACTS §1) replayed by ``incident-925`` leaves
``flux-system/bp-vpa`` stuck; a real daemon recovers it with force-reconcile
(§3) while tracing is configured from the standard ``OTEL_*`` variables only.
The receiver decodes what the SDK's exporter sends with opentelemetry-proto,
so the test checks the wire format, not the SDK's objects.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import AsyncIterator, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from fluxwatch.app import Daemon, build_router
from fluxwatch.demo import compressed
from fluxwatch.kube.client import KubeClient
from fluxwatch.settings import Settings
from fluxwatch.sim import scenarios
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.telemetry import tracing
from fluxwatch.telemetry.logs import JsonFormatter
from fluxwatch.telemetry.metrics import Metrics

# One replay serves every test of the module: it takes seconds, the checks take none.
pytestmark = pytest.mark.asyncio(loop_scope="module")

# incident-925 writes its force-reconcile while helm-controller fails over; at 0.01 the
# Lease's whole-second floor (1 s is 100 s there) makes the failover outlast the verify
# timeout and force-reconcile fails to verify, so this runs at the demo's own 0.02.
TIME_SCALE = 0.02
STUCK = ("flux-system", "bp-vpa")
# The provider's credentials: the webhook path and query, and the HMAC key.
SECRET_PATH = "T00000000-B00000000-s3cr3tp4thXXXXXXXXXXXX"
SECRET_QUERY = "q-s3cr3t-4e1f"
SECRET_TOKEN = "hmac-s3cr3t-9b7c2d"
SECRETS = (SECRET_PATH, SECRET_QUERY, SECRET_TOKEN)
PATCH_HR = "PATCH /apis/helm.toolkit.fluxcd.io/v2/namespaces/{namespace}/helmreleases/{name}"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@dataclass
class Received:
    """One span off the wire, ids as hex."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    status: tuple[int, str]
    resource: dict[str, Any]


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP trace endpoint on loopback (``/v1/traces``, protobuf)."""

    spans: list[Received] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        for resource_spans in message.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        Received(
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            events=[
                                (e.name, {a.key: _value(a.value) for a in e.attributes})
                                for e in span.events
                            ],
                            status=(span.status.code, span.status.message),
                            resource=resource,
                        )
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1/traces"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Webhook:
    """A generic webhook receiver that keeps each request's headers and event."""

    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    base: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def _post(self, request: web.Request) -> web.Response:
        assert request.match_info["key"] == SECRET_PATH
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append((headers, orjson.loads(await request.read())))
        self._arrived.set()
        return web.Response(status=202)

    async def wait_for(self, reason: str) -> None:
        while reason not in self.reasons():
            self._arrived.clear()
            await self._arrived.wait()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{key}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def reasons(self) -> list[str]:
        return [str(body.get("reason")) for _headers, body in self.requests]


class _EmitTimeJson(logging.Handler):
    """Formats at emit time, as the daemon's stream handler does: the span is still current."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


def _settings(kubeconfig: Path) -> Settings:
    return Settings.model_validate(
        compressed(
            TIME_SCALE,
            {
                "kubeconfig": str(kubeconfig),
                "shutdown_timeout": 5.0,
                "leader": {
                    "namespace": "fluxwatch-system",
                    "identity": "fluxwatch-tracing",
                    "lease_duration": 3.0,
                    "renew_deadline": 2.0,
                    "retry_period": 0.5,
                },
                "telemetry": {"metrics_addr": "127.0.0.1:0", "health_addr": "127.0.0.1:0"},
                "notify": {
                    "providers": [
                        {
                            "name": "webhook",
                            "type": "generic-hmac",
                            "secretRef": {"name": "webhook-credentials"},
                        }
                    ],
                    "alerts": [
                        {
                            "name": "everything",
                            "providerRef": {"name": "webhook"},
                            "eventSeverity": "info",
                            "eventSources": [{"kind": "*", "name": "*", "namespace": "*"}],
                        }
                    ],
                },
            },
        )
    )


def _secret(address: str) -> dict[str, Any]:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "webhook-credentials", "namespace": "fluxwatch-system"},
        "data": {"address": b64(address), "token": b64(SECRET_TOKEN)},
    }


@dataclass
class Recovered:
    spans: list[Received]
    webhook: Webhook
    logs: list[dict[str, Any]]


@pytest.fixture(scope="module")
def otel_environment() -> Iterator[MutableMapping[str, str]]:
    """The module's ``OTEL_*`` variables, restored afterwards."""
    names = (
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    )
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield os.environ
    finally:
        for name in names:
            os.environ.pop(name, None)
        os.environ.update(saved)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recovered(
    otel_environment: MutableMapping[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Recovered]:
    """incident-925 recovered by a daemon whose traces go to a local OTLP receiver."""
    otlp, webhook = OtlpReceiver(), Webhook()
    await otlp.start()
    await webhook.start()
    otel_environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = otlp.url
    api = ApiServer()
    await api.start()
    api.store.create("secrets", _secret(f"{webhook.base}/hooks/{SECRET_PATH}?token={SECRET_QUERY}"))
    run = await scenarios.start("incident-925", api.store, time_scale=TIME_SCALE)
    traces = tracing.setup_tracing()
    assert traces.enabled and tracing.enabled()
    logs = _EmitTimeJson()
    app_log = logging.getLogger("fluxwatch.app")
    level = app_log.level
    app_log.setLevel(logging.INFO)
    app_log.addHandler(logs)
    kubeconfig = api.write_kubeconfig(tmp_path_factory.mktemp("tracing") / "kubeconfig")
    client = await KubeClient.from_config(kubeconfig)
    try:
        settings = _settings(kubeconfig)
        metrics = Metrics()
        router = await build_router(settings, client, metrics)
        daemon = Daemon(settings, client, metrics=metrics, router=router)
        task = asyncio.create_task(daemon.run(install_signals=False))
        arrived = asyncio.create_task(webhook.wait_for("RecoverySucceeded"))
        await asyncio.wait([arrived, task], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        arrived.cancel()
        assert "RecoverySucceeded" in webhook.reasons(), webhook.reasons()
        daemon.stop()
        assert await task == 0
    finally:
        app_log.removeHandler(logs)
        app_log.setLevel(level)
        await traces.shutdown()
        await run.stop()
        await client.close()
        await api.stop()
    assert not tracing.enabled()
    yield Recovered(otlp.spans, webhook, logs.lines)
    await webhook.stop()
    await otlp.stop()


def _one(spans: list[Received], **match: Any) -> Received:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one span with {match}, got {[s.name for s in found]}"
    return found[0]


def _children(spans: list[Received], parent: Received) -> list[Received]:
    return [s for s in spans if s.parent_id == parent.span_id and s.trace_id == parent.trace_id]


async def test_one_recovery_is_one_trace_of_named_spans(recovered: Recovered) -> None:
    """FLUX-FACTS §1/§3: the stuck bp-vpa is recovered by force-reconcile; its trace holds
    the root, the step, its PATCH and the verification, with semantic attributes."""
    spans = recovered.spans
    roots = [
        s
        for s in spans
        if s.name == "recover helmrelease" and s.attributes.get("fluxwatch.outcome") == "succeeded"
    ]
    assert len(roots) == 1
    root = roots[0]
    assert root.parent_id == ""
    assert root.attributes["k8s.namespace.name"] == STUCK[0]
    assert root.attributes["k8s.helmrelease.name"] == STUCK[1]
    assert root.attributes["fluxwatch.verdict"] == "stuck"
    assert root.attributes["fluxwatch.ladder"] == ["force-reconcile", "suspend-toggle"]
    assert [name for name, _ in root.events] == ["stuck detected"]
    assert root.resource["service.name"] == "fluxwatch"

    trace = [s for s in spans if s.trace_id == root.trace_id]
    step = _one(_children(trace, root), name="force-reconcile")
    assert step.attributes["fluxwatch.strategy"] == "force-reconcile"
    assert step.status[0] != Status.STATUS_CODE_ERROR

    # One PATCH, or two when helm-controller wrote the release between fluxwatch's read and
    # its write: the step re-reads after the 409 and writes once more (engine/recovery.py).
    *conflicts, write = [s for s in _children(trace, step) if s.name == PATCH_HR]
    assert len(conflicts) <= 1
    assert [c.attributes["http.response.status_code"] for c in conflicts] in ([], [409])
    assert write.kind == Span.SPAN_KIND_CLIENT
    assert write.attributes["http.request.method"] == "PATCH"
    assert write.attributes["http.response.status_code"] == 200
    assert write.attributes["k8s.namespace.name"] == STUCK[0]
    assert write.attributes["url.path"] == (
        "/apis/helm.toolkit.fluxcd.io/v2/namespaces/flux-system/helmreleases/bp-vpa"
    )
    assert write.attributes["server.address"] == "127.0.0.1"

    verify = _one(_children(trace, step), name="verify")
    assert verify.attributes["fluxwatch.verified"] is True

    # Every alert the attempt raised was delivered inside the same trace.
    deliveries = [s for s in trace if s.name == "notify webhook"]
    assert len(deliveries) >= 3  # StuckDetected, RecoveryStarted, RecoverySucceeded
    for delivery in deliveries:
        assert delivery.parent_id in {root.span_id, step.span_id}
        post = _one(_children(trace, delivery), name="POST")
        assert post.kind == Span.SPAN_KIND_CLIENT
        assert post.attributes["http.response.status_code"] == 202
        assert post.attributes["fluxwatch.provider"] == "webhook"


async def test_webhooks_carry_the_traceparent_of_their_delivery(recovered: Recovered) -> None:
    spans = {(s.trace_id, s.span_id): s for s in recovered.spans}
    succeeded = [
        headers
        for headers, body in recovered.webhook.requests
        if body["reason"] == "RecoverySucceeded"
    ]
    assert len(succeeded) == 1
    version, trace_id, span_id, flags = succeeded[0]["traceparent"].split("-")
    assert version == "00"
    assert int(flags, 16) & 0x01  # sampled
    post = spans[(trace_id, span_id)]
    assert post.name == "POST"
    root = spans[(trace_id, spans[(trace_id, post.parent_id)].parent_id)]
    assert root.name == "recover helmrelease"
    assert root.attributes["k8s.helmrelease.name"] == STUCK[1]
    # Only the W3C trace context: no baggage goes to third-party receivers.
    assert all("baggage" not in headers for headers, _ in recovered.webhook.requests)


async def test_log_lines_carry_the_trace(recovered: Recovered) -> None:
    spans = {s.span_id: s for s in recovered.spans}
    line = next(line for line in recovered.logs if line.get("reason") == "RecoverySucceeded")
    assert line["span_id"] in spans
    assert spans[line["span_id"]].trace_id == line["trace_id"]
    assert spans[line["span_id"]].name == "recover helmrelease"


async def test_no_secret_reaches_a_span(recovered: Recovered) -> None:
    """The provider's address path, query and token appear in no attribute, event or status
    (the webhook got them, so they were in play)."""
    assert recovered.webhook.requests
    dumped = orjson.dumps(
        [[s.name, s.attributes, s.events, s.status, s.resource] for s in recovered.spans]
    ).decode()
    for secret in SECRETS:
        assert secret not in dumped
    assert "/hooks/" not in dumped


async def test_tracing_is_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    traces = tracing.setup_tracing()
    assert not traces.enabled and not tracing.enabled()
    assert tracing.trace_headers() == {}
    await traces.shutdown()
    assert not tracing.endpoint_configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert not tracing.endpoint_configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}
    )
    assert tracing.endpoint_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318"})
