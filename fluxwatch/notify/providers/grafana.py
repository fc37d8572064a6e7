"""``grafana``: an annotation with the object and message as text, reason and metadata as tags.

``time`` (milliseconds) is what Grafana's ``/api/annotations`` reads;
``when`` (seconds) keeps the payload notification-controller sends.
Grafana documents no length limit for an annotation's text or tags.
"""

from __future__ import annotations

from typing import Any

from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import Provider, metadata_items


def grafana_annotation(event: Event) -> dict[str, Any]:
    seconds = event.timestamp.timestamp()
    tags = ["flux", event.reporting_controller, event.reason, str(event.severity)]
    tags.extend(f"{key}: {value}" for key, value in metadata_items(event))
    return {
        "time": int(seconds * 1000),
        "when": int(seconds),
        "text": f"{event.object_name}: {event.message}",
        "tags": tags,
    }


class Grafana(Provider):
    type = "grafana"

    async def post(self, event: Event) -> None:
        await self.send_json(grafana_annotation(event), headers=self.auth_headers())
