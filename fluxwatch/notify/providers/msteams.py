"""``msteams``: an Adaptive Card for Workflows webhooks, a MessageCard for legacy connectors.

Office 365 connector URLs (``*.webhook.office.com``) only render the old
MessageCard; everything else (Power Automate Workflows) takes an Adaptive
Card wrapped in a message. Both show the object, the message and the
metadata as facts, coloured by severity. Event text is escaped for each
format: Adaptive Cards render markdown, MessageCards markdown and HTML.
"""

from __future__ import annotations

from typing import Any

from yarl import URL

from fluxwatch.notify import markup
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import Provider, is_error, metadata_items

ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"


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
        await self.send_json(message_card(event) if legacy else adaptive_card(event))
