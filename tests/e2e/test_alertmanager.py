"""fluxwatch's alertmanager provider against a real Alertmanager: the alert shows in its API."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest

from fluxwatch.notify import (
    EventFactory,
    InvolvedObject,
    MemoryMetrics,
    NotifySettings,
    Router,
    send_test_alert,
)

pytestmark = pytest.mark.e2e


async def alerts(base: str, **labels: str) -> list[dict[str, Any]]:
    """The active alerts whose labels match, polled briefly (the API stores asynchronously)."""
    query = [("filter", f'{k}="{v}"') for k, v in labels.items()]
    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            async with session.get(f"{base}/api/v2/alerts", params=query) as resp:
                assert resp.status == 200
                found: list[dict[str, Any]] = await resp.json()
            if found:
                return found
            await asyncio.sleep(0.05)
    return []


async def test_stuck_release_fires_an_alert(alertmanager: str) -> None:
    """FLUX-FACTS §6: labels are metadata + alertname Flux<Kind><Reason>, severity, reason, ..."""
    name = f"podinfo-{uuid.uuid4().hex[:8]}"
    settings = NotifySettings.model_validate(
        {
            "providers": [{"name": "am", "type": "alertmanager", "address": alertmanager}],
            "alerts": [
                {
                    "name": "errors",
                    "providerRef": {"name": "am"},
                    "eventSeverity": "error",
                    "eventMetadata": {"cluster.name": "e2e"},
                    "summary": "fluxwatch e2e",
                }
            ],
        }
    )
    router = await Router.from_settings(settings)
    factory = EventFactory("fluxwatch-0")
    hr = InvolvedObject.helmrelease("apps", name, uid="uid-1")
    event = factory.stuck_detected(
        hr, age=432, threshold=300, release=f"apps-{name}", helm_version=3, revision="6.5.0"
    )
    router.publish(event)
    router.publish(
        factory.recovery_started(hr, strategy="force-reconcile", attempt=1, max_attempts=3)
    )
    await router.close()
    assert isinstance(router.metrics, MemoryMetrics)
    assert dict(router.metrics.counts) == {("am", "sent"): 1}

    (alert,) = await alerts(alertmanager, name=name)
    assert alert["labels"] == {
        "alertname": "FluxHelmReleaseStuckDetected",
        "severity": "error",
        "reason": "StuckDetected",
        "kind": "HelmRelease",
        "name": name,
        "namespace": "apps",
        "reportingcontroller": "fluxwatch",
        "age": "7m12s",
        "threshold": "5m0s",
        "release": f"apps-{name}",
        "helmVersion": "3",
        "revision": "6.5.0",
        "cluster_name": "e2e",
    }
    assert alert["annotations"] == {"message": event.message, "summary": "fluxwatch e2e"}
    assert alert["status"]["state"] == "active"
    assert alert["startsAt"].startswith(event.to_dict()["timestamp"].removesuffix("Z"))


async def test_test_alert_reaches_alertmanager(alertmanager: str) -> None:
    settings = NotifySettings.model_validate(
        {"providers": [{"name": "am", "type": "alertmanager", "address": alertmanager}]}
    )
    (result,) = await send_test_alert(settings, "am", namespace="fluxwatch")
    assert result.ok and result.status == 200
    found = await alerts(alertmanager, alertname="FluxHelmReleaseTestAlert", namespace="fluxwatch")
    assert found and found[0]["labels"]["name"] == "fluxwatch-test-alert"


async def test_production_sized_alerts_are_accepted(alertmanager: str) -> None:
    """A 253-character release, a multi-line Helm error in Japanese with emoji, sixty
    metadata keys with dots and slashes: the real Alertmanager's v2 API takes the alert
    fluxwatch posts (label names valid, values UTF-8, no endsAt before startsAt)."""
    settings = NotifySettings.model_validate(
        {
            "providers": [{"name": "am", "type": "alertmanager", "address": alertmanager}],
            "alerts": [{"name": "all", "providerRef": {"name": "am"}}],
        }
    )
    router = await Router.from_settings(settings)
    factory = EventFactory("fluxwatch-0")
    name = f"{uuid.uuid4().hex[:8]}-" + "r" * 244
    hr = InvolvedObject.helmrelease("n" * 63, name, uid="uid-long")
    error = "".join(
        f"Helm upgrade failed: line {i}: リソースの準備がタイムアウトしました 🚨🔥\n"
        for i in range(120)
    )
    event = factory.recovery_failed(
        hr, strategy="rollback", attempt=3, max_attempts=3, error=error
    ).with_metadata({f"team.example.com/key-{i:02}": "値 ✓" * 20 for i in range(60)})
    router.publish(event)
    await router.close()
    assert isinstance(router.metrics, MemoryMetrics)
    assert dict(router.metrics.counts) == {("am", "sent"): 1}

    (alert,) = await alerts(alertmanager, name=name)
    assert alert["labels"]["error"] == error
    assert alert["labels"]["team_example_com_key_59"] == "値 ✓" * 20
    assert alert["annotations"]["message"] == event.message
