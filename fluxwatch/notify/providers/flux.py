"""``flux``: forward the event to notification-controller, so the cluster's own Alerts route it.

notification-controller keeps only metadata keys prefixed with the involved
object's API group (``helm.toolkit.fluxcd.io/revision``) and strips the
prefix, as Flux's own controllers send them; so keys are prefixed here. It
answers 202 when it takes an event and 429 when it already had one inside
its rate-limit window: a deduplication, not a failure, and not retried.
"""

from __future__ import annotations

from dataclasses import replace

from fluxwatch.notify.errors import Deduplicated
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import Provider

DEFAULT_EVENTS_ADDRESS = "http://notification-controller.flux-system.svc.cluster.local./"


def forwarded(event: Event) -> Event:
    group = event.involved_object.group
    if not group:
        return event
    prefix = group + "/"
    metadata = {
        (key if key.startswith(prefix) else prefix + key): value
        for key, value in event.metadata.items()
    }
    return replace(event, metadata=metadata)


class Flux(Provider):
    type = "flux"
    default_address = DEFAULT_EVENTS_ADDRESS

    async def post(self, event: Event) -> None:
        response = await self.send_json(forwarded(event).to_json(), passthrough=(429,))
        if response.status == 429:
            raise Deduplicated("notification-controller already had this event")
