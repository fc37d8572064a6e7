"""``generic``: the Event JSON as notification-controller forwards it, to any webhook."""

from __future__ import annotations

from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import Provider

# notification-controller's header naming the controller that emitted the event.
COMPONENT_HEADER = "Gotk-Component"


class Generic(Provider):
    type = "generic"

    def headers(self, event: Event, body: bytes) -> dict[str, str]:
        return {COMPONENT_HEADER: event.reporting_controller, **self.auth_headers(bearer=False)}

    async def post(self, event: Event) -> None:
        body = event.to_json()
        await self.send_json(body, headers=self.headers(event, body))
