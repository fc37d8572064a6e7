"""``googlechat``: a card titled with the object, the message, and metadata as key/values.

Card text renders a small HTML subset, so event text is HTML-escaped.
Google Chat refuses a message over 32,000 bytes, cards included
(https://developers.google.com/workspace/chat/limits, "Message size"); the
message is cut until the JSON body fits.
"""

from __future__ import annotations

from typing import Any

from fluxwatch.notify.event import Event
from fluxwatch.notify.markup import html
from fluxwatch.notify.providers.base import Provider, fit_message, json_size, metadata_items

MAX_BODY_BYTES = 32_000


def chat_card(event: Event) -> dict[str, Any]:
    sections: list[dict[str, Any]] = [
        {"widgets": [{"textParagraph": {"text": html(event.message)}}]}
    ]
    pairs = [
        {"keyValue": {"topLabel": html(k), "content": html(v)}} for k, v in metadata_items(event)
    ]
    if pairs:
        sections.append({"widgets": pairs})
    return {
        "cards": [
            {
                "header": {
                    "title": html(event.object_name),
                    "subtitle": event.reporting_controller,
                },
                "sections": sections,
            }
        ]
    }


class GoogleChat(Provider):
    type = "googlechat"

    async def post(self, event: Event) -> None:
        await self.send_json(fit_message(event, chat_card, json_size, MAX_BODY_BYTES))
