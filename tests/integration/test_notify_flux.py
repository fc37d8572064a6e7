"""The flux provider forwards only what a Flux Alert can match, in Flux's event shape.

A local stand-in for notification-controller's event server does what its
handler does with a request (decode eventv1.Event, keep the metadata keys
prefixed with the involved object's group, select the Alerts whose sources
match kind, namespace and name) and answers 202 whether or not one matched,
recording which. ``check-config`` refuses a route that would send it events no
Alert can select, and the provider refuses them at run time too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from pydantic import ValidationError
from test_notify_receiver import Answer, Receiver

from fluxwatch.notify import (
    EventFactory,
    InvolvedObject,
    MemoryMetrics,
    NotifySettings,
    Router,
)
from fluxwatch.notify.config import AlertSpec
from fluxwatch.notify.rules import Rule

FACTORY = EventFactory("fluxwatch-0")
HR = InvolvedObject.helmrelease("apps", "podinfo", uid="uid-1", resource_version="7")
LEASE = InvolvedObject.lease("flux-system", "helm-controller-leader-election")
DEPLOYMENT = InvolvedObject("Deployment", "fluxwatch-system", "fluxwatch", api_version="apps/v1")
# What a Flux user has in the cluster: every HelmRelease of flux-system... and of apps.
FLUX_ALERT_SOURCES = [
    {"kind": "HelmRelease", "namespace": "apps", "name": "*"},
    {"kind": "Kustomization", "namespace": "flux-system", "name": "*"},
]


class NotificationController:
    """The event server's handling, as internal/server/event_handlers.go does it."""

    def __init__(self) -> None:
        self.dispatched: list[dict[str, Any]] = []
        self.discarded: list[dict[str, Any]] = []
        self.receiver = Receiver()
        self.receiver.on_request = self._handle

    async def _handle(self, request: web.Request) -> Answer:
        event = orjson.loads(await request.read())
        obj = event["involvedObject"]
        if not (obj.get("kind") and obj.get("name") and obj.get("namespace")):
            return (400, {}, b"involvedObject needs kind, name and namespace")
        group = obj.get("apiVersion", "").rpartition("/")[0]
        # cleanupMetadata: only keys prefixed with the object's group (or the event group).
        kept = {
            k: v
            for k, v in (event.get("metadata") or {}).items()
            if k.startswith((group + "/", "event.toolkit.fluxcd.io/"))
        }
        event["metadata"] = kept
        matched = any(
            s["kind"] == obj["kind"]
            and s["namespace"] == obj["namespace"]
            and s["name"] in ("*", obj["name"])
            for s in FLUX_ALERT_SOURCES
        )
        (self.dispatched if matched else self.discarded).append(event)
        return 202


@pytest.fixture
async def nc() -> AsyncIterator[NotificationController]:
    controller = NotificationController()
    await controller.receiver.start()
    yield controller
    await controller.receiver.stop()


def settings(url: str, **alert: Any) -> NotifySettings:
    return NotifySettings.model_validate(
        {
            "providers": [{"name": "nc", "type": "flux", "address": url}],
            "alerts": [{"name": "to-flux", "providerRef": {"name": "nc"}, **alert}],
        }
    )


HR_ONLY = {"eventSources": [{"kind": "HelmRelease", "name": "*", "namespace": "*"}]}


async def test_helmrelease_events_reach_flux_alerts_with_their_metadata(
    nc: NotificationController,
) -> None:
    router = await Router.from_settings(settings(nc.receiver.url, **HR_ONLY))
    try:
        router.publish(
            FACTORY.stuck_detected(
                HR, age=400, threshold=300, release="apps-podinfo", revision="1.2"
            )
        )
        router.publish(FACTORY.leader_changed(LEASE, previous="a", holder="b"))
        await router.flush()
        assert isinstance(router.metrics, MemoryMetrics)
        assert dict(router.metrics.counts) == {("nc", "sent"): 1}
    finally:
        await router.close()
    (event,) = nc.dispatched
    assert nc.discarded == []
    assert event["involvedObject"] == {
        "kind": "HelmRelease",
        "namespace": "apps",
        "name": "podinfo",
        "uid": "uid-1",
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "resourceVersion": "7",
    }
    # Every key survives cleanupMetadata, which drops the unprefixed ones.
    assert event["metadata"]["helm.toolkit.fluxcd.io/revision"] == "1.2"
    assert event["metadata"]["helm.toolkit.fluxcd.io/release"] == "apps-podinfo"
    assert event["reportingController"] == "fluxwatch"
    assert event["severity"] == "error"


async def test_an_event_no_flux_alert_can_match_is_skipped_not_sent(
    nc: NotificationController,
) -> None:
    """Even a rule built past check-config (from parts) cannot make it post a Lease event."""
    everything = Rule.from_spec(AlertSpec(name="all", providerRef={"name": "nc"}))  # type: ignore[arg-type]
    provider_settings = settings(nc.receiver.url, **HR_ONLY)
    built = await Router.from_settings(provider_settings)
    router = Router(built.providers, [everything])
    router.start()
    try:
        router.publish(FACTORY.leader_flapping(LEASE, changes=4, window=600))
        router.publish(
            FACTORY.guardrail_tripped(
                DEPLOYMENT, guardrail="batch", detail="12 at once", releases=["apps/a"]
            )
        )
        await router.flush()
        assert isinstance(router.metrics, MemoryMetrics)
        assert dict(router.metrics.counts) == {("nc", "skipped"): 2}
    finally:
        await router.close()
        await built.close()
    assert nc.receiver.requests == []


@pytest.mark.parametrize(
    ("alert", "lost"),
    [
        ({}, "Lease (LeaderChanged, LeaderRestored, LeaderFlapping, ControllerLeaderless"),
        ({"eventSeverity": "error"}, "Lease (LeaderFlapping, ControllerLeaderless, Guardrail"),
        (
            {"eventSources": [{"kind": "*", "name": "*", "namespace": "*"}]},
            "Deployment (GuardrailTripped)",
        ),
        (
            {"eventSources": [{"kind": "Lease", "name": "*", "namespace": "flux-system"}]},
            "Lease (LeaderChanged",
        ),
    ],
)
def test_check_config_refuses_a_route_that_would_lose_events(
    alert: dict[str, Any], lost: str
) -> None:
    with pytest.raises(ValidationError) as info:
        settings("http://nc", **alert)
    text = str(info.value)
    assert "alert 'to-flux' routes to flux provider 'nc'" in text
    assert lost in text
    if alert.get("eventSeverity") == "error":
        assert "LeaderChanged" not in text


def test_helmrelease_only_and_suspended_routes_are_accepted() -> None:
    settings("http://nc", **HR_ONLY)
    settings("http://nc", suspend=True)
    exact = {"eventSources": [{"kind": "HelmRelease", "name": "podinfo", "namespace": "apps"}]}
    settings("http://nc", **exact)
