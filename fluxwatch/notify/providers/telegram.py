"""``telegram``: ``sendMessage`` to the chat named by ``channel``, in MarkdownV2.

Telegram takes at most 4096 characters, so a long message is cut to fit. The
bot token is part of the URL path, so it is never printed: errors show the
origin only, and the token is in the provider's redactor.
"""

from __future__ import annotations

from fluxwatch.notify.event import Event, truncate_message
from fluxwatch.notify.markup import markdown_v2 as escape
from fluxwatch.notify.providers.base import Provider, is_error, metadata_items

MAX_TEXT = 4096


def telegram_text(event: Event) -> str:
    def build(message: str) -> str:
        icon = "🔴" if is_error(event) else "🟢"
        lines = [f"{icon} *{escape(event.object_name)}*", escape(message)]
        lines.extend(f"{escape('- ')}*{escape(k)}*: {escape(v)}" for k, v in metadata_items(event))
        return "\n".join(lines)

    message = event.message
    text = build(message)
    # Escaping widens the text; cut the message by the overflow until it fits.
    while len(text) > MAX_TEXT and message:
        message = truncate_message(message, max(0, len(message) - (len(text) - MAX_TEXT)))
        text = build(message)
    return text


class Telegram(Provider):
    type = "telegram"
    default_address = "https://api.telegram.org"
    needs_token = True
    needs_channel = True

    async def post(self, event: Event) -> None:
        url = f"{self.address.rstrip('/')}/bot{self.settings.token}/sendMessage"
        payload = {
            "chat_id": self.settings.channel,
            "text": telegram_text(event),
            "parse_mode": "MarkdownV2",
        }
        await self.send_json(payload, url=url)
