"""fluxwatch's Kubernetes Events at the limits a production run reaches, written over real
HTTP to the strict embedded cluster: the longest names, a Helm error of several KB, the
longest pod name as reportingInstance, repeats folded and aggregated, an Event about a
Lease. Each must be stored, as a real kube-apiserver v1.32 would store it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from fluxwatch.app import build_recorder
from fluxwatch.kube.client import KubeClient, Resource
from fluxwatch.notify.event import TRUNCATION_MARK, EventFactory, InvolvedObject
from fluxwatch.notify.metrics import MemoryMetrics
from fluxwatch.notify.providers.kubernetes_event import AGGREGATE_MAX_EVENTS, AGGREGATE_PREFIX
from fluxwatch.settings import load_settings
from fluxwatch.sim.apiserver import ApiServer

HR = "helmreleases.helm.toolkit.fluxcd.io"
NAMESPACE = "n" * 63  # the longest namespace name (a DNS-1123 label)
RELEASE = ("r" * 62 + ".") * 4 + "r"  # 253: the longest HelmRelease name
POD = ("fluxwatch-" + "p" * 52 + ".") * 4 + "p"  # 253: the longest pod name
HELM_ERROR = "Helm upgrade failed: " + "template: x/templates/cm.yaml:1: bad value; " * 150


@pytest.fixture
def release(apiserver: ApiServer, hr: Callable[..., dict[str, Any]]) -> InvolvedObject:
    apiserver.store.create("namespaces", {"metadata": {"name": NAMESPACE}})
    meta = apiserver.store.create(HR, hr(RELEASE, NAMESPACE))["metadata"]
    return InvolvedObject.helmrelease(NAMESPACE, RELEASE, meta["uid"], meta["resourceVersion"])


async def test_the_longest_names_and_a_helm_error_of_several_kb_are_recorded(
    apiserver: ApiServer, client: KubeClient, release: InvolvedObject
) -> None:
    assert len(RELEASE) == 253 and len(POD) == 253 and len(HELM_ERROR) > 6000
    recorder = build_recorder(load_settings(None, {"kubeconfig": "x"}), client, MemoryMetrics())
    assert recorder is not None
    events = EventFactory(POD)
    recorder.publish(
        events.recovery_failed(
            release, strategy="suspend-toggle", attempt=3, max_attempts=3, error=HELM_ERROR
        )
    )
    await recorder.close(5)
    [stored] = apiserver.store.list("events", NAMESPACE)[0]
    assert stored["metadata"]["name"].startswith(RELEASE + ".")
    assert stored["involvedObject"]["name"] == RELEASE
    assert stored["reportingInstance"] == POD
    assert stored["reason"] == "RecoveryFailed"
    assert len(stored["message"]) <= 1024


async def test_repeats_are_counted_and_many_messages_aggregated_at_the_limits(
    apiserver: ApiServer, client: KubeClient, release: InvolvedObject
) -> None:
    recorder = build_recorder(load_settings(None, {"kubeconfig": "x"}), client, MemoryMetrics())
    assert recorder is not None
    events = EventFactory(POD)
    same = events.recovery_skipped(release, why="dry run")
    for _ in range(3):
        recorder.publish(same)
    for n in range(AGGREGATE_MAX_EVENTS + 1):
        recorder.publish(events.recovery_skipped(release, why=f"{n} {HELM_ERROR}"))
    await recorder.close(5)
    stored = apiserver.store.list("events", NAMESPACE)[0]
    [folded] = [e for e in stored if e["message"] == same.message]
    assert folded["count"] == 3
    [aggregated] = [e for e in stored if e["message"].startswith(AGGREGATE_PREFIX)]
    # With the repeated one, the 9th new message is the 10th different: it opens the
    # aggregate, and the two after it are repeats of that.
    assert aggregated["count"] == 3
    assert len(stored) == 1 + (AGGREGATE_MAX_EVENTS - 2) + 1
    assert all(len(e["message"]) <= 1024 for e in stored)


async def test_an_event_about_a_lease_lives_in_the_leases_namespace(
    apiserver: ApiServer, client: KubeClient
) -> None:
    recorder = build_recorder(load_settings(None, {"kubeconfig": "x"}), client, MemoryMetrics())
    assert recorder is not None
    lease = InvolvedObject.lease("flux-system", "helm-controller-leader-election")
    recorder.publish(EventFactory(POD).leader_changed(lease, previous="a", holder="b"))
    await recorder.close(5)
    [stored] = apiserver.store.list("events", "flux-system")[0]
    assert stored["involvedObject"]["kind"] == "Lease"


async def test_a_cut_message_fits_the_note_limit_in_bytes(
    apiserver: ApiServer, client: KubeClient, release: InvolvedObject
) -> None:
    """The server's NoteLengthLimit is Go's len(): bytes. A Helm error in another script
    (a chart's Japanese description) cut to 1024 characters would be ~3 KB: its note
    could not be written as an events.k8s.io/v1 Event, which the provider promises."""
    recorder = build_recorder(load_settings(None, {"kubeconfig": "x"}), client, MemoryMetrics())
    assert recorder is not None
    error = "Helm install failed: " + "チャートの説明が長すぎます。" * 200
    recorder.publish(
        EventFactory(POD).recovery_failed(
            release, strategy="force-reconcile", attempt=1, max_attempts=3, error=error
        )
    )
    await recorder.close(5)
    [stored] = apiserver.store.list("events", NAMESPACE)[0]
    note = stored["message"]
    assert len(note.encode()) <= 1024
    assert note.endswith(TRUNCATION_MARK) and note.startswith("fluxwatch failed to recover")
    new_style = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "copy", "namespace": NAMESPACE},
        "eventTime": "2026-03-01T12:00:00.000000Z",
        "regarding": stored["involvedObject"],
        "reason": stored["reason"],
        "note": note,
        "type": stored["type"],
        "action": "Recover",
        "reportingController": stored["reportingComponent"],
        "reportingInstance": "fluxwatch-7d9f-abcde",
    }
    created = await client.create(Resource("events.k8s.io", "v1", "events"), NAMESPACE, new_style)
    assert created["note"] == note


async def test_a_repeat_of_an_expired_event_writes_it_again_with_its_count(
    apiserver: ApiServer, client: KubeClient, release: InvolvedObject
) -> None:
    """Events expire (kube-apiserver's --event-ttl, an hour): the repeat's patch finds
    none (404) and the recorder creates it again under its name, count kept, as
    client-go's recordToSink does."""
    recorder = build_recorder(load_settings(None, {"kubeconfig": "x"}), client, MemoryMetrics())
    assert recorder is not None
    event = EventFactory(POD).recovery_skipped(release, why="dry run")
    recorder.publish(event)
    await asyncio.wait_for(recorder.flush(), 5)
    [first] = apiserver.store.list("events", NAMESPACE)[0]
    apiserver.store.delete("events", NAMESPACE, first["metadata"]["name"])
    recorder.publish(event)
    await recorder.close(5)
    [again] = apiserver.store.list("events", NAMESPACE)[0]
    assert again["metadata"]["name"] == first["metadata"]["name"]
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
    assert (again["count"], again["firstTimestamp"]) == (2, first["firstTimestamp"])
