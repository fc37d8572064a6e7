"""``discord``: the Slack payload to the webhook's Slack-compatible ``/slack`` endpoint."""

from __future__ import annotations

from fluxwatch.notify import markup
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import Provider, with_path_suffix
from fluxwatch.notify.providers.slack import slack_payload


class Discord(Provider):
    type = "discord"

    async def post(self, event: Event) -> None:
        payload = slack_payload(
            event,
            channel=self.settings.channel,
            username=self.settings.username,
            escape=markup.discord,
        )
        await self.send_json(payload, url=with_path_suffix(self.address, "/slack"))
