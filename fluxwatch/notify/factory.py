"""From a ProviderSpec to a live provider: secret keys read, merged over the spec, class looked up.

A provider that cannot be built (missing Secret, no token, bad certificate)
does not stop fluxwatch, whose first duty is recovery: it becomes an
``UnavailableProvider`` that fails every event it gets, loudly, with the
reason it could not be built.
"""

from __future__ import annotations

import asyncio
import logging

from fluxwatch.notify.config import ProviderSpec
from fluxwatch.notify.credentials import (
    Credentials,
    SecretReader,
    read_secret_path,
    read_secret_ref,
    ssl_context,
    with_cert_secret,
    with_proxy_secret,
)
from fluxwatch.notify.errors import DeliveryError, NotifyConfigError
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers import Provider, ProviderDeps, ProviderSettings, provider_class
from fluxwatch.notify.redact import Redactor, url_credentials

log = logging.getLogger(__name__)


async def _read_secret(
    spec: ProviderSpec, field: str, name: str, namespace: str | None, reader: SecretReader | None
) -> tuple[dict[str, bytes], str]:
    if reader is None or not namespace:
        raise NotifyConfigError(
            f"provider {spec.name!r}: {field} {name!r} needs the Kubernetes API, which is "
            "not available here" + ("; use secretPath" if field == "secretRef" else "")
        )
    source = f"provider {spec.name!r}: {field}: Secret {namespace}/{name}"
    try:
        return await reader.read_secret(namespace, name), source
    except LookupError:
        raise NotifyConfigError(f"{source} not found") from None
    except PermissionError as exc:
        raise NotifyConfigError(f"{source} cannot be read: {exc}") from None
    except Exception as exc:
        raise NotifyConfigError(f"{source} cannot be read: {type(exc).__name__}") from None


async def read_credentials(
    spec: ProviderSpec,
    *,
    namespace: str | None,
    secret_reader: SecretReader | None,
) -> Credentials:
    """The provider's secret keys: ``secretRef`` or ``secretPath``, then ``certSecretRef``
    and ``proxySecretRef`` over them; empty when none is set.

    The Secrets live in the provider's ``namespace`` (Flux's metadata.namespace),
    else in ``namespace``, fluxwatch's own.
    """
    namespace = spec.namespace or namespace
    if spec.secret_path is not None:
        credentials = await read_secret_path(spec.secret_path)
    elif spec.secret_ref is not None:
        if secret_reader is None or not namespace:
            raise NotifyConfigError(
                f"provider {spec.name!r}: secretRef {spec.secret_ref.name!r} needs the "
                "Kubernetes API, which is not available here; use secretPath"
            )
        credentials = await read_secret_ref(secret_reader, namespace, spec.secret_ref.name)
    else:
        credentials = Credentials(source=f"provider {spec.name!r}")
    if spec.cert_secret_ref is not None:
        data, source = await _read_secret(
            spec, "certSecretRef", spec.cert_secret_ref.name, namespace, secret_reader
        )
        credentials = with_cert_secret(credentials, data, source)
    if spec.proxy_secret_ref is not None:
        data, source = await _read_secret(
            spec, "proxySecretRef", spec.proxy_secret_ref.name, namespace, secret_reader
        )
        credentials = with_proxy_secret(credentials, data, source)
    return credentials


def resolve_settings(spec: ProviderSpec, credentials: Credentials) -> ProviderSettings:
    """The spec with the secret's keys laid over it, and the TLS context they describe."""
    address = credentials.address or (spec.address.get_secret_value() if spec.address else "")
    proxy = credentials.proxy or (spec.proxy.get_secret_value() if spec.proxy else None)
    redactor = credentials.redactor().merged(
        Redactor([address, proxy, *url_credentials(address), *url_credentials(proxy)])
    )
    return ProviderSettings(
        name=spec.name,
        type=spec.type,
        address=address,
        channel=spec.channel,
        username=credentials.username or spec.username,
        token=credentials.token or "",
        password=credentials.password or "",
        headers=dict(credentials.headers),
        proxy=proxy,
        timeout=spec.timeout,
        ssl=ssl_context(credentials),
        redactor=redactor,
    )


class UnavailableProvider(Provider):
    """Stands in for a provider that could not be built; every event fails with the reason."""

    type = "unavailable"
    needs_address = False

    def __init__(self, settings: ProviderSettings, deps: ProviderDeps, reason: str) -> None:
        super().__init__(settings, deps)
        self.reason = reason

    async def post(self, event: Event) -> None:
        raise DeliveryError(f"unavailable: {self.reason}")


async def build_provider(
    spec: ProviderSpec, deps: ProviderDeps, credentials: Credentials
) -> Provider:
    """The provider for ``spec`` with these secret keys; NotifyConfigError if it cannot be."""
    settings = await asyncio.to_thread(resolve_settings, spec, credentials)
    return provider_class(spec.type)(settings, deps)


def has_secret(spec: ProviderSpec) -> bool:
    """Whether the provider's keys come from Secrets or a mounted directory."""
    return any(
        source is not None
        for source in (
            spec.secret_ref,
            spec.secret_path,
            spec.cert_secret_ref,
            spec.proxy_secret_ref,
        )
    )


async def open_provider_with_credentials(
    spec: ProviderSpec,
    deps: ProviderDeps,
    *,
    namespace: str | None = None,
    secret_reader: SecretReader | None = None,
) -> tuple[Provider, Credentials | None]:
    """:func:`open_provider`, and the credentials it was built with (None when unavailable)."""
    try:
        credentials = await read_credentials(spec, namespace=namespace, secret_reader=secret_reader)
        return await build_provider(spec, deps, credentials), credentials
    except NotifyConfigError as exc:
        log.error(
            "provider %s (type %s) is unavailable, its alerts will fail: %s",
            spec.name,
            spec.type,
            exc,
            extra={"provider": spec.name},
        )
        bare = ProviderSettings(name=spec.name, type=spec.type)
        return UnavailableProvider(bare, deps, str(exc)), None


async def open_provider(
    spec: ProviderSpec,
    deps: ProviderDeps,
    *,
    namespace: str | None = None,
    secret_reader: SecretReader | None = None,
) -> Provider:
    """Build the provider for ``spec``; on a configuration problem, an UnavailableProvider."""
    provider, _ = await open_provider_with_credentials(
        spec, deps, namespace=namespace, secret_reader=secret_reader
    )
    return provider
