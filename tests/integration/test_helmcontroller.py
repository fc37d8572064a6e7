"""The simulated helm-controller and the scenarios, in-process on the Store, under looptime.

Each test replays a scenario in fake loop time (minutes of cluster time, well
under a second of real time) and checks what helm-controller v1.x would have
written, naming the FLUX-FACTS fact it pins.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fluxwatch.kube.fields import parse_rfc3339
from fluxwatch.kube.helmrelease import (
    ANNOTATION_FORCE_AT,
    ANNOTATION_REQUESTED_AT,
    FINALIZER,
    HRView,
    hr_view,
)
from fluxwatch.kube.helmstorage import (
    SECRET_TYPE,
    decode_release,
    from_metadata,
    label_selector,
    newest,
)
from fluxwatch.kube.lease import lease_view
from fluxwatch.sim import scenarios
from fluxwatch.sim.events import EVENTS
from fluxwatch.sim.helmcontroller import (
    HELM_LEASE,
    HELMRELEASES,
    LEASES,
    SECRETS,
    HelmController,
    LeaseHolder,
)
from fluxwatch.sim.scenarios import CATALOG, FLUX_CONTROLLERS, ScenarioRun
from fluxwatch.sim.store import ApiError, Store
from fluxwatch.sim.validation import validate as validate_object

VPA = ("flux-system", "bp-vpa")
pytestmark = pytest.mark.looptime


async def _run(name: str, **params: Any) -> tuple[Store, ScenarioRun]:
    store = Store()
    run = await scenarios.start(name, store, **params)
    async with asyncio.timeout(3600):
        await run.wait()
    return store, run


@contextlib.asynccontextmanager
async def incident(**params: Any) -> AsyncIterator[tuple[Store, ScenarioRun]]:
    """incident-925, run inside the test: looptime fakes the time of the test body only,
    not of fixtures."""
    store, run = await _run("incident-925", **params)
    try:
        yield store, run
    finally:
        await run.stop()


def view(store: Store, key: tuple[str, str]) -> HRView:
    return hr_view(store.get(HELMRELEASES, *key))


def views(store: Store) -> list[HRView]:
    items, _ = store.list(HELMRELEASES)
    return [hr_view(o) for o in items]


def stuck_keys(store: Store) -> list[tuple[str, str]]:
    return [v.key for v in views(store) if v.ready is None or v.ready.status != "True"]


def stored(store: Store, v: HRView) -> list[Any]:
    items, _ = store.list(
        SECRETS, v.storage_namespace, label_selector=label_selector(v.release_name)
    )
    return [r for r in map(from_metadata, items) if r is not None]


async def settle(run: ScenarioRun) -> None:
    assert run.helm is not None
    async with asyncio.timeout(600):
        await asyncio.sleep(1)  # let the watch deliver the write that triggers a reconcile
        await run.helm.wait_idle()


def annotate(store: Store, key: tuple[str, str], **annotations: str) -> None:
    store.patch(HELMRELEASES, *key, {"metadata": {"annotations": annotations}})


def assert_upstream_stuck_shape(store: Store, key: tuple[str, str]) -> HRView:
    raw = store.get(HELMRELEASES, *key)
    v = hr_view(raw)
    assert v.malformed is None
    assert [c["type"] for c in raw["status"]["conditions"]] == ["Ready"]
    assert v.ready is not None
    assert (v.ready.status, v.ready.reason) == ("Unknown", "Progressing")
    assert v.ready.message == "Running 'install' action with timeout of 5m0s"
    assert v.reconciling is None and v.released is None
    assert v.last_release is not None and v.last_release.status == "deployed"
    return v


async def test_incident_925_leaves_exactly_bp_vpa_stuck() -> None:
    """FLUX-FACTS §1: the Lease is lost mid-install; the Secret is deployed, history[0] says
    deployed, Ready stays Unknown/Progressing; §2: the upstream stuck shape; §4: the newest
    Secret (by version label) is deployed with the same version."""
    async with incident() as (store, run):
        assert run.expected_stuck == (VPA,)
        assert len(views(store)) == len(CATALOG) == 35
        assert stuck_keys(store) == [VPA]
        v = assert_upstream_stuck_shape(store, VPA)
        assert v.release_name == "vpa-bp-vpa"
        assert v.last_release is not None and v.last_release.version == 1
        current = newest(stored(store, v))
        assert current is not None and (current.version, current.status) == (1, "deployed")
        secret = store.get(SECRETS, "flux-system", "sh.helm.release.v1.vpa-bp-vpa.v1")
        assert secret["type"] == SECRET_TYPE
        release = decode_release(secret["data"]["release"])
        assert (release["name"], release["version"], release["info"]["status"]) == (
            "vpa-bp-vpa",
            1,
            "deployed",
        )
        assert release["chart"]["metadata"]["name"] == "vertical-pod-autoscaler"
        # The stuck clock is the Ready condition's own lastTransitionTime: a real RFC 3339 time.
        raw = store.get(HELMRELEASES, *VPA)
        assert v.ready is not None and v.ready.last_transition == parse_rfc3339(
            raw["status"]["conditions"][0]["lastTransitionTime"]
        )
        lease = lease_view(store.get(LEASES, "flux-system", HELM_LEASE))
        assert lease.transitions == 1


async def test_healthy_releases_have_the_v1_shape() -> None:
    """FLUX-FACTS §2: Ready and Released True with InstallSucceeded, history[0] deployed,
    observedGeneration, lastAttemptedReleaseAction, storageNamespace, the finalizer; the
    release name rules (prefix, 53-char shortening) decide the Secret names (§4)."""
    async with incident() as (store, _):
        raw = store.get(HELMRELEASES, "flux-system", "bp-prometheus-node-exporter")
        v = hr_view(raw)
        assert v.ready is not None and v.released is not None
        assert (v.ready.status, v.ready.reason) == ("True", "InstallSucceeded")
        assert v.released.status == "True" and v.reconciling is None
        assert v.observed_generation == v.generation == 1
        assert v.last_attempted_release_action == "install"
        assert raw["metadata"]["finalizers"] == [FINALIZER]
        assert raw["status"]["storageNamespace"] == "flux-system"
        assert len(v.release_name) == 53
        current = newest(stored(store, v))
        assert current is not None and current.status == "deployed"
        assert v.last_release is not None and v.last_release.name == v.release_name
        [ready] = [c for c in raw["status"]["conditions"] if c["type"] == "Ready"]
        assert ready["message"] == (
            f"Helm install succeeded for release sovereign-observability-exporters/{v.release_name}"
            ".v1 with chart prometheus-node-exporter@4.42.0"
        )


async def test_plain_requested_at_does_not_clear() -> None:
    """FLUX-FACTS §3: requestedAt alone triggers a reconcile; the stuck path stays stuck and
    only status.lastHandledReconcileAt moves."""
    async with incident() as (store, run):
        annotate(store, VPA, **{ANNOTATION_REQUESTED_AT: "fluxwatch-1"})
        await settle(run)
        v = assert_upstream_stuck_shape(store, VPA)
        assert v.last_handled_reconcile_at == "fluxwatch-1"
        assert v.last_handled_force_at is None
        assert [r.version for r in stored(store, v)] == [1]


async def test_force_reconcile_clears() -> None:
    """FLUX-FACTS §3: requestedAt plus an equal new forceAt runs a Helm upgrade (revision N+1)
    and writes Ready fresh; acknowledged in lastHandledForceAt."""
    async with incident() as (store, run):
        annotate(store, VPA, **{ANNOTATION_REQUESTED_AT: "fw-2", ANNOTATION_FORCE_AT: "fw-2"})
        await settle(run)
        v = view(store, VPA)
        assert v.ready is not None and v.released is not None
        assert (v.ready.status, v.ready.reason) == ("True", "UpgradeSucceeded")
        assert v.released.status == "True"
        assert v.last_handled_force_at == v.last_handled_reconcile_at == "fw-2"
        assert v.last_release is not None and (v.last_release.version, v.last_release.action) == (
            2,
            "upgrade",
        )
        assert v.observed_generation == v.generation
        assert sorted((r.version, r.status) for r in stored(store, v)) == [
            (1, "superseded"),
            (2, "deployed"),
        ]
        assert stuck_keys(store) == []


async def test_force_needs_the_same_token() -> None:
    """FLUX-FACTS §3: forceAt is honoured only together with an equal requestedAt."""
    async with incident() as (store, run):
        annotate(store, VPA, **{ANNOTATION_REQUESTED_AT: "fw-3", ANNOTATION_FORCE_AT: "fw-other"})
        await settle(run)
        assert_upstream_stuck_shape(store, VPA)


async def test_suspend_toggle_does_not_clear() -> None:
    """FLUX-FACTS §3: suspend/resume bumps generation but does not clear the stuck state in
    current helm-controller (the seed's method fails)."""
    async with incident() as (store, run):
        store.patch(HELMRELEASES, *VPA, {"spec": {"suspend": True}})
        await settle(run)
        store.patch(HELMRELEASES, *VPA, {"spec": {"suspend": False}})
        await settle(run)
        v = assert_upstream_stuck_shape(store, VPA)
        assert v.generation == 3
        assert [r.version for r in stored(store, v)] == [1]


async def test_suspend_toggle_clears_with_the_older_behaviour() -> None:
    """FLUX-FACTS §3: with the older-behaviour switch, a resume runs an upgrade that clears it."""
    async with incident(suspend_clears_stuck=True) as (store, run):
        store.patch(HELMRELEASES, *VPA, {"spec": {"suspend": True}})
        await settle(run)
        assert_upstream_stuck_shape(store, VPA)  # suspended: the controller does nothing
        store.patch(HELMRELEASES, *VPA, {"spec": {"suspend": False}})
        await settle(run)
        v = view(store, VPA)
        assert v.ready is not None and v.ready.status == "True"
        assert v.last_release is not None and v.last_release.version == 2


async def test_status_correction_is_kept() -> None:
    """FLUX-FACTS §3: a /status write of Released=True and Ready=True (observedGeneration =
    generation) clears it, and the controller keeps it while the release is in sync."""
    async with incident() as (store, run):
        raw = store.get(HELMRELEASES, *VPA)
        generation = raw["metadata"]["generation"]
        message = "Helm install succeeded for release vpa/vpa-bp-vpa.v1 with chart x@4.7.1"
        conditions = [
            {
                "type": t,
                "status": "True",
                "reason": "InstallSucceeded",
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": "2030-01-01T00:00:00Z",
            }
            for t in ("Ready", "Released")
        ]
        store.patch(
            HELMRELEASES,
            *VPA,
            {
                "metadata": {"resourceVersion": raw["metadata"]["resourceVersion"]},
                "status": {"conditions": conditions, "observedGeneration": generation},
            },
            subresource="status",
        )
        annotate(store, VPA, **{ANNOTATION_REQUESTED_AT: "fw-4"})
        await settle(run)
        v = view(store, VPA)
        assert v.ready is not None and v.ready.status == "True"
        conditions = store.get(HELMRELEASES, *VPA)["status"]["conditions"]
        assert [c["message"] for c in conditions if c["type"] == "Ready"] == [message]
        assert v.last_handled_reconcile_at == "fw-4"
        assert [r.version for r in stored(store, v)] == [1]


async def test_fixed_controller_recovers_by_itself() -> None:
    """FLUX-FACTS §1 (fix attempts #1411/#1580): a controller that re-derives Ready from the
    release in storage leaves nothing stuck after the same Lease loss."""
    async with incident(bug=False) as (store, run):
        assert run.expected_stuck == ()
        assert stuck_keys(store) == []
        v = view(store, VPA)
        assert v.last_release is not None and v.last_release.version == 1


async def test_lease_flip_and_leaderless() -> None:
    """FLUX-FACTS §5: a leader change writes a new holderIdentity, a new acquireTime and
    leaseTransitions + 1; a controller that stops renewing leaves renewTime +
    leaseDurationSeconds in the past and nobody takes over."""
    async with incident() as (store, run):
        helm = run.helm
        assert helm is not None
        before = lease_view(store.get(LEASES, "flux-system", HELM_LEASE))
        assert before.holder == helm.identity
        assert before.holder.startswith("helm-controller-") and "_" in before.holder
        assert before.lease_duration_seconds == 35
        async with asyncio.timeout(600):
            await helm.flap(2)
        after = lease_view(store.get(LEASES, "flux-system", HELM_LEASE))
        assert after.transitions == before.transitions + 2
        assert after.holder == helm.identity != before.holder
        assert after.acquire_time is not None and before.acquire_time is not None
        assert after.acquire_time > before.acquire_time

        helm.drop_lease()
        await asyncio.sleep(120)
        gone = lease_view(store.get(LEASES, "flux-system", HELM_LEASE))
        assert not helm.is_leader
        assert gone.holder == after.holder and gone.transitions == after.transitions
        assert gone.expires_at is not None and gone.expires_at < helm.clock()

        helm.restore_lease()
        async with asyncio.timeout(600):
            await helm.wait_leader(other_than=after.holder)
        back = lease_view(store.get(LEASES, "flux-system", HELM_LEASE))
        assert back.transitions == after.transitions + 1


async def test_a_lost_lease_is_taken_over_as_client_go_takes_it() -> None:
    """client-go's new process waits a full lease duration from its first look, whatever
    renewTime says: the old leader gives up at its renew deadline (30 s after its last
    renewal), the new pod's first look is a retry period later, and it takes the Lease
    35 s after that, writing leaseTransitions + 1 and a new acquireTime."""
    store = Store()
    holder = LeaseHolder(store, "helm-controller")
    await holder.start()
    loop = asyncio.get_running_loop()
    old = holder.identity
    renewed = lease_view(store.get(LEASES, "flux-system", HELM_LEASE))
    lost = loop.time()
    holder.lose()
    await holder.wait_leader(other_than=old)
    took = loop.time() - lost
    await holder.stop()
    # renew deadline (30) + a retry period to the new pod's first look (5) + 35 s.
    assert 30 + 35 <= took <= 30 + 5 + 35 + 5
    taken = lease_view(store.get(LEASES, "flux-system", HELM_LEASE))
    assert taken.transitions == renewed.transitions + 1
    assert taken.acquire_time is not None and renewed.acquire_time is not None
    assert taken.acquire_time > renewed.acquire_time


async def test_flux_controller_leases_are_held() -> None:
    """FLUX-FACTS §5: the four <controller>-leader-election Leases in flux-system, renewed."""
    async with incident() as (store, _):
        first = {lv.name: lv for lv in map(lease_view, store.list(LEASES, "flux-system")[0])}
        assert set(first) == {f"{c}-leader-election" for c in FLUX_CONTROLLERS}
        await asyncio.sleep(30)
        for lv in map(lease_view, store.list(LEASES, "flux-system")[0]):
            assert lv.malformed is None and lv.holder
            assert lv.renew_time is not None and lv.expires_at is not None
            assert lv.renew_time > (first[lv.name].renew_time or 0)
            assert lv.expires_at > lv.renew_time


async def test_deletion_uninstalls_and_drops_the_finalizer() -> None:
    """FLUX-FACTS §2: a set deletionTimestamp makes the controller uninstall (the storage
    Secrets go) and remove finalizers.fluxcd.io, after which the object is gone."""
    async with incident() as (store, run):
        key = ("observability", "bp-grafana")
        v = view(store, key)
        assert stored(store, v)
        store.delete(HELMRELEASES, *key)
        await settle(run)
        with pytest.raises(ApiError) as exc:
            store.get(HELMRELEASES, *key)
        assert exc.value.code == 404
        assert stored(store, v) == []


async def test_suspended_release_is_left_alone() -> None:
    """FLUX-FACTS §3: a suspended HelmRelease is not reconciled."""
    store = Store()
    helm = HelmController(store, install_duration=10.0)
    await helm.start()
    try:
        async with asyncio.timeout(600):
            await helm.wait_leader()
            obj = scenarios.helmrelease(CATALOG[0])
            obj["spec"]["suspend"] = True
            store.create(HELMRELEASES, obj)
            await asyncio.sleep(60)
            await helm.wait_idle()
        raw = store.get(HELMRELEASES, "flux-system", "bp-cilium")
        # Only the CRD's default status: helm-controller never wrote to it.
        assert raw["status"] == {"observedGeneration": -1}
        assert not raw["metadata"].get("finalizers")
        assert store.list(SECRETS, "flux-system")[0] == []
    finally:
        await helm.stop()
    released = lease_view(store.get(LEASES, "flux-system", HELM_LEASE))
    assert released.holder == ""  # a clean stop releases the Lease


async def test_mass_outage_leaves_fifteen_stuck() -> None:
    """FLUX-FACTS §1: a Lease lost during a fan-out leaves every in-flight install stuck,
    here 15 at once (more than the guardrail's batch of 10)."""
    store, run = await _run("mass-outage")
    try:
        assert len(run.expected_stuck) == 15
        assert sorted(stuck_keys(store)) == list(run.expected_stuck)
        for key in run.expected_stuck:
            v = assert_upstream_stuck_shape(store, key)
            current = newest(stored(store, v))
            assert current is not None and current.status == "deployed"
    finally:
        await run.stop()


async def test_healthy_scenario() -> None:
    """FLUX-FACTS §2: a clean fan-out ends with every HelmRelease Ready, no Lease change."""
    store, run = await _run("healthy")
    try:
        assert stuck_keys(store) == []
        assert lease_view(store.get(LEASES, "flux-system", HELM_LEASE)).transitions == 0
        namespaces = {o["metadata"]["name"] for o in store.list("namespaces")[0]}
        assert {"flux-system", "vpa", "observability", "sovereign-observability-exporters"} <= (
            namespaces
        )
    finally:
        await run.stop()


async def test_load_scenario_builds_ready_releases() -> None:
    """FLUX-FACTS §2/§4: installed releases with realistic status, history and Secrets; the
    stuck ones in the upstream shape with a deployed Secret of the same version."""
    store = Store()
    run = await scenarios.start(
        "load", store, n=300, namespaces=3, secrets=True, stuck=7, time_scale=0.1
    )
    try:
        all_views = views(store)
        assert len(all_views) == 300
        assert all(v.malformed is None for v in all_views)
        assert sorted(stuck_keys(store)) == list(run.expected_stuck)
        assert len(run.expected_stuck) == 7
        now = run.holders[0].clock()
        for v in all_views:
            assert v.ready is not None and v.ready.last_transition is not None
            assert v.ready.last_transition < now
            current = newest(stored(store, v))
            assert v.last_release is not None and current is not None
            assert (current.version, current.status) == (v.last_release.version, "deployed")
            if v.key in run.expected_stuck:
                assert_upstream_stuck_shape(store, v.key)
                # Stuck 6 to 60 minutes, scaled by time_scale.
                assert 36 <= now - v.ready.last_transition <= 360
        assert {lv.name for lv in map(lease_view, store.list(LEASES, "flux-system")[0])} == {
            f"{c}-leader-election" for c in FLUX_CONTROLLERS
        }
    finally:
        await run.stop()


async def test_unknown_scenario_is_named() -> None:
    with pytest.raises(KeyError, match="known: incident-925"):
        await scenarios.start("nope", Store())


# ---- the story in core/v1 Events ------------------------------------------------------------


def events_on(store: Store, key: tuple[str, str]) -> list[dict[str, Any]]:
    """What ``kubectl events --for hr/<name>`` lists: Events whose involvedObject is it."""
    items, _ = store.list(EVENTS, key[0])
    return sorted(
        (
            e
            for e in items
            if e["involvedObject"].get("kind") == "HelmRelease"
            and e["involvedObject"].get("name") == key[1]
        ),
        key=lambda e: int(e["metadata"]["resourceVersion"]),
    )


def reasons(events: list[dict[str, Any]]) -> list[str]:
    return [e["reason"] for e in events]


def assert_recorded_like_flux(event: dict[str, Any], hr: dict[str, Any]) -> None:
    """The shape of client-go's legacy recorder behind Flux's events.Recorder, which a real
    kube-apiserver's ValidateEventCreate accepts."""
    assert validate_object("events", event) == []
    assert event["source"] == {"component": "helm-controller"}
    assert (event["reportingComponent"], event["reportingInstance"]) == ("helm-controller", "")
    assert event["eventTime"] is None and "action" not in event
    assert event["firstTimestamp"] <= event["lastTimestamp"]
    assert event["count"] >= 1 and event["type"] in ("Normal", "Warning")
    ref = event["involvedObject"]
    assert ref["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert ref["uid"] == hr["metadata"]["uid"]
    assert ref["resourceVersion"].isdigit()
    assert event["metadata"]["namespace"] == ref["namespace"] == hr["metadata"]["namespace"]
    assert event["metadata"]["name"].startswith(hr["metadata"]["name"] + ".")


async def test_events_tell_the_story_of_a_release_and_of_the_stuck_one() -> None:
    """helm-controller's Events (internal/reconcile/install.go, upgrade.go,
    helmchart_template.go; FLUX-FACTS §7 for DependencyNotReady being Normal): a healthy
    release waits for its dependency (folded into one Event with a count), gets its HelmChart
    and InstallSucceeded with the revision/token annotations; the stuck one (FLUX-FACTS §1)
    never gets InstallSucceeded, because the process that would have recorded it died; a
    forced reconcile then records UpgradeSucceeded for revision 2."""
    async with incident() as (store, run):
        grafana = ("observability", "bp-grafana")
        hr = store.get(HELMRELEASES, *grafana)
        story = events_on(store, grafana)
        assert reasons(story) == ["DependencyNotReady", "HelmChartCreated", "InstallSucceeded"]
        for event in story:
            assert_recorded_like_flux(event, hr)
        waiting, chart, installed = story
        assert waiting["message"] == "dependency 'flux-system/bp-cilium' is not ready"
        assert waiting["count"] > 1  # requeued every 5s while bp-cilium installed
        assert chart["message"] == (
            "HelmChart/flux-system/observability-bp-grafana created with SourceRef "
            "'HelmRepository/flux-system/grafana'"
        )
        assert installed["type"] == "Normal"
        assert installed["message"] == (
            "Helm install succeeded for release observability/bp-grafana.v1 with chart "
            "grafana@8.8.2"
        )
        assert installed["metadata"]["annotations"] == {
            "helm.toolkit.fluxcd.io/app-version": "8.8.2",
            "helm.toolkit.fluxcd.io/revision": "8.8.2",
            "helm.toolkit.fluxcd.io/token": hr["status"]["history"][0]["configDigest"],
        }
        assert (
            installed["involvedObject"]["resourceVersion"]
            != waiting["involvedObject"]["resourceVersion"]
        )

        assert reasons(events_on(store, VPA)) == ["DependencyNotReady", "HelmChartCreated"]
        annotate(store, VPA, **{ANNOTATION_REQUESTED_AT: "fw-9", ANNOTATION_FORCE_AT: "fw-9"})
        await settle(run)
        story = events_on(store, VPA)
        assert reasons(story) == ["DependencyNotReady", "HelmChartCreated", "UpgradeSucceeded"]
        assert story[-1]["message"] == (
            "Helm upgrade succeeded for release vpa/vpa-bp-vpa.v2 with chart "
            "vertical-pod-autoscaler@4.7.1"
        )
        assert_recorded_like_flux(story[-1], store.get(HELMRELEASES, *VPA))


async def test_deletion_records_the_uninstall() -> None:
    """helm-controller's uninstall.go and helmchart_template.go: UninstallSucceeded names the
    last revision, then HelmChartDeleted; both outlive the HelmRelease, as Events do."""
    async with incident() as (store, run):
        key = ("observability", "bp-grafana")
        store.delete(HELMRELEASES, *key)
        await settle(run)
        story = events_on(store, key)
        assert reasons(story)[-2:] == ["UninstallSucceeded", "HelmChartDeleted"]
        assert story[-2]["message"] == (
            "Helm uninstall succeeded for release observability/bp-grafana.v1 with chart "
            "grafana@8.8.2"
        )
        assert story[-1]["message"] == "deleted HelmChart 'flux-system/observability-bp-grafana'"
        assert all(validate_object("events", e) == [] for e in story)


# ---- Flux as `flux install` leaves it ----------------------------------------------------------


def _deployments(store: Store) -> dict[str, dict[str, Any]]:
    items, _ = store.list("deployments.apps", "flux-system")
    return {d["metadata"]["name"]: d for d in items}


async def test_scenarios_install_flux_as_flux_install_does() -> None:
    """FLUX-FACTS §5, §7: one Deployment per controller in flux-system, each one a real server
    accepts (its selector matches its pod labels, its container has a name and an image) and
    shaped as `flux install` ships it: image ghcr.io/fluxcd/<name>:<tag>, the args, the
    http-prom and healthz ports, probes, Flux's labels, its ServiceAccount; no
    leader-election flags (the 35s/30s/5s defaults), and a Lease that says 35s."""
    async with incident() as (store, _):
        deployments = _deployments(store)
        assert sorted(deployments) == sorted(FLUX_CONTROLLERS)
        for name, deploy in deployments.items():
            template = deploy["spec"]["template"]
            selector = deploy["spec"]["selector"]["matchLabels"]
            assert selector.items() <= template["metadata"]["labels"].items()
            [container] = template["spec"]["containers"]
            assert container["name"] == "manager"
            assert container["image"].startswith(f"ghcr.io/fluxcd/{name}:v")
            assert "--enable-leader-election" in container["args"]
            assert "--watch-all-namespaces=true" in container["args"]
            assert "--log-encoding=json" in container["args"]
            assert not [a for a in container["args"] if a.startswith("--leader-election-")]
            assert {"http-prom", "healthz"} <= {p["name"] for p in container["ports"]}
            assert container["livenessProbe"]["httpGet"]["port"] == "healthz"
            assert container["resources"]["limits"]["memory"] == "1Gi"
            assert template["spec"]["serviceAccountName"] == name
            store.get("serviceaccounts", "flux-system", name)
            labels = deploy["metadata"]["labels"]
            assert labels["app.kubernetes.io/part-of"] == "flux"
            assert labels["app.kubernetes.io/component"] == name
            assert labels["control-plane"] == "controller"
            assert deploy["status"]["availableReplicas"] == 1
        helm_args = deployments["helm-controller"]["spec"]["template"]["spec"]["containers"][0]
        assert helm_args["args"][0] == (
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./"
        )
        lease = store.get(LEASES, "flux-system", HELM_LEASE)
        assert lease["spec"]["leaseDurationSeconds"] == 35
        ns = store.get("namespaces", None, "flux-system")
        assert ns["metadata"]["labels"]["app.kubernetes.io/part-of"] == "flux"


async def test_the_healthy_scenario_runs_the_seeds_mitigated_flux() -> None:
    """FLUX-FACTS §1: the seed's PRIMARY fix, leader election 60s/40s/5s and memory 512Mi
    (helm-controller) / 384Mi (kustomize-, source-controller); the Leases agree."""
    store, run = await _run("healthy")
    try:
        deployments = _deployments(store)
        for name, memory in (
            ("helm-controller", "512Mi"),
            ("kustomize-controller", "384Mi"),
            ("source-controller", "384Mi"),
            ("notification-controller", "1Gi"),
        ):
            [container] = deployments[name]["spec"]["template"]["spec"]["containers"]
            assert container["args"][-3:] == [
                "--leader-election-lease-duration=60s",
                "--leader-election-renew-deadline=40s",
                "--leader-election-retry-period=5s",
            ]
            assert container["resources"]["limits"]["memory"] == memory
        for controller in FLUX_CONTROLLERS:
            lease = store.get(LEASES, "flux-system", f"{controller}-leader-election")
            assert lease["spec"]["leaseDurationSeconds"] == 60
    finally:
        await run.stop()


class StrictStore(Store):
    """A store that, like a real API server, refuses an object in a namespace that does not
    exist (404 'namespaces "x" not found'); the embedded store will do so itself."""

    def create(self, res: Any, obj: dict[str, Any], namespace: str | None = None, **kw: Any) -> Any:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        if ns:
            self.get("namespaces", None, ns)  # raises the 404
        return super().create(res, obj, namespace, **kw)


@pytest.mark.parametrize(
    ("name", "params"),
    [("incident-925", {}), ("healthy", {}), ("load", {"n": 40, "secrets": True, "stuck": 2})],
)
async def test_scenarios_create_their_namespaces_before_anything_in_them(
    name: str, params: dict[str, Any]
) -> None:
    store = StrictStore()
    run = await scenarios.start(name, store, **params)
    try:
        async with asyncio.timeout(3600):
            await run.wait()
        assert store.list(EVENTS)[0] or name == "load"
    finally:
        await run.stop()
