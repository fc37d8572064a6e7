"""RFC 3339 times as Kubernetes writes them, and what is refused."""

from __future__ import annotations

import calendar

import pytest

from fluxwatch.kube.fields import format_micro, format_rfc3339, parse_rfc3339


@pytest.mark.parametrize(
    ("value", "epoch"),
    [
        ("2026-11-26T10:00:00Z", calendar.timegm((2026, 11, 26, 10, 0, 0))),
        ("2026-11-26t10:00:00z", calendar.timegm((2026, 11, 26, 10, 0, 0))),
        ("2026-11-26T12:00:00+02:00", calendar.timegm((2026, 11, 26, 10, 0, 0))),
        ("2026-11-26T10:00:00.250000Z", calendar.timegm((2026, 11, 26, 10, 0, 0)) + 0.25),
        # A leap second has no epoch second of its own: it reads as the next one.
        ("2016-12-31T23:59:60Z", calendar.timegm((2017, 1, 1, 0, 0, 0))),
    ],
)
def test_rfc3339_times_read_as_utc_epoch_seconds(value: str, epoch: float) -> None:
    assert parse_rfc3339(value) == epoch


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-26T10:00:00",  # no offset: would be read in the local zone
        "2026-W48-4T10:00:00Z",  # an ISO week date, 20 characters like metav1.Time
        "2026-11-31T10:00:00Z",
        "2026-11-26T24:00:00Z",
        "yesterday",
        "",
    ],
)
def test_what_is_not_rfc3339_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|calendar date|out of range"):
        parse_rfc3339(value)


def test_formats_round_trip() -> None:
    epoch = calendar.timegm((2026, 11, 26, 10, 0, 0))
    assert parse_rfc3339(format_rfc3339(epoch + 0.9)) == epoch
    assert parse_rfc3339(format_micro(epoch + 0.123456)) == pytest.approx(epoch + 0.123456)
