"""A provider's secret keys, from a Kubernetes Secret or a mounted directory.

Both sources hold the keys Flux uses (``address``, ``token``, ``username``,
``password``, ``headers``, ``proxy``, ``ca.crt``, ``tls.crt``, ``tls.key``);
both become one ``Credentials`` value whose repr names the keys present and
never a value. Flux's two other Secrets lay their keys over it: the
``certSecretRef`` Secret's ``ca.crt``, ``tls.crt`` and ``tls.key`` (or the
deprecated ``caFile``, ``certFile``, ``keyFile``) replace the TLS keys, and the
``proxySecretRef`` Secret's ``address``, ``username`` and ``password`` make the
proxy URL, as fluxcd/pkg's ``runtime/secrets`` reads them. Reading a Secret
needs the Kubernetes API, which only ``fluxwatch.kube`` may call, so it goes
through the ``SecretReader`` protocol; a directory is read here.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import yaml
from yarl import URL

from fluxwatch.notify.errors import NotifyConfigError
from fluxwatch.notify.redact import Redactor, basic_credentials, url_credentials

SECRET_KEYS = (
    "address",
    "token",
    "username",
    "password",
    "headers",
    "proxy",
    "ca.crt",
    "tls.crt",
    "tls.key",
)


@runtime_checkable
class SecretReader(Protocol):
    """Reads a Secret's data, base64-decoded; the kube layer implements it.

    Raise ``LookupError`` when the Secret does not exist and ``PermissionError`` when
    the API server refuses it (its message, the 403 that names the verb and the user,
    is shown); any other exception is reported as an unreadable secret, by its type
    only.
    """

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]: ...


@dataclass(frozen=True, slots=True)
class Credentials:
    """The secret keys of one provider; every field is optional."""

    address: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    proxy: str | None = field(default=None, repr=False)
    ca_crt: bytes | None = field(default=None, repr=False)
    tls_crt: bytes | None = field(default=None, repr=False)
    tls_key: bytes | None = field(default=None, repr=False)
    source: str = ""

    def __repr__(self) -> str:
        present = [f.name for f in fields(self) if f.name != "source" and getattr(self, f.name)]
        return f"Credentials(source={self.source!r}, keys={present})"

    def redactor(self) -> Redactor:
        """Knows every secret value here, including each header value."""
        basic = (
            basic_credentials(self.username, self.password)
            if self.username and self.password
            else None
        )
        return Redactor(
            [
                self.address,
                self.token,
                self.password,
                basic,
                self.proxy,
                *self.headers.values(),
                *url_credentials(self.address),
                *url_credentials(self.proxy),
            ]
        )


def parse_secret(data: Mapping[str, bytes], source: str) -> Credentials:
    """Credentials from raw Secret data; ``source`` names where it came from, for errors."""

    def text(key: str) -> str | None:
        raw = data.get(key)
        if raw is None:
            return None
        try:
            value = raw.decode().strip()
        except UnicodeDecodeError:
            raise NotifyConfigError(f"{source}: key {key!r} is not UTF-8 text") from None
        return value or None

    headers: dict[str, str] = {}
    raw_headers = text("headers")
    if raw_headers:
        try:
            loaded = yaml.safe_load(raw_headers)
        except yaml.YAMLError:
            loaded = None
        if not isinstance(loaded, dict):
            # The YAML error would quote the text, which holds the header values.
            raise NotifyConfigError(
                f"{source}: key 'headers' must be a YAML map of header names to values"
            )
        headers = {str(k): str(v) for k, v in loaded.items()}

    tls_crt, tls_key = data.get("tls.crt"), data.get("tls.key")
    if bool(tls_crt) != bool(tls_key):
        raise NotifyConfigError(f"{source}: keys 'tls.crt' and 'tls.key' must be set together")
    return Credentials(
        address=text("address"),
        token=text("token"),
        username=text("username"),
        password=text("password"),
        headers=headers,
        proxy=text("proxy"),
        ca_crt=data.get("ca.crt") or None,
        tls_crt=tls_crt or None,
        tls_key=tls_key or None,
        source=source,
    )


def _text(data: Mapping[str, bytes], key: str, source: str) -> str:
    try:
        return data.get(key, b"").decode().strip()
    except UnicodeDecodeError:
        raise NotifyConfigError(f"{source}: key {key!r} is not UTF-8 text") from None


def with_cert_secret(
    credentials: Credentials, data: Mapping[str, bytes], source: str
) -> Credentials:
    """``credentials`` with the TLS keys of a ``certSecretRef`` Secret, which win, as in Flux."""

    def key(name: str, legacy: str) -> bytes | None:
        return data.get(name) or data.get(legacy) or None

    ca_crt, tls_crt, tls_key = (
        key("ca.crt", "caFile"),
        key("tls.crt", "certFile"),
        key("tls.key", "keyFile"),
    )
    if bool(tls_crt) != bool(tls_key):
        raise NotifyConfigError(f"{source}: keys 'tls.crt' and 'tls.key' must be set together")
    if not (ca_crt or tls_crt):
        raise NotifyConfigError(
            f"{source}: certSecretRef needs ca.crt, or tls.crt with tls.key, or all three"
        )
    return replace(credentials, ca_crt=ca_crt, tls_crt=tls_crt, tls_key=tls_key)


def with_proxy_secret(
    credentials: Credentials, data: Mapping[str, bytes], source: str
) -> Credentials:
    """``credentials`` with the proxy a ``proxySecretRef`` Secret describes (``address``,
    optional ``username`` and ``password``)."""
    address = _text(data, "address", source)
    if not address:
        raise NotifyConfigError(f"{source}: proxySecretRef needs key 'address', the proxy URL")
    url = URL(address)
    if url.scheme not in ("http", "https") or not url.host:
        raise NotifyConfigError(f"{source}: key 'address' must be an http:// or https:// URL")
    username, password = _text(data, "username", source), _text(data, "password", source)
    if username:
        url = url.with_user(username).with_password(password or None)
    return replace(credentials, proxy=str(url))


def _read_dir(path: Path) -> dict[str, bytes]:
    if not path.is_dir():
        raise NotifyConfigError(f"secretPath {str(path)!r} is not a directory")
    data: dict[str, bytes] = {}
    for key in SECRET_KEYS:
        # A mounted Secret is a set of symlinks into ..data; is_file follows them.
        candidate = path / key
        if candidate.is_file():
            try:
                data[key] = candidate.read_bytes()
            except OSError as exc:
                raise NotifyConfigError(
                    f"secretPath {str(path)!r}: cannot read key {key!r}: {exc.strerror}"
                ) from None
    return data


async def read_secret_path(path: Path | str) -> Credentials:
    """Credentials from a directory with one file per key (a mounted Secret)."""
    path = Path(path)
    data = await asyncio.to_thread(_read_dir, path)
    return parse_secret(data, f"secretPath {str(path)!r}")


async def read_secret_ref(reader: SecretReader, namespace: str, name: str) -> Credentials:
    """Credentials from the Secret ``namespace/name`` through the kube layer."""
    source = f"Secret {namespace}/{name}"
    try:
        data = await reader.read_secret(namespace, name)
    except LookupError:
        raise NotifyConfigError(f"{source} not found") from None
    except PermissionError as exc:
        raise NotifyConfigError(f"{source} cannot be read: {exc}") from None
    except Exception as exc:
        raise NotifyConfigError(f"{source} cannot be read: {type(exc).__name__}") from None
    return parse_secret(data, source)


def _load_client_cert(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl loads a certificate chain only from files; hold them for the call only, mode 0600.
    with tempfile.TemporaryDirectory(prefix="fluxwatch-tls-") as tmp:
        cert_file, key_file = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        for file_name, content in ((cert_file, cert), (key_file, key)):
            fd = os.open(file_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
        context.load_cert_chain(cert_file, key_file)


def ssl_context(credentials: Credentials) -> ssl.SSLContext | None:
    """A TLS context for a custom CA and/or a client certificate; None keeps the defaults.

    A ``ca.crt`` replaces the system roots, as in Flux, so a private CA does
    not silently widen trust.
    """
    if not credentials.ca_crt and not credentials.tls_crt:
        return None
    try:
        if credentials.ca_crt:
            context = ssl.create_default_context(cadata=credentials.ca_crt.decode())
        else:
            context = ssl.create_default_context()
        if credentials.tls_crt and credentials.tls_key:
            _load_client_cert(context, credentials.tls_crt, credentials.tls_key)
    except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
        reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else type(exc).__name__
        raise NotifyConfigError(
            f"{credentials.source}: cannot use ca.crt/tls.crt/tls.key: {reason}"
        ) from None
    return context
