"""``metav1.MicroTime`` as the API server decodes and writes it back.

``MicroTime.UnmarshalJSON`` (k8s.io/apimachinery/pkg/apis/meta/v1/micro_time.go)
reads a JSON string with Go's ``time.Parse`` and the layout
``2006-01-02T15:04:05.000000Z07:00``: exactly six fraction digits, ``Z`` or a
``±hh:mm`` offset; anything else is a ``*time.ParseError`` whose words reach the
client in the 400 (``parsing time "..." as "...": cannot parse "..." as "..."``).
``MarshalJSON`` writes the instant back in UTC with six digits, so an offset on
the way in is a ``Z`` on the way out. Only this one layout is walked, element by
element in Go's order, so the error names the element Go names.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fluxwatch.sim import deepjson

LAYOUT: Final = "2006-01-02T15:04:05.000000Z07:00"

# nextStdChunk's split of LAYOUT: (literal prefix, std element) in order.
_CHUNKS: Final = (
    ("", "2006"),
    ("-", "01"),
    ("-", "02"),
    ("T", "15"),
    (":", "04"),
    (":", "05"),
    ("", ".000000"),
    ("", "Z07:00"),
)


class MicroTimeError(ValueError):
    """What ``MicroTime.UnmarshalJSON`` returns, worded as Go prints it."""


def _quote(text: str) -> str:
    """time.quote: double quotes, backslash escapes, bytes outside printable ASCII as \\x."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode())
    out.append('"')
    return "".join(out)


def _parse_error(
    value: str, layout_elem: str, value_elem: str, message: str = ""
) -> MicroTimeError:
    if message:
        return MicroTimeError(f"parsing time {_quote(value)}{message}")
    return MicroTimeError(
        f"parsing time {_quote(value)} as {_quote(LAYOUT)}: cannot parse "
        f"{_quote(value_elem)} as {_quote(layout_elem)}"
    )


def _digit(text: str, i: int) -> bool:
    return len(text) > i and "0" <= text[i] <= "9"


def _getnum(text: str, fixed: bool) -> tuple[int, str] | None:
    """time.getnum: one or two digits (two when ``fixed``); None for errBad."""
    if not _digit(text, 0):
        return None
    if not _digit(text, 1):
        return None if fixed else (int(text[0]), text[1:])
    return int(text[:2]), text[2:]


def parse(value: str) -> datetime:
    """``time.Parse(RFC3339Micro, value)`` as an aware UTC datetime, or MicroTimeError."""
    rest = value
    fields: dict[str, int] = {}
    offset = 0
    for prefix, std in _CHUNKS:
        for ch in prefix:
            if not rest or rest[0] != ch:
                raise _parse_error(value, prefix, rest)
            rest = rest[1:]
        hold = rest
        bad = False
        out_of_range = ""
        if std == "2006":
            if len(rest) < 4 or not _digit(rest, 0) or not rest[:4].isdigit():
                bad = True
            else:
                fields["year"], rest = int(rest[:4]), rest[4:]
        elif std == ".000000":
            if len(rest) < 7 or rest[0] not in ".," or not rest[1:7].isdigit():
                bad = True
            else:
                fields["micro"], rest = int(rest[1:7]), rest[7:]
        elif std == "Z07:00":
            if rest[:1] == "Z":
                rest = rest[1:]
            elif len(rest) < 6 or rest[3] != ":" or rest[0] not in "+-":
                bad = True
            else:
                hours, minutes = _getnum(rest[1:3], True), _getnum(rest[4:6], True)
                if hours is None or minutes is None:
                    bad = True
                else:
                    if hours[0] > 24:
                        out_of_range = "time zone offset hour"
                    elif minutes[0] > 60:
                        out_of_range = "time zone offset minute"
                    offset = (hours[0] * 60 + minutes[0]) * 60 * (1 if rest[0] == "+" else -1)
                    rest = rest[6:]
        else:
            got = _getnum(rest, std != "15")
            if got is None:
                bad = True
            else:
                number, rest = got
                name, limit = {
                    "01": ("month", 12),
                    "02": ("day", 99),
                    "15": ("hour", 23),
                    "04": ("minute", 59),
                    "05": ("second", 59),
                }[std]
                if std == "01" and not 1 <= number <= limit:
                    out_of_range = "month"
                elif std != "01" and number > limit:
                    out_of_range = name
                fields[name] = number
        if out_of_range:
            raise _parse_error(value, std, rest, f": {out_of_range} out of range")
        if bad:
            raise _parse_error(value, std, hold)
    if rest:
        raise _parse_error(value, "", rest, f": extra text: {_quote(rest)}")
    year, month, day = fields["year"], fields["month"], fields["day"]
    # Year 0 is a leap year in Go's proleptic calendar, as 2000 is.
    if not 1 <= day <= calendar.monthrange(year or 2000, month)[1]:
        raise _parse_error(value, "", rest, ": day out of range")
    local = datetime(
        max(year, 1),  # Python has no year 0; nothing writes one
        month,
        day,
        fields["hour"],
        fields["minute"],
        fields["second"],
        fields["micro"],
        tzinfo=UTC,
    )
    return local - timedelta(seconds=offset)


ZERO: Final = datetime(1, 1, 1, tzinfo=UTC)


def decode(raw: Any) -> str | None:
    """What the server stores and answers for a MicroTime field sent as ``raw`` (a JSON
    value other than null): the UTC form, or None for Go's zero time (``MarshalJSON``
    writes it as ``null``). A value that is not a string fails the way
    ``json.Unmarshal(b, &str)`` inside ``UnmarshalJSON`` fails."""
    if not isinstance(raw, str):
        raise MicroTimeError(
            f"json: cannot unmarshal {deepjson.go_json_type(raw)} into Go value of type string"
        )
    moment = parse(raw)
    if moment == ZERO:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
