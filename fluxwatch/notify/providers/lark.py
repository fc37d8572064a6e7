"""``lark``: an interactive card to a Lark (Feishu) custom bot webhook, as Flux sends it.

The header is the object with a severity emoji on a red or turquoise band; the
body is the message in bold, then one ``key: value`` line per metadata pair.
A custom bot refuses a request body over 20 KB
(https://open.larksuite.com/document/client-docs/bot-v3/add-custom-bot, "Usage
limits"); the message is cut until the JSON body fits in 20,000 bytes.

A custom bot refuses with a JSON ``code`` other than 0 (19021 signature,
19022 IP not allowed, 19024 keywords not found, 9499 bad request, 11232
rate limited; older bots answered ``StatusCode``), which may come with HTTP
200; notification-controller does not read it, and the alert would be lost
in silence, so fluxwatch checks it, as it checks Slack's ``ok``. A rate
limit is retried, the rest is final.
"""

from __future__ import annotations

from typing import Any

from fluxwatch.notify.errors import DeliveryError
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import (
    Provider,
    fit_message,
    is_error,
    json_size,
    metadata_items,
)

MAX_BODY_BYTES = 20_000
RATE_LIMITED = 11232


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
        response = await self.send_json(fit_message(event, lark_card, json_size, MAX_BODY_BYTES))
        try:
            answer = response.json()
        except ValueError:
            return  # not the bot API's JSON (a proxy's page): the 2xx is all we have
        if not isinstance(answer, dict):
            return
        code = answer.get("code", answer.get("StatusCode", 0))
        if code:
            message = answer.get("msg", answer.get("StatusMessage", ""))
            raise DeliveryError(
                f"Lark answered code {code}: {message}", retryable=code == RATE_LIMITED
            )
