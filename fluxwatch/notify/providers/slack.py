"""``slack``: an attachment coloured by severity, titled with the object, metadata as fields.

The same payload serves Slack's incoming webhooks and its ``chat.postMessage``
API (with a bot token); the API answers 200 even on failure, so its ``ok``
field is checked. ``discord`` and ``rocket`` reuse ``slack_payload`` with
their own escaper: every text from the event is escaped, so a release name or
Lease holder such as ``<!here>`` shows as typed and pings nobody. Slack cuts
a message over 40,000 characters itself rather than refusing it
(api.slack.com/changelog/2018-04-truncating-really-long-messages), and the
event message is at most 39,000, so nothing is cut here; Discord's stricter
embed limits are applied in ``discord``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yarl import URL

from fluxwatch.notify import markup
from fluxwatch.notify.errors import DeliveryError
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import Provider, is_error, metadata_items


def slack_payload(
    event: Event,
    *,
    channel: str = "",
    username: str = "",
    escape: Callable[[str], str] = markup.slack,
) -> dict[str, Any]:
    name, message = escape(event.object_name), escape(event.message)
    attachment: dict[str, Any] = {
        "color": "danger" if is_error(event) else "good",
        "author_name": name,
        "text": message,
        "mrkdwn_in": ["text"],
        "fallback": f"{name}: {message}",
    }
    fields = [
        {"title": escape(key), "value": escape(value), "short": False}
        for key, value in metadata_items(event)
    ]
    if fields:
        attachment["fields"] = fields
    payload: dict[str, Any] = {
        "username": username or event.reporting_controller,
        "attachments": [attachment],
    }
    if channel:
        payload["channel"] = channel
    return payload


class Slack(Provider):
    type = "slack"

    async def post(self, event: Event) -> None:
        payload = slack_payload(
            event, channel=self.settings.channel, username=self.settings.username
        )
        response = await self.send_json(payload, headers=self.auth_headers())
        if URL(self.address).path.endswith("/chat.postMessage"):
            answer = response.json()
            if not isinstance(answer, dict) or answer.get("ok") is not True:
                error = answer.get("error", "unknown") if isinstance(answer, dict) else "no JSON"
                raise DeliveryError(f"Slack API answered ok=false: {error}")
