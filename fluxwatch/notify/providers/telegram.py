"""``telegram``: ``sendMessage`` to the chat named by ``channel``, in MarkdownV2.

Telegram refuses a text over 4096 characters after entity parsing with 400
"Bad Request: message is too long" (https://core.telegram.org/bots/api#sendmessage);
it counts in UTF-16 code units, as all its entity offsets, so an emoji or a
rare CJK character counts twice. The message is cut until the escaped text,
measured that way (escapes count too, so the measure errs on the safe side),
fits. The bot token is part of the URL path, so it is never printed: errors show the
origin only, and the token is in the provider's redactor.
"""

from __future__ import annotations

from fluxwatch.notify.event import Event
from fluxwatch.notify.markup import markdown_v2 as escape
from fluxwatch.notify.providers.base import (
    Provider,
    fit_message,
    is_error,
    metadata_items,
    utf16_length,
)

MAX_TEXT = 4096


def telegram_text(event: Event) -> str:
    def build(e: Event) -> str:
        icon = "🔴" if is_error(e) else "🟢"
        lines = [f"{icon} *{escape(e.object_name)}*", escape(e.message)]
        lines.extend(f"{escape('- ')}*{escape(k)}*: {escape(v)}" for k, v in metadata_items(e))
        return "\n".join(lines)

    return fit_message(event, build, utf16_length, MAX_TEXT)


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
