"""``msteams``: an Adaptive Card for Workflows webhooks, a MessageCard for legacy connectors.

Office 365 connector URLs (``*.webhook.office.com``) only render the old
MessageCard; everything else (Power Automate Workflows) takes an Adaptive
Card wrapped in a message. Both show the object, the message and the
metadata as facts, coloured by severity. Event text is escaped for each
format: Adaptive Cards render markdown, MessageCards markdown and HTML.
Teams refuses a message over 28 KB with 413 ("The size limit for the
messages is 28 KB", https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using).
Senders report the 413 from some 14,000 bytes of ASCII: the service
measures the body as UTF-16 unless told otherwise (Stack Overflow 78034694,
58474127). So the body is measured as UTF-16 bytes, two per character and
four per emoji, and the message cut until that fits in 28,000.
"""

from __future__ import annotations

from typing import Any

import orjson
from yarl import URL

from fluxwatch.notify import markup
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import (
    Provider,
    fit_message,
    is_error,
    metadata_items,
    utf16_length,
)

ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_UTF16_BYTES = 28_000


def utf16_size(payload: dict[str, Any]) -> int:
    return 2 * utf16_length(orjson.dumps(payload).decode())


def is_legacy_connector(address: str) -> bool:
    host = (URL(address).host or "").lower()
    return host == "webhook.office.com" or host.endswith(".webhook.office.com")


def adaptive_card(event: Event) -> dict[str, Any]:
    esc = markup.markdown
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": esc(event.object_name),
            "size": "Medium",
            "weight": "Bolder",
            "color": "Attention" if is_error(event) else "Good",
            "wrap": True,
        },
        {"type": "TextBlock", "text": esc(event.message), "wrap": True},
    ]
    facts = [{"title": esc(key), "value": esc(value)} for key, value in metadata_items(event)]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": ADAPTIVE_CARD_SCHEMA,
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "msteams": {"width": "Full"},
                    "body": body,
                },
            }
        ],
    }


def message_card(event: Event) -> dict[str, Any]:
    esc = markup.message_card
    section: dict[str, Any] = {
        "activityTitle": esc(event.object_name),
        "activitySubtitle": f"{event.reporting_controller}: {event.reason}",
        "text": esc(event.message),
    }
    facts = [{"name": esc(key), "value": esc(value)} for key, value in metadata_items(event)]
    if facts:
        section["facts"] = facts
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "themeColor": "FF0000" if is_error(event) else "0076D7",
        "summary": esc(event.object_name),
        "sections": [section],
    }


class MSTeams(Provider):
    type = "msteams"

    async def post(self, event: Event) -> None:
        legacy = is_legacy_connector(self.address)
        build = message_card if legacy else adaptive_card
        await self.send_json(fit_message(event, build, utf16_size, MAX_UTF16_BYTES))
