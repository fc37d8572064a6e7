"""``datadog``: an event through Datadog's v1 Events API, tagged the way Flux tags it.

The ``address`` is the site's API root (``https://api.datadoghq.eu``; default
``https://api.datadoghq.com``) and the secret key ``token`` is the API key,
sent as ``DD-API-KEY``. Tags follow notification-controller: the reporting
controller, the reason, the object as Datadog's ``kube_*`` tags, then every
metadata pair, all lowercase, as Datadog stores them.
"""

from __future__ import annotations

from typing import Any

from yarl import URL

from fluxwatch.notify.event import Event, truncate_message
from fluxwatch.notify.providers.base import Provider, is_error, metadata_items

EVENTS_PATH = "/api/v1/events"
# The Events API refuses longer titles and texts.
MAX_TITLE = 100
MAX_TEXT = 4000


def datadog_event(event: Event) -> dict[str, Any]:
    obj = event.involved_object
    tags = [
        f"flux_reporting_controller:{event.reporting_controller}",
        f"flux_reason:{event.reason}",
        f"kube_kind:{obj.kind}",
        f"kube_name:{obj.name}",
        f"kube_namespace:{obj.namespace}",
    ]
    tags.extend(f"{key}:{value}" for key, value in metadata_items(event))
    return {
        # The title's wording is Datadog's own Kubernetes integration's, which Flux copies.
        "title": truncate_message(
            f"Events from the {obj.kind} {obj.name}/{obj.namespace}", MAX_TITLE
        ),
        "text": truncate_message(event.message, MAX_TEXT),
        "tags": [tag.lower() for tag in tags],
        "source_type_name": "fluxcd",
        "date_happened": int(event.timestamp.timestamp()),
        "alert_type": "error" if is_error(event) else "info",
    }


class DataDog(Provider):
    type = "datadog"
    default_address = "https://api.datadoghq.com"
    needs_token = True

    async def post(self, event: Event) -> None:
        url = str(URL(self.address).with_path(EVENTS_PATH))
        await self.send_json(
            datadog_event(event), url=url, headers={"DD-API-KEY": self.settings.token}
        )
