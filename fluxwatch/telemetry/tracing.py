"""OpenTelemetry traces: one trace per recovery, exported over OTLP (HTTP or gRPC), or nothing.

Instrumented code everywhere uses the OpenTelemetry *API* only
(``trace.get_tracer(__name__)`` at import, spans at the call site); this
module is the one place that configures the SDK. :func:`setup_tracing` reads
the standard variables: tracing is on when ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and off when neither is (or when
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``). The protocol is
``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` or ``OTEL_EXPORTER_OTLP_PROTOCOL``:
``http/protobuf`` (the default) or ``grpc``; the SDK has no ``http/json``, so
that (or any other value) leaves tracing off with an error line rather than
sending spans where no receiver listens. Off means the
global provider is left alone, so every span is the API's shared no-op span:
no SDK object, no thread, no export. The exporter itself reads the rest of
the ``OTEL_EXPORTER_OTLP_*`` variables (headers, timeout, compression,
certificates), the SDK reads ``OTEL_TRACES_SAMPLER`` and the ``OTEL_BSP_*``
batch settings, and ``OTEL_SERVICE_NAME`` defaults to ``fluxwatch``.
``service.instance.id`` is the pod's name (``POD_NAME``, from the downward
API) unless ``OTEL_RESOURCE_ATTRIBUTES`` names one: the SDK's default is a
random UUID per process, which no one can match to a pod.

The API lets a process install its global provider only once, but a test
process (and the demo) sets tracing up and shuts it down several times. So
the global provider is a small switch installed on first use: it forwards to
the SDK provider of the current :class:`Tracing`, and to the no-op provider
after :meth:`Tracing.shutdown`.

Alert webhooks carry the W3C ``traceparent`` of their delivery span
(:func:`trace_headers`), never baggage: receivers are often third parties.
Attributes name objects and outcomes, never credentials: no URL query or
userinfo, no header values.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from fluxwatch import __version__

log = logging.getLogger(__name__)

SERVICE_NAME = "fluxwatch"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
PROTOCOLS = ("http/protobuf", "grpc")
_PROPAGATOR = TraceContextTextMapPropagator()
_NOOP_PROVIDER = trace.NoOpTracerProvider()


class _SwitchTracer(trace.Tracer):
    """A tracer that asks the switch for the real one at every span."""

    def __init__(self, switch: _SwitchProvider, name: str, version: str | None) -> None:
        self._switch = switch
        self._name = name
        self._version = version

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._switch.tracer(self._name, self._version).start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return self._switch.tracer(self._name, self._version).start_as_current_span(*args, **kwargs)


class _SwitchProvider(trace.TracerProvider):
    """The process's global provider: forwards to the current SDK provider or to no-op."""

    def __init__(self) -> None:
        self.target: trace.TracerProvider = _NOOP_PROVIDER
        self._tracers: dict[tuple[str, str | None], trace.Tracer] = {}

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        return _SwitchTracer(self, instrumenting_module_name, instrumenting_library_version)

    def tracer(self, name: str, version: str | None) -> trace.Tracer:
        key = (name, version)
        found = self._tracers.get(key)
        if found is None:
            found = self._tracers[key] = self.target.get_tracer(name, version)
        return found

    def point_at(self, target: trace.TracerProvider) -> None:
        self.target = target
        self._tracers = {}


_switch: _SwitchProvider | None = None
_switch_lock = threading.Lock()


def _install_switch() -> _SwitchProvider | None:
    """Install the switch as the global provider once; None if another provider got there
    first (``opentelemetry-instrument``, ``OTEL_PYTHON_TRACER_PROVIDER``): that one is used."""
    global _switch
    with _switch_lock:
        if _switch is None and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            candidate = _SwitchProvider()
            trace.set_tracer_provider(candidate)
            if trace.get_tracer_provider() is candidate:
                _switch = candidate
        return _switch


def endpoint_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces (an endpoint, SDK and exporter not disabled)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def _resource(environ: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.resources import Resource

    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME from os.environ.
    detected = dict(Resource.create().attributes)
    if str(detected.get("service.name", "")).startswith("unknown_service"):
        detected["service.name"] = SERVICE_NAME
    detected.setdefault("service.version", __version__)
    # The Deployment passes these through the downward API. The SDK fills
    # service.instance.id with a random UUID, so only an explicit one outranks the pod.
    if environ.get("POD_NAME"):
        detected.setdefault("k8s.pod.name", environ["POD_NAME"])
        if "service.instance.id" not in _explicit_attributes(environ):
            detected["service.instance.id"] = environ["POD_NAME"]
    if environ.get("POD_NAMESPACE"):
        detected.setdefault("k8s.namespace.name", environ["POD_NAMESPACE"])
    return Resource(detected)


def _explicit_attributes(environ: Mapping[str, str]) -> set[str]:
    """The keys ``OTEL_RESOURCE_ATTRIBUTES`` sets (``key=value,key=value``)."""
    pairs = environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",")
    return {pair.split("=", 1)[0].strip() for pair in pairs if "=" in pair}


def protocol(environ: Mapping[str, str]) -> str:
    """The OTLP protocol the environment asks for, traces' own variable first."""
    for name in PROTOCOL_VARIABLES:
        value = environ.get(name, "").strip().lower()
        if value:
            return value
    return "http/protobuf"


class Tracing:
    """What :func:`setup_tracing` configured; ``shutdown`` flushes and switches back to no-op."""

    def __init__(self, provider: Any = None, endpoint: str = "") -> None:
        self._provider = provider  # an SDK TracerProvider, or None when off
        self.endpoint = endpoint

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    def __repr__(self) -> str:
        return f"Tracing(enabled={self.enabled})"

    async def flush(self, timeout: float = 5.0) -> bool:
        """Export the spans ended so far. In a thread: the exporter's HTTP call is blocking,
        and its receiver may be served by this very loop (tests)."""
        if self._provider is None:
            return True
        millis = int(timeout * 1000)
        return bool(await asyncio.to_thread(self._provider.force_flush, millis))

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Flush what is pending and stop exporting; later spans are no-ops."""
        provider, self._provider = self._provider, None
        if provider is None:
            return
        if _switch is not None and _switch.target is provider:
            _switch.point_at(_NOOP_PROVIDER)
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see kube/leader.py
                await asyncio.to_thread(provider.shutdown)
        except TimeoutError:
            log.warning("trace export did not finish within %gs; spans dropped", timeout)


def setup_tracing(environ: Mapping[str, str] | None = None) -> Tracing:
    """Configure OTLP trace export from the ``OTEL_*`` variables, or do nothing."""
    env = os.environ if environ is None else environ
    if not endpoint_configured(env):
        return Tracing()
    wire = protocol(env)
    if wire not in PROTOCOLS:
        log.error(
            "tracing off: OTLP protocol %r is not supported; expected one of %s",
            wire,
            ", ".join(PROTOCOLS),
        )
        return Tracing()
    switch = _install_switch()
    if switch is None:
        log.info("an OpenTelemetry tracer provider is already installed; fluxwatch uses it")
        return Tracing()
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    exporter: SpanExporter
    if wire == "grpc":
        # Reads the same OTEL_EXPORTER_OTLP_* variables; http:// means plaintext.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        exporter = GrpcExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=_resource(env))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    switch.point_at(provider)
    # Log where spans go without a path, query or userinfo that could hold a credential.
    endpoint = next(env[name] for name in ENDPOINT_VARIABLES if env.get(name, "").strip())
    where = _origin(endpoint)
    shown = "gRPC" if wire == "grpc" else "HTTP"
    log.info("tracing on: OTLP/%s to %s", shown, where, extra={"service": SERVICE_NAME})
    return Tracing(provider, where)


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable endpoint)"
    return f"{parts.scheme}://{host}{port}"


def enabled() -> bool:
    """Whether spans are recorded right now (by fluxwatch's exporter or a provider
    someone else installed)."""
    if _switch is not None:
        return _switch.target is not _NOOP_PROVIDER
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def trace_headers() -> dict[str, str]:
    """The W3C ``traceparent`` (and ``tracestate``) of the current span, for a request."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


__all__ = [
    "SERVICE_NAME",
    "Tracing",
    "enabled",
    "endpoint_configured",
    "protocol",
    "setup_tracing",
    "trace_headers",
]
