"""``googlechat``: a card titled with the object, the message, and metadata as key/values.

Card text renders a small HTML subset, so event text is HTML-escaped.
"""

from __future__ import annotations

from typing import Any

from fluxwatch.notify.event import Event
from fluxwatch.notify.markup import html
from fluxwatch.notify.providers.base import Provider, metadata_items


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
        await self.send_json(chat_card(event))
