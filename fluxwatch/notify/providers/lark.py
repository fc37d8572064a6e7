"""``lark``: an interactive card to a Lark (Feishu) custom bot webhook, as Flux sends it.

The header is the object with a severity emoji on a red or turquoise band; the
body is the message in bold, then one ``key: value`` line per metadata pair.
A custom bot refuses a request body over 20 KB
(https://open.larksuite.com/document/client-docs/bot-v3/add-custom-bot, "Usage
limits"); the message is cut until the JSON body fits in 20,000 bytes.
"""

from __future__ import annotations

from typing import Any

from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import (
    Provider,
    fit_message,
    is_error,
    json_size,
    metadata_items,
)

MAX_BODY_BYTES = 20_000


def lark_card(event: Event) -> dict[str, Any]:
    emoji, template = ("🚨", "red") if is_error(event) else ("💫", "turquoise")
    content = f"**{event.message}**\n\n"
    content += "".join(f"{key}: {value}\n" for key, value in metadata_items(event))
    return {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {
                "title": {"tag": "plain_text", "content": f"{emoji} {event.object_name}"},
                "template": template,
            },
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": content}}],
        },
    }


class Lark(Provider):
    type = "lark"

    async def post(self, event: Event) -> None:
        await self.send_json(fit_message(event, lark_card, json_size, MAX_BODY_BYTES))
