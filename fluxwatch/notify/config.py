"""Providers and alerts as the YAML settings file spells them: Flux's Provider and Alert specs.

The models mirror notification-controller's v1beta3 ``spec`` fields with the
same camelCase names, so a Flux user can copy a spec across; snake_case names
work too. fluxwatch's differences: a provider has a ``name`` (Flux has
``metadata.name``) and may read its secret keys from ``secretPath``, a
mounted directory, instead of ``secretRef``; an alert with no
``eventSources`` hears every fluxwatch event, and a source without
``namespace`` matches every namespace (there is no Alert namespace to default
to). Secrets are never inline: ``address`` and ``proxy`` are ``SecretStr``
because webhook URLs often are the credential, and validation errors hide
their input.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from fluxwatch.durations import Duration
from fluxwatch.notify.providers import known_types


class _Spec(BaseModel):
    # Errors must not echo inputs: a model-level error would print the raw
    # provider dicts, addresses included. Pydantic takes this setting from the
    # outermost model, so the global settings must set it too.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )


class LocalObjectReference(_Spec):
    """A Secret or Provider in the same namespace, by name."""

    name: str = Field(min_length=1)


class ProviderSpec(_Spec):
    """Where and how to deliver events: Flux's Provider spec plus a ``name``."""

    name: str = Field(min_length=1)
    type: str
    address: SecretStr | None = None
    channel: str = ""
    username: str = ""
    timeout: Duration = 15.0
    proxy: SecretStr | None = None
    secret_ref: LocalObjectReference | None = None
    secret_path: Path | None = None
    suspend: bool = False

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        known = known_types()
        if value not in known:
            raise ValueError(f"unknown provider type {value!r}; known types: {', '.join(known)}")
        return value

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("timeout must be longer than 0s")
        return value

    @model_validator(mode="after")
    def _one_secret_source(self) -> ProviderSpec:
        if self.secret_ref is not None and self.secret_path is not None:
            raise ValueError(f"provider {self.name!r}: set secretRef or secretPath, not both")
        return self


class EventSource(_Spec):
    """Which objects an alert listens to; ``name`` and ``kind`` take ``*`` globs."""

    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    namespace: str | None = None
    match_labels: dict[str, str] = Field(default_factory=dict)
    api_version: str | None = None


class AlertSpec(_Spec):
    """Which events go to which provider: Flux's Alert spec plus a ``name``."""

    name: str = Field(min_length=1)
    provider_ref: LocalObjectReference
    event_severity: Literal["info", "error"] = "info"
    event_sources: list[EventSource] = Field(default_factory=list)
    inclusion_list: list[str] = Field(default_factory=list)
    exclusion_list: list[str] = Field(default_factory=list)
    event_metadata: dict[str, str] = Field(default_factory=dict)
    summary: str = ""
    suspend: bool = False

    @field_validator("inclusion_list", "exclusion_list")
    @classmethod
    def _valid_regexes(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return patterns


class NotifySettings(_Spec):
    """Everything the notify room needs; the global settings nest or flatten this."""

    providers: list[ProviderSpec] = Field(default_factory=list)
    alerts: list[AlertSpec] = Field(default_factory=list)
    rate_limit_interval: Duration = 300.0
    queue_size: int = Field(default=100, ge=1)
    # Requests in flight per provider; one object's events still arrive in order.
    concurrency: int = Field(default=4, ge=1, le=64)
    # How often providers' secretRef/secretPath keys are read again (0 never).
    secret_refresh_interval: Duration = 300.0
    max_retries: int = Field(default=4, ge=0, le=10)
    retry_wait_min: Duration = 2.0
    retry_wait_max: Duration = 30.0

    @model_validator(mode="after")
    def _references_resolve(self) -> NotifySettings:
        names = [p.name for p in self.providers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"providers: duplicate provider names {', '.join(duplicates)}")
        alert_names = [a.name for a in self.alerts]
        duplicates = sorted({n for n in alert_names if alert_names.count(n) > 1})
        if duplicates:
            raise ValueError(f"alerts: duplicate alert names {', '.join(duplicates)}")
        for alert in self.alerts:
            if alert.provider_ref.name not in names:
                known = ", ".join(names) or "none configured"
                raise ValueError(
                    f"alert {alert.name!r}: providerRef.name {alert.provider_ref.name!r} "
                    f"is not a provider (providers: {known})"
                )
        if self.retry_wait_min > self.retry_wait_max:
            raise ValueError("retryWaitMin must not be longer than retryWaitMax")
        return self

    def provider(self, name: str) -> ProviderSpec:
        for spec in self.providers:
            if spec.name == name:
                return spec
        known = ", ".join(p.name for p in self.providers) or "none configured"
        raise KeyError(f"no provider named {name!r} (providers: {known})")
