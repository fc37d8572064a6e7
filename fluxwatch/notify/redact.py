"""Keeping secrets out of logs, errors and reprs.

Two tools. ``redact_url`` makes an address printable by a rule (userinfo,
credential-looking query values and Telegram's ``bot<token>`` path segment
become ``***``); ``origin`` is stricter and keeps scheme, host and port only,
for webhook URLs whose path itself is the credential (Slack, Teams,
Discord). ``Redactor`` knows the actual secret values of one provider and
scrubs them out of any text, the net under everything else.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

from yarl import URL

MASK = "***"

# Query parameters that carry credentials in webhook URLs seen in the wild
# (Google Chat's key/token, Grafana's api_key, signed URLs' sig).
_SECRET_QUERY = re.compile(
    r"(token|key|secret|password|passwd|pwd|sig|signature|auth|code|credential)", re.I
)
_TELEGRAM_BOT = re.compile(r"/bot[^/]+")
# Shorter values would mask ordinary words in messages; a real credential is longer.
_MIN_SECRET_LENGTH = 4
# Webhook keys in paths are long (Slack 24, Discord 68, Teams 32+); route words are not.
_MIN_TOKEN_SEGMENT = 16


def redact_url(url: str) -> str:
    """``url`` with userinfo, credential query values and bot tokens replaced by ``***``."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return MASK
    if not parsed.host:
        return MASK
    if parsed.user is not None or parsed.password is not None:
        parsed = parsed.with_user(MASK).with_password(None)
    if parsed.query:
        query = [(k, MASK if _SECRET_QUERY.search(k) else v) for k, v in parsed.query.items()]
        parsed = parsed.with_query(query)
    text = str(parsed)
    return _TELEGRAM_BOT.sub("/bot" + MASK, text)


def origin(url: str) -> str:
    """``scheme://host[:port]`` only: safe to print for any webhook address."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return MASK
    if not parsed.host or not parsed.scheme:
        return MASK
    return str(parsed.origin())


def url_credentials(url: str | None) -> list[str]:
    """The secret parts of ``url``: its password, credential-looking query values, and
    long path segments, which are how Slack, Discord and Teams webhooks carry their key."""
    if not url:
        return []
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return []
    found = [parsed.password or ""]
    if parsed.user is not None and parsed.password:
        found.append(basic_credentials(parsed.user, parsed.password))
    found.extend(v for k, v in parsed.query.items() if _SECRET_QUERY.search(k))
    found.extend(part for part in parsed.parts if len(part) >= _MIN_TOKEN_SEGMENT)
    return [value for value in found if value]


def basic_credentials(username: str, password: str) -> str:
    """The base64 of ``username:password`` that a Basic Authorization header carries."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


class Redactor:
    """Scrubs a known set of secret values (and their URL-encoded forms) out of text."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        found: set[str] = set()
        for value in secrets:
            if not value or len(value) < _MIN_SECRET_LENGTH:
                continue
            found.update({value, quote(value, safe=""), quote(value), unquote(value)})
        # Longest first, so a URL is masked whole before its token inside it is.
        self._secrets = sorted(
            (s for s in found if len(s) >= _MIN_SECRET_LENGTH), key=len, reverse=True
        )

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} values)"

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def merged(self, other: Redactor) -> Redactor:
        merged = Redactor()
        merged._secrets = sorted(set(self._secrets) | set(other._secrets), key=len, reverse=True)
        return merged
