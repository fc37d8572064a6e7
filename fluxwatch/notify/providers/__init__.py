"""The providers, one module per type, and the registry that maps ``type`` to class."""

from __future__ import annotations

from collections.abc import Mapping

from fluxwatch.notify.errors import NotifyConfigError
from fluxwatch.notify.providers.alertmanager import Alertmanager
from fluxwatch.notify.providers.base import (
    EventWriter,
    Provider,
    ProviderDeps,
    ProviderSettings,
)
from fluxwatch.notify.providers.datadog import DataDog
from fluxwatch.notify.providers.discord import Discord
from fluxwatch.notify.providers.flux import Flux
from fluxwatch.notify.providers.generic import Generic
from fluxwatch.notify.providers.generic_hmac import GenericHMAC
from fluxwatch.notify.providers.googlechat import GoogleChat
from fluxwatch.notify.providers.grafana import Grafana
from fluxwatch.notify.providers.kubernetes_event import KubernetesEvent
from fluxwatch.notify.providers.lark import Lark
from fluxwatch.notify.providers.matrix import Matrix
from fluxwatch.notify.providers.msteams import MSTeams
from fluxwatch.notify.providers.nats import Nats
from fluxwatch.notify.providers.opsgenie import Opsgenie
from fluxwatch.notify.providers.pagerduty import PagerDuty
from fluxwatch.notify.providers.rocket import Rocket
from fluxwatch.notify.providers.sentry import Sentry
from fluxwatch.notify.providers.slack import Slack
from fluxwatch.notify.providers.telegram import Telegram
from fluxwatch.notify.providers.webex import Webex
from fluxwatch.notify.providers.zulip import Zulip

REGISTRY: Mapping[str, type[Provider]] = {
    cls.type: cls
    for cls in (
        Generic,
        GenericHMAC,
        Slack,
        Discord,
        Rocket,
        MSTeams,
        GoogleChat,
        Webex,
        Telegram,
        Matrix,
        Opsgenie,
        PagerDuty,
        Alertmanager,
        Grafana,
        DataDog,
        Sentry,
        Lark,
        Zulip,
        Nats,
        KubernetesEvent,
        Flux,
    )
}


def known_types() -> tuple[str, ...]:
    return tuple(sorted(REGISTRY))


def provider_class(type_: str) -> type[Provider]:
    """The class for a provider ``type``; an unknown type names the known ones."""
    try:
        return REGISTRY[type_]
    except KeyError:
        raise NotifyConfigError(
            f"unknown provider type {type_!r}; known types: {', '.join(known_types())}"
        ) from None


__all__ = [
    "REGISTRY",
    "EventWriter",
    "Provider",
    "ProviderDeps",
    "ProviderSettings",
    "known_types",
    "provider_class",
]
