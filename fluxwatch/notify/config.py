"""Providers and alerts as the YAML settings file spells them: Flux's Provider and Alert.

An entry is either a whole Flux object, copied from a Flux repository
(``apiVersion: notification.toolkit.fluxcd.io/v1beta3``, ``kind``,
``metadata``, ``spec``), or its ``spec`` flattened with a ``name`` (and an
optional ``namespace``) beside it; camelCase and snake_case names both work.
Every field of the v1beta3 CRDs (``/work/shared/flux-crds``) is accepted with
Flux's meaning or refused with a message naming the field and why:

* Provider: ``interval`` and ``proxy`` are accepted and reported as
  deprecated (Flux ignores the first and deprecates the second);
  ``secretRef``, ``certSecretRef`` (``ca.crt``, ``tls.crt``, ``tls.key``) and
  ``proxySecretRef`` (``address``, ``username``, ``password``) are read from
  the provider's ``namespace`` (default: fluxwatch's own); ``commitStatusExpr``
  and ``serviceAccountName`` and the types fluxwatch does not implement are
  refused, each with the reason.
* Alert: ``eventSources[].name`` is ``*`` or exact, a source without
  ``namespace`` means the Alert's own, ``apiVersion`` is not matched (as in
  notification-controller), ``inclusionList``/``exclusionList`` are Go (RE2)
  regular expressions, ``summary`` overrides ``eventMetadata.summary``.

fluxwatch's extensions, refused when ``fluxCompatible: true``: ``*`` globs in
a source's ``kind``, ``name`` and ``namespace`` (``namespace: "*"`` is every
namespace), the kinds fluxwatch reports on that Flux has not (``Lease``,
``Deployment``), an Alert without ``eventSources`` (it hears every event),
and ``secretPath`` (keys from a mounted directory). Secrets are never inline:
``address`` and ``proxy`` are ``SecretStr`` because webhook URLs often are the
credential, and validation errors hide their input.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import re2
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
from fluxwatch.notify.providers.flux import lost_reasons

API_VERSION = "notification.toolkit.fluxcd.io/v1beta3"
# Flux's Alert eventSources[].kind enum (v1beta3).
FLUX_KINDS = frozenset(
    {
        "Bucket",
        "GitRepository",
        "Kustomization",
        "HelmRelease",
        "HelmChart",
        "HelmRepository",
        "ImageRepository",
        "ImagePolicy",
        "ImageUpdateAutomation",
        "OCIRepository",
        "ArtifactGenerator",
        "ExternalArtifact",
    }
)
# The kinds fluxwatch's events are about that Flux's enum lacks.
FLUXWATCH_KINDS = frozenset({"Lease", "Deployment"})
_GLOB = frozenset("*?[")

# Flux's Provider types fluxwatch does not implement, and why.
_UNSUPPORTED = {
    **dict.fromkeys(
        (
            "github",
            "gitlab",
            "gitea",
            "bitbucketserver",
            "bitbucket",
            "azuredevops",
            "githubdispatch",
            "githubpullrequestcomment",
            "giteapullrequestcomment",
            "gitlabmergerequestcomment",
        ),
        "it writes commit statuses or change-request comments, and fluxwatch's events "
        "carry no commit",
    ),
    **dict.fromkeys(
        ("googlepubsub", "azureeventhub"),
        "it needs a cloud SDK and workload identity, which fluxwatch does not ship",
    ),
    **dict.fromkeys(
        ("otel", "zoom", "incident.io"),
        "fluxwatch does not implement it yet",
    ),
}


def go_regexp(pattern: str) -> Any:
    """``pattern`` compiled with RE2, the engine of Go's ``regexp``; ValueError names why not."""
    options = re2.Options()
    options.log_errors = False  # the error is raised, not also printed by the C++ library
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(
            f"invalid regular expression {pattern!r}: {why} (Flux uses Go's RE2 syntax: "
            "no look-around, no back-references)"
        ) from None


def _from_flux_object(data: Any, kind: str) -> Any:
    """A whole Flux object becomes the flat form: metadata.name/namespace beside the spec."""
    if not isinstance(data, Mapping) or "spec" not in data:
        return data
    api_version, got_kind = data.get("apiVersion"), data.get("kind")
    if api_version != API_VERSION:
        raise ValueError(
            f"apiVersion {api_version!r}: fluxwatch reads {kind} objects of {API_VERSION}"
        )
    if got_kind != kind:
        raise ValueError(f"kind {got_kind!r}: expected {kind}")
    unknown = sorted(set(data) - {"apiVersion", "kind", "metadata", "spec", "status"})
    if unknown:
        raise ValueError(f"unknown top-level fields {', '.join(unknown)} of a Flux {kind}")
    metadata = data.get("metadata") or {}
    spec = data.get("spec")
    if not isinstance(metadata, Mapping) or not isinstance(spec, Mapping):
        raise ValueError(f"metadata and spec of a Flux {kind} must be maps")
    flat = dict(spec)
    for key in ("name", "namespace"):
        if key in flat:
            raise ValueError(f"spec.{key} is not a field of a Flux {kind}: set metadata.{key}")
        if metadata.get(key):
            flat[key] = metadata[key]
    return flat


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
    """Where and how to deliver events: Flux's Provider, flat (``name`` beside the spec)."""

    name: str = Field(min_length=1)
    # metadata.namespace: where secretRef, certSecretRef and proxySecretRef are read.
    namespace: str | None = None
    type: str
    address: SecretStr | None = None
    channel: str = Field(default="", max_length=2048)
    username: str = Field(default="", max_length=2048)
    timeout: Duration = 15.0
    interval: Duration | None = None
    proxy: SecretStr | None = None
    secret_ref: LocalObjectReference | None = None
    cert_secret_ref: LocalObjectReference | None = None
    proxy_secret_ref: LocalObjectReference | None = None
    secret_path: Path | None = None
    commit_status_expr: str | None = None
    service_account_name: str | None = None
    suspend: bool = False

    @model_validator(mode="before")
    @classmethod
    def _flux_object(cls, data: Any) -> Any:
        return _from_flux_object(data, "Provider")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value in _UNSUPPORTED:
            raise ValueError(f"provider type {value!r} is not supported: {_UNSUPPORTED[value]}")
        known = known_types()
        if value not in known:
            raise ValueError(f"unknown provider type {value!r}; known types: {', '.join(known)}")
        return value

    @field_validator("address", "proxy")
    @classmethod
    def _max_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) > 2048:
            raise ValueError("longer than 2048 characters, Flux's limit")
        return value

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("timeout must be longer than 0s")
        return value

    @field_validator("commit_status_expr")
    @classmethod
    def _no_commit_status(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "commitStatusExpr is only used by Flux's commit-status providers (github, "
                "gitlab, ...), which fluxwatch does not implement: its events carry no commit"
            )
        return value

    @field_validator("service_account_name")
    @classmethod
    def _no_workload_identity(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "serviceAccountName is workload identity for cloud providers (azureeventhub, "
                "azuredevops, googlepubsub), which fluxwatch does not implement"
            )
        return value

    @model_validator(mode="after")
    def _one_secret_source(self) -> ProviderSpec:
        if self.secret_ref is not None and self.secret_path is not None:
            raise ValueError(f"provider {self.name!r}: set secretRef or secretPath, not both")
        if self.proxy is not None and self.proxy_secret_ref is not None:
            raise ValueError(
                f"provider {self.name!r}: set proxySecretRef or the deprecated proxy, not both"
            )
        return self

    def deprecations(self) -> list[str]:
        """The deprecated fields this provider uses, each with what to use instead."""
        found = []
        if self.interval is not None:
            found.append(
                f"provider {self.name!r}: interval is deprecated and not used in v1beta3 "
                "(Flux ignores it too); it can be removed"
            )
        if self.proxy is not None:
            found.append(
                f"provider {self.name!r}: proxy is deprecated in Flux; "
                "use proxySecretRef (a Secret with address, username, password)"
            )
        return found


class EventSource(_Spec):
    """Which objects an alert listens to: Flux's CrossNamespaceObjectReference."""

    kind: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(default=None, min_length=1, max_length=253)
    match_labels: dict[str, str] | None = None
    # Accepted and not matched: notification-controller matches kind, name, namespace.
    api_version: str | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value in FLUX_KINDS or value in FLUXWATCH_KINDS or _GLOB & set(value):
            return value
        raise ValueError(
            f"kind {value!r} is neither a Flux kind ({', '.join(sorted(FLUX_KINDS))}) nor one "
            f"fluxwatch reports on ({', '.join(sorted(FLUXWATCH_KINDS))})"
        )

    def extensions(self) -> list[str]:
        """What in this source a Flux Alert cannot say."""
        found = []
        if _GLOB & set(self.kind):
            found.append(f"kind {self.kind!r} is a glob")
        elif self.kind not in FLUX_KINDS:
            found.append(f"kind {self.kind!r} is not in Flux's eventSources kinds")
        if self.name != "*" and _GLOB & set(self.name):
            found.append(f"name {self.name!r} is a glob (Flux takes '*' or an exact name)")
        if self.namespace is not None and _GLOB & set(self.namespace):
            found.append(f"namespace {self.namespace!r} is a glob")
        return found


class AlertSpec(_Spec):
    """Which events go to which provider: Flux's Alert, flat (``name`` beside the spec)."""

    name: str = Field(min_length=1)
    # metadata.namespace: what a source without a namespace means.
    namespace: str | None = None
    provider_ref: LocalObjectReference
    event_severity: Literal["info", "error"] = "info"
    # None (left out) is fluxwatch's extension: every event.
    event_sources: list[EventSource] | None = None
    inclusion_list: list[str] = Field(default_factory=list)
    exclusion_list: list[str] = Field(default_factory=list)
    event_metadata: dict[str, str] = Field(default_factory=dict)
    summary: str = Field(default="", max_length=255)
    suspend: bool = False

    @model_validator(mode="before")
    @classmethod
    def _flux_object(cls, data: Any) -> Any:
        return _from_flux_object(data, "Alert")

    @field_validator("inclusion_list", "exclusion_list")
    @classmethod
    def _valid_regexes(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            go_regexp(pattern)
        return patterns

    @model_validator(mode="after")
    def _sources_resolve(self) -> AlertSpec:
        if self.event_sources is None:
            return self
        if not self.event_sources:
            raise ValueError(
                f"alert {self.name!r}: eventSources is empty, and in Flux such an Alert "
                "matches no event; list sources, or leave the field out to hear every "
                "fluxwatch event (a fluxwatch extension)"
            )
        if self.namespace is None:
            for i, source in enumerate(self.event_sources):
                if source.namespace is None:
                    raise ValueError(
                        f"alert {self.name!r}: eventSources[{i}] has no namespace, which in "
                        "Flux means the Alert's own, and this alert has none: set the alert's "
                        "namespace (metadata.namespace), the source's namespace, or "
                        "namespace '*' for every namespace (a fluxwatch extension)"
                    )
        return self

    def source_namespace(self, source: EventSource) -> str:
        """The namespace a source matches: its own, else the Alert's, as in Flux."""
        return source.namespace or self.namespace or ""

    def extensions(self) -> list[str]:
        """What in this alert a Flux Alert cannot say, each naming the field."""
        if self.event_sources is None:
            return [f"alert {self.name!r}: eventSources is left out (Flux requires it)"]
        return [
            f"alert {self.name!r}: eventSources[{i}].{problem}"
            for i, source in enumerate(self.event_sources)
            for problem in source.extensions()
        ]

    def deprecations(self) -> list[str]:
        if self.summary:
            return [
                f"alert {self.name!r}: summary is deprecated in Flux; "
                "use eventMetadata.summary (summary wins over it while both are set)"
            ]
        return []


class NotifySettings(_Spec):
    """Everything the notify room needs; the global settings nest or flatten this."""

    providers: list[ProviderSpec] = Field(default_factory=list)
    alerts: list[AlertSpec] = Field(default_factory=list)
    # Refuse fluxwatch's extensions: every alert means what it means in Flux.
    flux_compatible: bool = False
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
            provider = self.provider(alert.provider_ref.name)
            if alert.namespace and provider.namespace and alert.namespace != provider.namespace:
                raise ValueError(
                    f"alert {alert.name!r} in namespace {alert.namespace!r}: providerRef names "
                    f"provider {provider.name!r} of namespace {provider.namespace!r}, and in "
                    "Flux a providerRef is in the Alert's own namespace"
                )
        if self.retry_wait_min > self.retry_wait_max:
            raise ValueError("retryWaitMin must not be longer than retryWaitMax")
        self._flux_routes()
        if self.flux_compatible:
            problems = self.extensions()
            if problems:
                raise ValueError(
                    "fluxCompatible is set, and these are fluxwatch extensions: "
                    + "; ".join(problems)
                )
        return self

    def _flux_routes(self) -> None:
        """Refuse an alert that would hand the flux provider events no Flux Alert can match."""
        for alert in self.alerts:
            provider = self.provider(alert.provider_ref.name)
            if provider.type != "flux" or alert.suspend or provider.suspend:
                continue
            kinds = None if alert.event_sources is None else [s.kind for s in alert.event_sources]
            lost = lost_reasons(kinds, errors_only=alert.event_severity == "error")
            if lost:
                raise ValueError(
                    f"alert {alert.name!r} routes to flux provider {provider.name!r} events "
                    f"that notification-controller discards, as no Flux Alert can select "
                    f"their kind: {lost}; limit its eventSources to kind HelmRelease and "
                    "send those to another provider"
                )

    def extensions(self) -> list[str]:
        """Every fluxwatch extension in use, each naming the alert or provider and field."""
        found = [problem for alert in self.alerts for problem in alert.extensions()]
        found.extend(
            f"provider {p.name!r}: secretPath (Flux reads keys from secretRef only)"
            for p in self.providers
            if p.secret_path is not None
        )
        return found

    def deprecations(self) -> list[str]:
        """Deprecated Flux fields in use: accepted, and worth a warning."""
        found = [line for p in self.providers for line in p.deprecations()]
        found.extend(line for a in self.alerts for line in a.deprecations())
        return found

    def provider(self, name: str) -> ProviderSpec:
        for spec in self.providers:
            if spec.name == name:
                return spec
        known = ", ".join(p.name for p in self.providers) or "none configured"
        raise KeyError(f"no provider named {name!r} (providers: {known})")
