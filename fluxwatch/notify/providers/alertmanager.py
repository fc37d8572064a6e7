"""``alertmanager``: a firing alert named ``Flux<Kind><Reason>``, metadata as labels.

Labels are the event metadata (names made valid for Prometheus) plus the
fixed ``alertname``, ``severity``, ``reason``, ``kind``, ``name``,
``namespace`` and ``reportingcontroller``, which win over metadata of the
same name; the message and the summary are annotations. The alert has no
``endsAt``: Alertmanager resolves it after its ``resolve_timeout``.
Alertmanager's v2 API refuses (400) a label name outside
``[a-zA-Z_][a-zA-Z0-9_]*`` or a value that is not UTF-8, and takes values of
any length; tests/e2e/test_alertmanager.py posts a production-sized alert
to the real server.
"""

from __future__ import annotations

import re
from typing import Any

from fluxwatch.notify.event import Event, Meta, rfc3339
from fluxwatch.notify.providers.base import Provider, metadata_items, with_path_suffix

_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def label_name(key: str) -> str:
    """A Prometheus label name: ``[a-zA-Z_][a-zA-Z0-9_]*``."""
    name = _INVALID_LABEL_CHARS.sub("_", key)
    return name if name and not name[0].isdigit() else f"_{name}"


def alertmanager_alerts(event: Event) -> list[dict[str, Any]]:
    obj = event.involved_object
    labels = {label_name(k): v for k, v in metadata_items(event) if k != Meta.SUMMARY}
    fixed = {
        "alertname": f"Flux{obj.kind}{event.reason}",
        "severity": str(event.severity),
        "reason": event.reason,
        "kind": obj.kind,
        "name": obj.name,
        "namespace": obj.namespace,
        "reportingcontroller": event.reporting_controller,
    }
    labels.update({k: v for k, v in fixed.items() if v})
    annotations = {"message": event.message}
    if summary := event.metadata.get(Meta.SUMMARY):
        annotations["summary"] = summary
    return [
        {
            "labels": labels,
            "annotations": annotations,
            "status": "firing",
            "startsAt": rfc3339(event.timestamp),
        }
    ]


class Alertmanager(Provider):
    type = "alertmanager"

    async def post(self, event: Event) -> None:
        await self.send_json(
            alertmanager_alerts(event),
            url=with_path_suffix(self.address, "/api/v2/alerts"),
            headers=self.auth_headers(),
        )
