"""``rocket``: Rocket.Chat incoming webhooks take Slack-style attachments.

Rocket.Chat refuses a message whose ``msg`` text is over its
``Message_MaxAllowedSize`` (5000 characters by default) with
``error-message-size-exceeded``; fluxwatch sends no ``msg`` text, only an
attachment, which that check does not count.
"""

from __future__ import annotations

from fluxwatch.notify import markup
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import Provider
from fluxwatch.notify.providers.slack import slack_payload


class Rocket(Provider):
    type = "rocket"

    async def post(self, event: Event) -> None:
        payload = slack_payload(
            event,
            channel=self.settings.channel,
            username=self.settings.username,
            escape=markup.rocket,
        )
        await self.send_json(payload, headers=self.auth_headers())
