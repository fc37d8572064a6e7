"""``webex``: a Markdown message to the room named by ``channel``, with the bot's bearer token."""

from __future__ import annotations

from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import Provider, is_error, metadata_items


def webex_markdown(event: Event) -> str:
    icon = "🔴" if is_error(event) else "🟢"
    lines = [f"{icon} **{event.object_name}** ({event.reason})", "", event.message]
    items = metadata_items(event)
    if items:
        lines.append("")
        lines.extend(f"- **{key}**: {value}" for key, value in items)
    return "\n".join(lines)


class Webex(Provider):
    type = "webex"
    default_address = "https://webexapis.com/v1/messages"
    needs_token = True
    needs_channel = True

    async def post(self, event: Event) -> None:
        payload = {"roomId": self.settings.channel, "markdown": webex_markdown(event)}
        await self.send_json(payload, headers={"Authorization": f"Bearer {self.settings.token}"})
