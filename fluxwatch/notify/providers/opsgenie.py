"""``opsgenie``: an alert per object and reason; the alias folds repeats into one alert."""

from __future__ import annotations

from typing import Any

from fluxwatch.notify.event import Event, truncate_message
from fluxwatch.notify.providers.base import Provider, metadata_items

# Opsgenie's own field limits; longer values are rejected, not cut.
MAX_MESSAGE = 130
MAX_ALIAS = 512
MAX_DESCRIPTION = 15_000


def opsgenie_alert(event: Event) -> dict[str, Any]:
    obj = event.involved_object
    details = dict(metadata_items(event))
    details.update(
        severity=str(event.severity),
        reason=event.reason,
        reportingController=event.reporting_controller,
    )
    return {
        "message": truncate_message(f"{event.object_name}: {event.reason}", MAX_MESSAGE),
        "alias": f"{obj.kind}/{obj.namespace}/{obj.name}/{event.reason}"[:MAX_ALIAS],
        "description": truncate_message(event.message, MAX_DESCRIPTION),
        "source": event.reporting_instance or event.reporting_controller,
        "tags": ["flux", event.reporting_controller, str(event.severity)],
        "details": details,
    }


class Opsgenie(Provider):
    type = "opsgenie"
    default_address = "https://api.opsgenie.com/v2/alerts"
    needs_token = True

    async def post(self, event: Event) -> None:
        await self.send_json(
            opsgenie_alert(event),
            headers={"Authorization": f"GenieKey {self.settings.token}"},
        )
