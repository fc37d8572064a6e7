"""Alerts shaped like Flux notification-controller's: events, routing, transport, providers.

The engine builds ``Event``s with an ``EventFactory`` and calls
``Router.publish``; the router selects providers by alert rules, drops
repeats within the rate-limit window and delivers through per-provider
queues. The kube layer implements ``SecretReader`` and ``EventWriter``.
"""

from fluxwatch.notify.config import (
    AlertSpec,
    EventSource,
    LocalObjectReference,
    NotifySettings,
    ProviderSpec,
)
from fluxwatch.notify.credentials import Credentials, SecretReader
from fluxwatch.notify.errors import (
    Deduplicated,
    DeliveryError,
    NotDelivered,
    NotifyConfigError,
    NotifyError,
    Skipped,
)
from fluxwatch.notify.event import (
    Event,
    EventFactory,
    InvolvedObject,
    Meta,
    Reason,
    Severity,
    format_duration,
)
from fluxwatch.notify.metrics import MemoryMetrics, NotifyMetrics, PrometheusMetrics
from fluxwatch.notify.providers import (
    REGISTRY,
    EventWriter,
    Provider,
    ProviderDeps,
    ProviderSettings,
    known_types,
    provider_class,
)
from fluxwatch.notify.redact import Redactor, redact_url
from fluxwatch.notify.router import Router
from fluxwatch.notify.rules import Rule
from fluxwatch.notify.testalert import TestResult, send_test_alert
from fluxwatch.notify.transport import RetryPolicy, Transport

__all__ = [
    "REGISTRY",
    "AlertSpec",
    "Credentials",
    "Deduplicated",
    "DeliveryError",
    "Event",
    "EventFactory",
    "EventSource",
    "EventWriter",
    "InvolvedObject",
    "LocalObjectReference",
    "MemoryMetrics",
    "Meta",
    "NotDelivered",
    "NotifyConfigError",
    "NotifyError",
    "NotifyMetrics",
    "NotifySettings",
    "PrometheusMetrics",
    "Provider",
    "ProviderDeps",
    "ProviderSettings",
    "ProviderSpec",
    "Reason",
    "Redactor",
    "RetryPolicy",
    "Router",
    "Rule",
    "SecretReader",
    "Severity",
    "Skipped",
    "TestResult",
    "Transport",
    "format_duration",
    "known_types",
    "provider_class",
    "redact_url",
    "send_test_alert",
]
