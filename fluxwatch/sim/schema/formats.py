"""The string formats a CRD schema may name and how each is checked.

kube-apiserver keeps only the formats of apiextensions' ``supportedFormats`` list in a
CRD's schema (``int32``, ``int64``, ``float``, ``double`` and unknown names are
dropped before validation, so they check nothing) and checks the rest with
kube-openapi's strfmt registry, which mostly defers to Go's parsers (net.ParseIP,
net.ParseMAC, time.Parse, mail.ParseAddress, url.ParseRequestURI). The checks below
answer as those parsers do for the inputs a manifest carries.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Final

import re2

# apiextensions normalises a format by dropping "-" (``date-time`` is ``datetime``).
SUPPORTED: Final = frozenset(
    {
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
    }
)


def normalize(fmt: str) -> str:
    """The registry's name for a schema's ``format``, or "" when the server ignores it."""
    name = fmt.replace("-", "")
    return name if name in SUPPORTED else ""


_HOSTNAME_PATTERN: Final = (
    r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|"
    r"([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}"
    r"([a-zA-Z\p{L}]){2,63})$"
)
_UUID = re2.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
_UUID3 = re2.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
_UUID4 = re2.compile(
    r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"
)
_UUID5 = re2.compile(
    r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"
)
_DATETIME_TAIL = re2.compile(
    r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$"
)
_GO_DURATION = re2.compile(r"^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$")
_LOOSE_DURATION_PART = re2.compile(r"((\d+)\s*([A-Za-zµ]+))")
_LOOSE_UNITS: Final = (
    ("ns", "nano"),
    ("us", "µs", "micro"),
    ("ms", "milli"),
    ("s", "sec"),
    ("m", "min"),
    ("h", "hr", "hour"),
    ("d", "day"),
    ("w", "wk", "week"),
)
_BASE64 = re2.compile(
    r"^(?:[A-Za-z0-9+\/]{4})*(?:[A-Za-z0-9+\/]{2}==|[A-Za-z0-9+\/]{3}=|[A-Za-z0-9+\/]{4})$"
)
_HEXCOLOR = re2.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_RGBCOLOR = re2.compile(
    r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])"
    r"\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$"
)
_SSN = re2.compile(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$")
_ISBN10 = re2.compile(r"^(?:[0-9]{9}X|[0-9]{10})$")
_ISBN13 = re2.compile(r"^(?:[0-9]{13})$")
_CREDITCARD = re2.compile(
    r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|"
    r"2720)[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|"
    r"(?:2131|1800|35\d{3})\d{11}|6[27][0-9]{14})$"
)
_BSON = re2.compile(r"^[0-9a-fA-F]{24}$")
_URI_SCHEME = re2.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:")
_EMAIL_ADDR = re2.compile(r"^[^\s@<>()\[\]\\,;:\"]+@[^\s@<>()\[\]\\,;:\"]+$")


def _date(s: str) -> bool:
    if len(s) != 10 or s[4] != "-" or s[7] != "-":
        return False
    try:
        date(int(s[0:4]), int(s[5:7]), int(s[8:10]))
    except ValueError:
        return False
    return s[0:4].isdigit() and s[5:7].isdigit() and s[8:10].isdigit()


def _datetime(s: str) -> bool:
    if len(s) < 4:
        return False
    parts = s.lower().split("t")
    if len(parts) < 2 or not _date(parts[0]):
        return False
    m = _DATETIME_TAIL.search(parts[1])
    if m is None:
        return False
    return m.group(1) <= "23" and m.group(2) <= "59" and m.group(3) <= "59"


def _duration(s: str) -> bool:
    if s == "0" or _GO_DURATION.match(s):
        return True
    # strfmt's fallback: any "<n> <unit>" part with a unit it knows makes it a duration.
    for match in _LOOSE_DURATION_PART.finditer(s):
        unit = match.group(3).strip().lower()
        for variants in _LOOSE_UNITS:
            last = len(variants) - 1
            for i, variant in enumerate(variants):
                if (i == last and unit.startswith(variant)) or unit == variant:
                    return True
    return False


def _sloppy_ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """net.ParseIP, tolerating leading zeros in IPv4 parts as ParseIPSloppy does."""
    if "%" in s:
        return None
    if "." in s and ":" not in s:
        parts = s.split(".")
        if len(parts) != 4 or not all(p.isdigit() and p.isascii() and len(p) <= 3 for p in parts):
            return None
        if any(int(p) > 255 for p in parts):
            return None
        return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        return None


def _ipv4(s: str) -> bool:
    return _sloppy_ip(s) is not None and "." in s


def _ipv6(s: str) -> bool:
    return _sloppy_ip(s) is not None and ":" in s


def _cidr(s: str) -> bool:
    addr, sep, bits = s.partition("/")
    if not sep or not bits.isdigit() or not bits.isascii():
        return False
    ip = _sloppy_ip(addr)
    if ip is None:
        return False
    return int(bits) <= ip.max_prefixlen


def _byte(s: str) -> bool:
    if not _BASE64.match(s):
        return False
    try:
        base64.b64decode(s, validate=True)
    except binascii.Error:
        return False
    return True


def _uri(s: str) -> bool:
    # url.ParseRequestURI: an absolute URI or an absolute path, no fragment handling.
    if not s or any(ord(c) < 0x20 or ord(c) == 0x7F for c in s):
        return False
    if s.startswith("/"):
        return True
    if not _URI_SCHEME.match(s):
        return False
    rest = s.split(":", 1)[1]
    if rest.startswith("//"):
        host = rest[2:].split("/", 1)[0].split("?", 1)[0]
        return " " not in host
    return True


def _email(s: str) -> bool:
    text = s.strip()
    if text.endswith(">") and "<" in text:
        text = text[text.rindex("<") + 1 : -1]
    return bool(_EMAIL_ADDR.match(text))


def _isbn10(s: str) -> bool:
    digits = s.replace("-", "").replace(" ", "")
    if not _ISBN10.match(digits):
        return False
    total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(digits))
    return total % 11 == 0


def _isbn13(s: str) -> bool:
    digits = s.replace("-", "").replace(" ", "")
    if not _ISBN13.match(digits):
        return False
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == int(digits[12])


def _creditcard(s: str) -> bool:
    digits = "".join(c for c in s if c.isdigit())
    if not _CREDITCARD.match(digits):
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = int(c)
        if i % 2 == 1:
            n = n * 2 - 9 if n * 2 > 9 else n * 2
        total += n
    return total % 10 == 0


@functools.cache
def _hostname_re() -> re2._Regexp:
    # The Unicode classes make a large program: give RE2 room for its DFA, and build
    # it only when a schema first checks a hostname.
    options = re2.Options()
    options.max_mem = 256 << 20
    return re2.compile(_HOSTNAME_PATTERN, options)


def _hostname(s: str) -> bool:
    return (
        bool(_hostname_re().match(s)) and len(s) <= 255 and all(len(p) <= 63 for p in s.split("."))
    )


def _mac(s: str) -> bool:
    # net.ParseMAC: 6, 8 or 20 octets, as xx:xx:.. or xx-xx-.. or xxxx.xxxx...
    for sep, width in ((":", 2), ("-", 2), (".", 4)):
        groups = s.split(sep)
        hexes = all(c in "0123456789abcdefABCDEF" for g in groups for c in g)
        if len(groups) > 1 and all(len(g) == width for g in groups) and hexes:
            return len(groups) * width // 2 in (6, 8, 20)
    return False


CHECKS: Final[dict[str, Callable[[str], bool]]] = {
    "bsonobjectid": lambda s: bool(_BSON.match(s)),
    "uri": _uri,
    "email": _email,
    "hostname": _hostname,
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "cidr": _cidr,
    "mac": _mac,
    "uuid": lambda s: bool(_UUID.match(s)),
    "uuid3": lambda s: bool(_UUID3.match(s)),
    "uuid4": lambda s: bool(_UUID4.match(s)),
    "uuid5": lambda s: bool(_UUID5.match(s)),
    "isbn": lambda s: _isbn10(s) or _isbn13(s),
    "isbn10": _isbn10,
    "isbn13": _isbn13,
    "creditcard": _creditcard,
    "ssn": lambda s: bool(_SSN.match(s)),
    "hexcolor": lambda s: bool(_HEXCOLOR.match(s)),
    "rgbcolor": lambda s: bool(_RGBCOLOR.match(s)),
    "byte": _byte,
    "password": lambda s: True,
    "date": _date,
    "duration": _duration,
    "datetime": _datetime,
}


# -- typed values for CEL: Kubernetes hands these formats to rules as CEL types -------

_GO_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_DURATION_PART = re2.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta | None:
    """strfmt.ParseDuration for the Go forms (``1h30m``, ``-2.5s``); None otherwise."""
    if text == "0":
        return timedelta(0)
    if not _GO_DURATION.match(text):
        return None
    sign = -1.0 if text.startswith("-") else 1.0
    seconds = sum(
        float(m.group(1)) * _GO_UNITS[m.group(2)] for m in _GO_DURATION_PART.finditer(text)
    )
    return timedelta(seconds=sign * seconds)


def parse_datetime(text: str) -> datetime | None:
    if not _datetime(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(text: str) -> datetime | None:
    if not _date(text):
        return None
    return datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), tzinfo=UTC)


def parse_bytes(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None


# The formats whose strings a rule sees as another CEL type, and how they are read.
CEL_TYPED: Final[dict[str, Callable[[str], object]]] = {
    "datetime": parse_datetime,
    "date": parse_date,
    "duration": parse_duration,
    "byte": parse_bytes,
}
