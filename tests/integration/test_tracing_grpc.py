"""Traces over OTLP/gRPC when ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``, to a local receiver.

The receiver is a real gRPC server (grpcio) serving opentelemetry-proto's
TraceService on loopback, so the test checks what reaches the wire: the spans,
and the resource that says which pod sent them (``service.instance.id`` is the
pod's name from the downward API, not the SDK's random UUID).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from fluxwatch.telemetry import tracing

POD = "fluxwatch-7d9c5b6f4-abcde"
OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SERVICE_NAME",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps (span name, resource attributes) of every export."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, Any]]] = []

    async def Export(  # the generated servicer's method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend((span.name, resource) for span in scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest_asyncio.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Receiver]:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    found = Receiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(found, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("POD_NAME", POD)
    try:
        yield found
    finally:
        await server.stop(grace=None)


async def _one_span(name: str) -> tracing.Tracing:
    traces = tracing.setup_tracing()
    assert traces.enabled and tracing.enabled()
    with trace.get_tracer("fluxwatch.engine.recovery").start_as_current_span(name):
        pass
    assert await traces.flush()
    await traces.shutdown()
    return traces


async def test_spans_go_over_grpc_named_by_the_pod(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fluxwatch")
    traces = await _one_span("recovery")
    assert [name for name, _ in receiver.spans] == ["recovery"]
    resource = receiver.spans[0][1]
    assert resource["service.name"] == "fluxwatch"
    assert resource["service.instance.id"] == POD
    assert resource["k8s.pod.name"] == POD
    assert traces.endpoint.startswith("http://127.0.0.1:")
    assert any(r.getMessage().startswith("tracing on: OTLP/gRPC to ") for r in caplog.records)


async def test_an_explicit_instance_id_outranks_the_pod_name(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=blue-1,team=platform")
    await _one_span("recovery")
    (_, resource) = receiver.spans[0]
    assert resource["service.instance.id"] == "blue-1"
    assert resource["team"] == "platform"


async def test_the_traces_protocol_variable_comes_first(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    await _one_span("verify")
    assert [name for name, _ in receiver.spans] == ["verify"]


async def test_an_unsupported_protocol_leaves_tracing_off_and_says_so(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    traces = tracing.setup_tracing()
    assert not traces.enabled and not tracing.enabled()
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == (
        "tracing off: OTLP protocol 'http/json' is not supported; "
        "expected one of http/protobuf, grpc"
    )
    assert receiver.spans == []


def test_protocol_defaults_to_http_protobuf() -> None:
    assert tracing.protocol({}) == "http/protobuf"
    assert tracing.protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": " GRPC "}) == "grpc"
