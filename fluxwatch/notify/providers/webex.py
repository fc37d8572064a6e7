"""``webex``: a Markdown message to the room named by ``channel``, with the bot's bearer token.

Event text is markdown-escaped, so a name cannot add links or mentions.
Webex refuses a message over 7439 bytes of UTF-8
(https://developer.webex.com/docs/api/v1/messages/create-a-message, ``markdown``),
which a Helm error in Japanese reaches at some 2500 characters; the message
is cut until the markdown fits.
"""

from __future__ import annotations

from fluxwatch.notify.event import Event
from fluxwatch.notify.markup import markdown
from fluxwatch.notify.providers.base import Provider, fit_message, is_error, metadata_items

MAX_MARKDOWN_BYTES = 7439


def utf8_length(text: str) -> int:
    return len(text.encode())


def webex_markdown(event: Event) -> str:
    return fit_message(event, _markdown, utf8_length, MAX_MARKDOWN_BYTES)


def _markdown(event: Event) -> str:
    icon = "🔴" if is_error(event) else "🟢"
    lines = [
        f"{icon} **{markdown(event.object_name)}** ({event.reason})",
        "",
        markdown(event.message),
    ]
    items = metadata_items(event)
    if items:
        lines.append("")
        lines.extend(f"- **{markdown(key)}**: {markdown(value)}" for key, value in items)
    return "\n".join(lines)


class Webex(Provider):
    type = "webex"
    default_address = "https://webexapis.com/v1/messages"
    needs_token = True
    needs_channel = True

    async def post(self, event: Event) -> None:
        payload = {"roomId": self.settings.channel, "markdown": webex_markdown(event)}
        await self.send_json(payload, headers={"Authorization": f"Bearer {self.settings.token}"})
