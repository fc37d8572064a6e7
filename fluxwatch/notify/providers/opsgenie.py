"""``opsgenie``: an alert per object and reason; the alias folds repeats into one alert.

Opsgenie's field limits (https://docs.opsgenie.com/docs/alert-api, "Create
Alert"): message 130 characters, alias 512, description 15,000, source 100,
tags 20 of 50 characters, details 8000 characters in all, keys and values. A
``RecoveryFailed`` carries its Helm error as the ``error`` detail, and an
Alert's ``eventMetadata`` adds more; the details are cut to one common value
length that fits, each cut value marked, so the description keeps its full
message.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fluxwatch.notify.event import Event, truncate_message
from fluxwatch.notify.providers.base import Provider, fit_message, metadata_items

MAX_MESSAGE = 130
MAX_ALIAS = 512
MAX_DESCRIPTION = 15_000
MAX_SOURCE = 100
MAX_DETAILS = 8000


def _details(event: Event) -> dict[str, str]:
    details = dict(metadata_items(event))
    details.update(
        severity=str(event.severity),
        reason=event.reason,
        reportingController=event.reporting_controller,
    )
    return details


def details_length(details: dict[str, str]) -> int:
    return sum(len(key) + len(value) for key, value in details.items())


def opsgenie_alert(event: Event) -> dict[str, Any]:
    obj = event.involved_object
    # Without the message, only the metadata values are cut to fit.
    details = fit_message(replace(event, message=""), _details, details_length, MAX_DETAILS)
    return {
        "message": truncate_message(f"{event.object_name}: {event.reason}", MAX_MESSAGE),
        "alias": f"{obj.kind}/{obj.namespace}/{obj.name}/{event.reason}"[:MAX_ALIAS],
        "description": truncate_message(event.message, MAX_DESCRIPTION),
        "source": truncate_message(
            event.reporting_instance or event.reporting_controller, MAX_SOURCE
        ),
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
