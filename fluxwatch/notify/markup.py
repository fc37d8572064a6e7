"""Text from the cluster is data, never markup: one escaper per receiver format.

Object names, Helm release names and Lease holders end up in messages; a
person who can create a HelmRelease or hold a Lease chooses them. Without
escaping, ``<!here>`` pings a whole Slack channel and ``<https://evil|Grafana>``
shows a link whose text lies about its target. Each provider passes every
piece of event text through the escaper of its receiver's format; the
provider's own decoration (bold titles, icons) is added after escaping.
"""

from __future__ import annotations

import re

# A word joiner after "@" keeps the text readable and stops the receiver from
# matching a broadcast mention (Discord, Rocket.Chat and Matrix match words).
_JOINER = "\u2060"


def _break_mentions(text: str, words: tuple[str, ...]) -> str:
    pattern = re.compile(r"@(" + "|".join(words) + r")\b", re.IGNORECASE)
    return pattern.sub(lambda m: "@" + _JOINER + m.group(1), text)


def slack(text: str) -> str:
    """Slack mrkdwn: ``&``, ``<`` and ``>`` are its only control characters.

    With them escaped, ``<!here>``, ``<@U123>`` and ``<url|text>`` show as typed.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def discord(text: str) -> str:
    """Discord through its Slack-compatible endpoint: Slack's escaping, plus its own syntax.

    Discord also pings on bare ``@everyone``/``@here`` and renders masked links
    ``[text](url)`` and markdown emphasis, which a backslash makes literal.
    """
    text = re.sub(r"([\\*_~`|\[\]])", r"\\\1", text)
    return slack(_break_mentions(text, ("everyone", "here")))


def rocket(text: str) -> str:
    """Rocket.Chat takes Slack attachments and pings on ``@all`` and ``@here``."""
    return slack(_break_mentions(text, ("all", "here", "everyone")))


_MARKDOWN = re.compile(r"([\\`*_\[\]~|])")


def markdown(text: str) -> str:
    """CommonMark (Webex, Teams Adaptive Cards): links, emphasis, code and HTML made literal."""
    return _MARKDOWN.sub(r"\\\1", text).replace("<", "\\<").replace(">", "\\>")


def html(text: str) -> str:
    """The HTML subset of Google Chat cards."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message_card(text: str) -> str:
    """Teams MessageCards render markdown and some HTML: both made literal."""
    return html(_MARKDOWN.sub(r"\\\1", text))


_MARKDOWN_V2 = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def markdown_v2(text: str) -> str:
    """Telegram MarkdownV2: every one of its special characters escaped outside entities."""
    return _MARKDOWN_V2.sub(r"\\\1", text)


def matrix(text: str) -> str:
    """Matrix plain ``body``: no markup, but older clients still ping on ``@room``."""
    return _break_mentions(text, ("room",))
