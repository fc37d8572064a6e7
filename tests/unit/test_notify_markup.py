"""Escapers per receiver format, and console log lines that stay one line."""

from __future__ import annotations

import logging

import pytest

from fluxwatch.notify import markup
from fluxwatch.telemetry.logs import ConsoleFormatter

HOSTILE = "a&b <!here> <https://evil|Grafana> [x](https://evil) *y* @everyone @here @all @room"


@pytest.mark.parametrize(
    ("escape", "expected"),
    [
        (
            markup.slack,
            "a&amp;b &lt;!here&gt; &lt;https://evil|Grafana&gt; [x](https://evil) *y* "
            "@everyone @here @all @room",
        ),
        (
            markup.discord,
            r"a&amp;b &lt;!here&gt; &lt;https://evil\|Grafana&gt; \[x\](https://evil) \*y\* "
            "@\u2060everyone @\u2060here @all @room",
        ),
        (
            markup.rocket,
            "a&amp;b &lt;!here&gt; &lt;https://evil|Grafana&gt; [x](https://evil) *y* "
            "@\u2060everyone @\u2060here @\u2060all @room",
        ),
        (
            markup.markdown,
            r"a&b \<!here\> \<https://evil\|Grafana\> \[x\](https://evil) \*y\* "
            "@everyone @here @all @room",
        ),
        (
            markup.message_card,
            r"a&amp;b &lt;!here&gt; &lt;https://evil\|Grafana&gt; \[x\](https://evil) \*y\* "
            "@everyone @here @all @room",
        ),
        (
            markup.html,
            "a&amp;b &lt;!here&gt; &lt;https://evil|Grafana&gt; [x](https://evil) *y* "
            "@everyone @here @all @room",
        ),
        (
            markup.markdown_v2,
            r"a&b <\!here\> <https://evil\|Grafana\> \[x\]\(https://evil\) \*y\* "
            "@everyone @here @all @room",
        ),
        (markup.matrix, HOSTILE.replace("@room", "@\u2060room")),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_each_format_makes_markup_literal(escape: object, expected: str) -> None:
    assert callable(escape)
    assert escape(HOSTILE) == expected


def test_mentions_are_broken_as_whole_words_only() -> None:
    assert markup.rocket("mail@hereford.example @Here") == "mail@hereford.example @\u2060Here"


def test_console_lines_escape_newlines_in_message_and_values() -> None:
    record = logging.LogRecord("fluxwatch", logging.INFO, "", 0, "leader is %s", ("a\nb",), None)
    record.namespace = "flux-system"
    record.object = "x\r\n2026-01-01T00:00:00.000Z error forged"
    record.holder = "h\u2028i\x1b[31m"
    line = ConsoleFormatter().format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line.endswith(
        r" flux-system/x\r\n2026-01-01T00:00:00.000Z error forged leader is a\nb"
        r"  [holder=h\u2028i\x1b[31m]"
    )
