"""``pagerduty``: Events API v2; an error triggers, a recovery resolves, one incident per object.

The dedup key is the object's UID, so ``StuckDetected`` and the later
``RecoverySucceeded`` of one HelmRelease open and close the same incident.
Other info events would either resolve an incident too early (a recovery
merely starting) or page for nothing, so they are skipped, and counted so.
The routing key is ``channel``, as in Flux. Events API v2 limits
(https://developer.pagerduty.com/docs/events-api-v2/trigger-events/): the
summary 1024 characters (cut here, marked), the whole event 512 KB, which an
event message of at most 39,000 characters stays far below.
"""

from __future__ import annotations

from typing import Any

from fluxwatch.notify.errors import Skipped
from fluxwatch.notify.event import Event, Reason, rfc3339, truncate_message
from fluxwatch.notify.providers.base import Provider, is_error, metadata_items, with_path_suffix

RESOLVING_REASONS = frozenset({Reason.RECOVERY_SUCCEEDED, Reason.LEADER_RESTORED})
MAX_SUMMARY = 1024


def dedup_key(event: Event) -> str:
    obj = event.involved_object
    return obj.uid or f"{obj.kind}/{obj.namespace}/{obj.name}"


def pagerduty_event(event: Event, routing_key: str) -> dict[str, Any]:
    if not is_error(event):
        return {
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key(event),
        }
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(event),
        "client": event.reporting_controller,
        "payload": {
            "summary": truncate_message(f"{event.object_name}: {event.message}", MAX_SUMMARY),
            "source": event.object_name,
            "severity": "error",
            "timestamp": rfc3339(event.timestamp),
            "component": event.involved_object.kind,
            "group": event.involved_object.namespace,
            "class": event.reason,
            "custom_details": dict(metadata_items(event)),
        },
    }


class PagerDuty(Provider):
    type = "pagerduty"
    default_address = "https://events.pagerduty.com"
    needs_channel = True

    async def post(self, event: Event) -> None:
        if not is_error(event) and event.reason not in RESOLVING_REASONS:
            raise Skipped(f"PagerDuty hears errors and recoveries, not {event.reason}")
        await self.send_json(
            pagerduty_event(event, self.settings.channel),
            url=with_path_suffix(self.address, "/v2/enqueue"),
        )
