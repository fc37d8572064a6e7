"""``flux``: forward events to notification-controller, so the cluster's own Alerts route them.

Only events a Flux Alert can select are forwarded: an Alert's
``eventSources[].kind`` is an enum of Flux kinds, so an event about a Lease
(leader changes) or fluxwatch's own Deployment (a batch GuardrailTripped)
would be taken with 202 and discarded. ``check-config`` refuses an alert that
would route those here (``lost_reasons`` names them), and ``post`` refuses
them too, counted as skipped rather than sent.

The wire shape is what fluxcd/pkg's ``runtime/events`` recorder posts:
eventv1.Event with the HelmRelease as involved object (namespace, name and
kind required) and every metadata key prefixed with the object's API group
(``helm.toolkit.fluxcd.io/revision``); notification-controller keeps only
prefixed keys and strips the prefix. It answers 202 whether an Alert took the
event or none matched, so a discard cannot be told from the answer; it
answers 429 when it already had the event inside its rate-limit window: a
deduplication, not a failure, and not retried.

What it needs in the cluster: notification-controller's event address
(``http://notification-controller.flux-system.svc.cluster.local./``, the
default) and, where Flux's default NetworkPolicy ``allow-egress`` admits only
pods of ``flux-system``, a NetworkPolicy that admits fluxwatch's pods to port
9090, its event server (``config/components/flux-events-ingress``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from fnmatch import fnmatchcase

from fluxwatch.notify.errors import Deduplicated, NotDelivered
from fluxwatch.notify.event import Event, Reason, Severity
from fluxwatch.notify.providers.base import Provider

DEFAULT_EVENTS_ADDRESS = "http://notification-controller.flux-system.svc.cluster.local./"
FORWARDED_KIND = "HelmRelease"

# The events fluxwatch reports on objects no Flux Alert can select, by kind, with severity.
NON_FLUX_SUBJECTS: dict[str, tuple[tuple[Reason, Severity], ...]] = {
    "Lease": (
        (Reason.LEADER_CHANGED, Severity.INFO),
        (Reason.LEADER_RESTORED, Severity.INFO),
        (Reason.LEADER_FLAPPING, Severity.ERROR),
        (Reason.CONTROLLER_LEADERLESS, Severity.ERROR),
        (Reason.GUARDRAIL_TRIPPED, Severity.ERROR),
        (Reason.INCIDENT_APPROVED, Severity.INFO),
    ),
    "Deployment": ((Reason.GUARDRAIL_TRIPPED, Severity.ERROR),),
}


def lost_reasons(kinds: Sequence[str] | None, *, errors_only: bool) -> str:
    """The reasons an alert with these source kinds (None: every kind) would lose here.

    ``""`` when it selects HelmRelease events only; else ``Lease (LeaderChanged,
    ...), Deployment (GuardrailTripped)``.
    """
    lost = []
    for kind, reasons in NON_FLUX_SUBJECTS.items():
        if kinds is not None and not any(fnmatchcase(kind, pattern) for pattern in kinds):
            continue
        names = [str(r) for r, sev in reasons if not errors_only or sev is Severity.ERROR]
        if names:
            lost.append(f"{kind} ({', '.join(names)})")
    return ", ".join(lost)


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
        obj = event.involved_object
        if obj.kind != FORWARDED_KIND or not obj.namespace or not obj.name:
            raise NotDelivered(
                f"not forwarded: notification-controller would discard an event about a "
                f"{obj.kind or 'object without kind'}, no Flux Alert can select it"
            )
        response = await self.send_json(forwarded(event).to_json(), passthrough=(429,))
        if response.status == 429:
            raise Deduplicated("notification-controller already had this event")
