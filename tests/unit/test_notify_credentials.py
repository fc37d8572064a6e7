"""Secret keys from a mounted directory or a Secret, and redaction of what may hold them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fluxwatch.notify.credentials import (
    Credentials,
    SecretReader,
    parse_secret,
    read_secret_path,
    read_secret_ref,
    ssl_context,
    with_cert_secret,
    with_proxy_secret,
)
from fluxwatch.notify.errors import NotifyConfigError
from fluxwatch.notify.redact import Redactor, origin, redact_url, url_credentials

TOKEN = "xoxb-123456-very-secret-token"


def mount_secret(root: Path, data: dict[str, bytes]) -> Path:
    """Lay out files like the kubelet does: keys are symlinks into a ``..data`` directory."""
    real = root / "..2026_03_01_12_00_00.123"
    real.mkdir(parents=True)
    for key, value in data.items():
        (real / key).write_bytes(value)
    os.symlink(real.name, root / "..data")
    for key in data:
        os.symlink(f"..data/{key}", root / key)
    return root


async def test_secret_path_reads_the_flux_keys(tmp_path: Path) -> None:
    path = mount_secret(
        tmp_path / "secret",
        {
            "address": b"https://hooks.example.com/x\n",
            "token": TOKEN.encode(),
            "username": b"bot",
            "password": b"hunter2-long",
            "headers": b"X-Team: payments\nX-Api-Key: k-123456\n",
            "proxy": b"http://u:p@proxy:3128",
            "unrelated": b"ignored",
        },
    )
    creds = await read_secret_path(path)
    assert creds.address == "https://hooks.example.com/x"
    assert creds.token == TOKEN
    assert (creds.username, creds.password) == ("bot", "hunter2-long")
    assert dict(creds.headers) == {"X-Team": "payments", "X-Api-Key": "k-123456"}
    assert creds.proxy == "http://u:p@proxy:3128"
    assert creds.ca_crt is None
    assert TOKEN not in repr(creds) and "hunter2" not in repr(creds)
    assert "keys=['address', 'token', 'username', 'password', 'headers', 'proxy']" in repr(creds)


async def test_secret_path_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotifyConfigError, match="is not a directory"):
        await read_secret_path(tmp_path / "missing")


def test_headers_must_be_a_yaml_map_and_the_error_does_not_quote_them() -> None:
    with pytest.raises(NotifyConfigError, match="'headers' must be a YAML map") as info:
        parse_secret({"headers": b"- Authorization: Bearer s3cr3t-value"}, "Secret ns/x")
    assert "s3cr3t" not in str(info.value)


def test_client_certificate_needs_both_halves() -> None:
    with pytest.raises(NotifyConfigError, match=r"'tls\.crt' and 'tls\.key' must be set together"):
        parse_secret({"tls.crt": b"cert"}, "Secret ns/x")


def test_bad_certificates_are_a_config_error() -> None:
    creds = parse_secret({"ca.crt": b"not a certificate"}, "Secret ns/x")
    with pytest.raises(NotifyConfigError, match=r"Secret ns/x: cannot use ca\.crt"):
        ssl_context(creds)
    assert ssl_context(Credentials()) is None


class FakeSecrets:
    def __init__(self, secrets: dict[tuple[str, str], dict[str, bytes]]) -> None:
        self.secrets = secrets
        self.reads: list[tuple[str, str]] = []

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        self.reads.append((namespace, name))
        if (namespace, name) == ("fluxwatch", "broken"):
            raise RuntimeError(f"500 from API, token={TOKEN}")
        try:
            return self.secrets[namespace, name]
        except KeyError:
            raise LookupError(name) from None


async def test_secret_ref_goes_through_the_secret_reader() -> None:
    reader = FakeSecrets({("fluxwatch", "slack"): {"address": b"https://hooks.slack.com/T/B/C"}})
    assert isinstance(reader, SecretReader)
    creds = await read_secret_ref(reader, "fluxwatch", "slack")
    assert creds.address == "https://hooks.slack.com/T/B/C"
    assert creds.source == "Secret fluxwatch/slack"
    with pytest.raises(NotifyConfigError, match="Secret fluxwatch/nope not found"):
        await read_secret_ref(reader, "fluxwatch", "nope")
    with pytest.raises(NotifyConfigError, match="cannot be read: RuntimeError") as info:
        await read_secret_ref(reader, "fluxwatch", "broken")
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pa55word@hooks.example.com/x", "https://***@hooks.example.com/x"),
        (
            "https://chat.googleapis.com/v1/spaces/AAA/messages?key=AIzaKEY&token=TOK&x=1",
            "https://chat.googleapis.com/v1/spaces/AAA/messages?key=***&token=***&x=1",
        ),
        (
            "https://api.telegram.org/bot123456:ABC-def/sendMessage",
            "https://api.telegram.org/bot***/sendMessage",
        ),
        ("not a url", "***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_origin_keeps_scheme_host_port_only() -> None:
    assert origin("https://hooks.slack.com/services/T/B/SECRET?x=1") == "https://hooks.slack.com"
    assert origin("http://u:p@127.0.0.1:9093/api/v2/alerts") == "http://127.0.0.1:9093"
    assert origin("") == "***"


def test_url_credentials() -> None:
    assert url_credentials("http://u:pa55@h/x?token=abc1&y=2") == ["pa55", "dTpwYTU1", "abc1"]
    slack = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"
    assert url_credentials(slack) == ["XXXXXXXXXXXXXXXXXXXXXXXX"]
    assert url_credentials(None) == []


def test_redactor_scrubs_values_and_their_encodings() -> None:
    secret = "s3cr3t/with+chars"
    redactor = Redactor([secret, None, "", "abc"])
    text = f"plain {secret}, quoted s3cr3t%2Fwith%2Bchars, short abc stays"
    assert redactor.scrub(text) == "plain ***, quoted ***, short abc stays"
    assert secret not in repr(redactor)
    merged = redactor.merged(Redactor(["other-secret"]))
    assert merged.scrub("other-secret and s3cr3t/with+chars") == "*** and ***"


def test_cert_secret_keys_win_and_the_legacy_names_still_work() -> None:
    """fluxcd/pkg runtime/secrets: ca.crt, tls.crt, tls.key; caFile, certFile, keyFile legacy."""
    base = Credentials(ca_crt=b"from secretRef", source="s")
    got = with_cert_secret(base, {"caFile": b"CA", "certFile": b"CRT", "keyFile": b"KEY"}, "c")
    assert (got.ca_crt, got.tls_crt, got.tls_key) == (b"CA", b"CRT", b"KEY")
    assert with_cert_secret(base, {"ca.crt": b"NEW", "caFile": b"OLD"}, "c").ca_crt == b"NEW"
    with pytest.raises(NotifyConfigError, match=r"'tls\.crt' and 'tls\.key' must be set together"):
        with_cert_secret(base, {"tls.crt": b"CRT"}, "c")


def test_proxy_secret_becomes_a_url_with_its_credentials() -> None:
    data = {"address": b"http://proxy.corp:3128", "username": b"fw", "password": b"p@ss:word"}
    proxy = with_proxy_secret(Credentials(), data, "p").proxy
    assert proxy == "http://fw:p%40ss%3Aword@proxy.corp:3128"
    assert (
        with_proxy_secret(Credentials(), {"address": b"https://p:8443"}, "p").proxy
        == "https://p:8443"
    )
    with pytest.raises(NotifyConfigError, match="must be an http:// or https:// URL"):
        with_proxy_secret(Credentials(), {"address": b"socks5://p:1080"}, "p")
