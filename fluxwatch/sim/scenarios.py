"""Incident replays and load shapes for the embedded cluster, by name.

A scenario populates a :class:`~fluxwatch.sim.store.Store` and drives the
simulated Flux controllers; :func:`start` returns a :class:`ScenarioRun` at
once, its script runs on, and ``await run.wait()`` returns when the scenario
reached the state it is named for:

- ``incident-925``: the seed's incident. 35 HelmReleases (the ``bp-*``
  catalog, a bootstrap layer in ``flux-system`` with ``targetNamespace`` plus
  per-category namespaces) fan out; helm-controller loses its Lease while
  ``bp-vpa`` is being installed; the new leader leaves exactly that one
  HelmRelease stuck: Secret ``deployed``, ``Ready=Unknown``.
- ``healthy``: the same catalog, everything installed and Ready, on a Flux
  with the seed's mitigation (leader election 60s/40s/5s, memory 512Mi/384Mi).
- ``mass-outage``: the Lease is lost while 15 installs run: 15 stuck at once.
- ``blip-failures``: the catalog installed, then an upgrade wave meets an API
  blip: the upgrades running when helm-controller loses its Lease end stuck;
  others time out until their remediation retries are spent (``Stalled``,
  ``RetriesExceeded``) or fail before Helm reached its storage
  (``Ready=False`` ``UpgradeFailed``, waiting out the controller's backoff).
  Then the cause is gone: a reset (``flux reconcile hr --reset``) recovers the
  failed ones.
- ``load``: ``n`` HelmReleases written directly into the store, already
  installed and Ready with realistic status and history (optionally their
  Secrets, optionally some stuck); 50,000 build in seconds. No helm-controller
  reconciles them (it would install them all again); its Lease is held.

Every scenario creates the Namespace objects it uses before anything in them
(a real server answers 404 for an object in a missing namespace), installs
Flux's four controllers in ``flux-system`` as ``flux install`` does
(:mod:`fluxwatch.sim.fluxinstall`: Deployments, ServiceAccounts; the default
install unless told otherwise, so ``fluxwatch doctor`` has something true to
audit), and holds their Leases with the timings those Deployments' flags say.
``time_scale`` multiplies every cluster duration (install times, lease
timings, ages of conditions), so ``time_scale=0.01`` replays minutes in
seconds; the times written stay real RFC 3339 times consistent with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fluxwatch.kube.helmrelease import FINALIZER, hr_view
from fluxwatch.sim.fluxinstall import DEFAULT, SEED_MITIGATED, FluxInstall, install_flux
from fluxwatch.sim.helmcontroller import (
    HELMRELEASES,
    SECRETS,
    Desired,
    HelmController,
    LeaseHolder,
    SimClock,
    helm_release_secret,
    ready_status,
    stuck_status,
)
from fluxwatch.sim.store import ApiError, Store

FLUX_NAMESPACE = "flux-system"
FLUX_CONTROLLERS = (
    "helm-controller",
    "kustomize-controller",
    "source-controller",
    "notification-controller",
)
# An install that never finishes on its own (a webhook that never gets ready): only a lost
# Lease ends it.
FOREVER = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Component:
    """One HelmRelease of the catalog."""

    name: str
    namespace: str
    chart: str
    version: str
    repository: str
    target: str | None = None
    depends_on: tuple[str, ...] = ()  # "name" (same namespace) or "namespace/name"


def _bootstrap(
    name: str, target: str, chart: str, version: str, repo: str, *deps: str
) -> Component:
    return Component(name, FLUX_NAMESPACE, chart, version, repo, target, deps)


def _app(namespace: str, name: str, chart: str, version: str, repo: str) -> Component:
    return Component(name, namespace, chart, version, repo, None, ("flux-system/bp-cilium",))


# The 35 HelmReleases of the seed's bootstrap fan-out (bp-vpa, bp-cilium, bp-cert-manager, ...).
CATALOG: tuple[Component, ...] = (
    _bootstrap("bp-cilium", "kube-system", "cilium", "1.16.5", "cilium"),
    _bootstrap("bp-cert-manager", "cert-manager", "cert-manager", "v1.16.2", "jetstack",
               "bp-cilium"),
    _bootstrap("bp-vpa", "vpa", "vertical-pod-autoscaler", "4.7.1", "fairwinds-stable",
               "bp-cilium"),
    _bootstrap("bp-metrics-server", "kube-system", "metrics-server", "3.12.2",
               "metrics-server", "bp-cilium"),
    _bootstrap("bp-kyverno", "kyverno", "kyverno", "3.3.4", "kyverno", "bp-cilium"),
    _bootstrap("bp-external-secrets", "external-secrets", "external-secrets", "0.12.1",
               "external-secrets", "bp-cert-manager"),
    _bootstrap("bp-openbao", "openbao", "openbao", "0.8.1", "openbao", "bp-cert-manager"),
    _bootstrap("bp-trust-manager", "cert-manager", "trust-manager", "v0.14.0", "jetstack",
               "bp-cert-manager"),
    _bootstrap("bp-reloader", "kube-system", "reloader", "1.2.0", "stakater", "bp-cilium"),
    # <targetNamespace>-<name> is 61 characters: helm-controller shortens it to 53.
    _bootstrap("bp-prometheus-node-exporter", "sovereign-observability-exporters",
               "prometheus-node-exporter", "4.42.0", "prometheus-community", "bp-cilium"),
    _app("network", "bp-powerdns", "powerdns", "0.9.2", "openova"),
    _app("network", "bp-stunner", "stunner", "1.0.0", "l7mp"),
    _app("network", "bp-external-dns", "external-dns", "1.15.0", "external-dns"),
    _app("security", "bp-keycloak", "keycloak", "24.3.1", "bitnami"),
    _app("security", "bp-trivy-operator", "trivy-operator", "0.24.1", "aqua"),
    _app("security", "bp-falco", "falco", "4.16.1", "falcosecurity"),
    _app("database", "bp-cnpg", "cloudnative-pg", "0.23.0", "cnpg"),
    _app("database", "bp-ferretdb", "ferretdb", "1.24.0", "openova"),
    _app("database", "bp-valkey", "valkey", "2.2.3", "bitnami"),
    _app("middleware", "bp-strimzi", "strimzi-kafka-operator", "0.45.0", "strimzi"),
    _app("middleware", "bp-nats", "nats", "1.2.8", "nats"),
    _app("storage", "bp-seaweedfs", "seaweedfs", "4.0.0", "seaweedfs"),
    _app("storage", "bp-velero", "velero", "8.1.0", "vmware-tanzu"),
    _app("storage", "bp-snapshot-controller", "snapshot-controller", "3.0.6", "piraeus"),
    _app("observability", "bp-grafana", "grafana", "8.8.2", "grafana"),
    _app("observability", "bp-loki", "loki", "6.24.0", "grafana"),
    _app("observability", "bp-mimir", "mimir-distributed", "5.5.1", "grafana"),
    _app("observability", "bp-tempo", "tempo-distributed", "1.28.0", "grafana"),
    _app("observability", "bp-alloy", "alloy", "0.10.1", "grafana"),
    _app("observability", "bp-kube-state-metrics", "kube-state-metrics", "5.27.0",
         "prometheus-community"),
    _app("observability", "bp-opentelemetry-operator", "opentelemetry-operator", "0.75.1",
         "open-telemetry"),
    _app("autoscaling", "bp-keda", "keda", "2.16.1", "kedacore"),
    _app("workplace", "bp-stalwart", "stalwart-mail", "0.10.7", "openova"),
    _app("workplace", "bp-gitea", "gitea", "10.6.0", "gitea"),
    _app("registry", "bp-harbor", "harbor", "1.16.1", "harbor"),
)  # fmt: skip


def helmrelease(component: Component, *, interval: str = "10m") -> dict[str, Any]:
    """A HelmRelease as a Flux Kustomization applies it (helm.toolkit.fluxcd.io/v2)."""
    kustomization = "bootstrap-kit" if component.namespace == FLUX_NAMESPACE else "platform"
    spec: dict[str, Any] = {
        "chart": {
            "spec": {
                "chart": component.chart,
                "reconcileStrategy": "ChartVersion",
                "sourceRef": {
                    "kind": "HelmRepository",
                    "name": component.repository,
                    "namespace": FLUX_NAMESPACE,
                },
                "version": component.version,
            }
        },
        "install": {"createNamespace": True, "remediation": {"retries": 3}},
        "interval": interval,
        "upgrade": {"remediation": {"retries": 3}},
        "values": {"replicaCount": 1},
    }
    if component.target:
        spec["targetNamespace"] = component.target
    if component.depends_on:
        spec["dependsOn"] = [
            {"namespace": d.split("/")[0], "name": d.split("/")[1]} if "/" in d else {"name": d}
            for d in component.depends_on
        ]
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {
            "name": component.name,
            "namespace": component.namespace,
            "labels": {
                "kustomize.toolkit.fluxcd.io/name": kustomization,
                "kustomize.toolkit.fluxcd.io/namespace": FLUX_NAMESPACE,
            },
        },
        "spec": spec,
    }


def namespaces_of(components: Iterable[Component]) -> list[str]:
    names = {FLUX_NAMESPACE}
    for c in components:
        names.add(c.namespace)
        if c.target:
            names.add(c.target)
    return sorted(names)


def ensure_namespaces(store: Store, names: Iterable[str]) -> None:
    """core/v1 Namespaces; one that exists already (the store makes some itself) is fine,
    any other refusal is the scenario's error."""
    for name in names:
        try:
            store.create(
                "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )
        except ApiError as exc:
            if exc.code != 409:
                raise


def _leaves(components: Iterable[Component]) -> list[Component]:
    """Components nothing depends on: one stuck there blocks no other HelmRelease."""
    comps = list(components)
    needed = {d if "/" in d else f"{c.namespace}/{d}" for c in comps for d in c.depends_on}
    return [c for c in comps if f"{c.namespace}/{c.name}" not in needed]


@dataclass
class ScenarioRun:
    """A started scenario: its controllers, the HelmReleases it leaves stuck, its script."""

    name: str
    store: Store
    time_scale: float
    helm: HelmController | None = None
    holders: list[LeaseHolder] = field(default_factory=list)
    expected_stuck: tuple[tuple[str, str], ...] = ()
    script: asyncio.Task[None] | None = None
    # Left failed (Ready=False, resettable) rather than stuck: blip-failures.
    expected_failed: tuple[tuple[str, str], ...] = ()

    async def wait(self) -> None:
        """Until the scenario reached its end state (re-raises a failure of its script)."""
        if self.script is not None:
            await asyncio.shield(self.script)

    async def stop(self) -> None:
        if self.script is not None and not self.script.done():
            self.script.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.script
        if self.helm is not None:
            await self.helm.stop()
        for holder in self.holders:
            await holder.stop()


async def _start_flux(
    store: Store,
    *,
    time_scale: float,
    seed: int,
    clock: Callable[[], float],
    helm: HelmController | None,
    flux: FluxInstall,
) -> list[LeaseHolder]:
    """Install Flux's controllers and start the Lease holders of those other than a running
    helm-controller."""
    install_flux(store, FLUX_CONTROLLERS, flux)
    holders: list[LeaseHolder] = []
    rng = random.Random(seed ^ 0x5EED)
    for controller in FLUX_CONTROLLERS:
        if controller == "helm-controller" and helm is not None:
            continue
        holder = LeaseHolder(
            store,
            controller,
            namespace=FLUX_NAMESPACE,
            timings=flux.timings(),
            time_scale=time_scale,
            clock=clock,
            rng=random.Random(rng.getrandbits(64)),
        )
        await holder.start()
        holders.append(holder)
    if helm is not None:
        await helm.start()
    return holders


def _key(ref: str) -> tuple[str, str]:
    """``namespace/name``, or a bare name in flux-system."""
    namespace, _, name = ref.rpartition("/")
    return (namespace or FLUX_NAMESPACE, name)


def _is_ready(obj: Mapping[str, Any]) -> bool:
    v = hr_view(obj)
    return v.ready is not None and v.ready.status == "True"


async def _until(store: Store, predicate: Callable[[], bool]) -> None:
    """Wait until ``predicate()`` holds, checking it after every HelmRelease write.

    The controller registers an install as in flight in the same step as its status
    write, so HelmRelease events are enough to see every change the predicates read.
    """
    watcher = store.watch(HELMRELEASES, resource_version=str(store.resource_version))
    try:
        while not predicate():
            await watcher.wait()
            while watcher.pop() is not None:
                pass
    finally:
        watcher.close()


async def _catalog_run(
    name: str,
    store: Store,
    *,
    time_scale: float,
    seed: int,
    long_installs: Iterable[str],
    lose_lease: bool,
    concurrent: int,
    bug: bool,
    suspend_clears_stuck: bool,
    flux: FluxInstall,
    hanging: set[tuple[str, str]] | None = None,
) -> ScenarioRun:
    """The catalog fan-out; with ``lose_lease`` the Lease is lost while ``long_installs`` run.
    Any Helm action of a release in ``hanging`` (filled by a script later) never ends."""
    rng = random.Random(seed)
    long_keys = {_key(ref) for ref in long_installs}
    durations = {(c.namespace, c.name): rng.uniform(8.0, 40.0) for c in CATALOG}
    hangs = hanging if hanging is not None else set()

    def install_duration(obj: Mapping[str, Any]) -> float:
        md = obj["metadata"]
        key = (md["namespace"], md["name"])
        # Only the first install hangs; the upgrade that recovers it takes the usual time.
        if key in long_keys and not (obj.get("status") or {}).get("history"):
            return FOREVER
        if key in hangs:
            return FOREVER
        return durations.get(key, 20.0)

    clock = SimClock()
    timings = flux.timings()
    helm = HelmController(
        store,
        namespace=FLUX_NAMESPACE,
        lease_duration=timings.lease_duration,
        renew_deadline=timings.renew_deadline,
        retry_period=timings.retry_period,
        time_scale=time_scale,
        install_duration=install_duration,
        concurrent=concurrent,
        suspend_clears_stuck=suspend_clears_stuck,
        bug=bug,
        seed=seed,
        clock=clock,
    )
    ensure_namespaces(store, namespaces_of(CATALOG))
    holders = await _start_flux(
        store, time_scale=time_scale, seed=seed, clock=clock, helm=helm, flux=flux
    )
    run = ScenarioRun(name, store, time_scale, helm, holders)
    if lose_lease and bug:
        run.expected_stuck = tuple(sorted(long_keys))

    async def script() -> None:
        await helm.wait_leader()
        for component in CATALOG:
            store.create(HELMRELEASES, helmrelease(component))

        def others_ready() -> bool:
            items, _ = store.list(HELMRELEASES)
            return all(
                _is_ready(o)
                for o in items
                if (o["metadata"]["namespace"], o["metadata"]["name"]) not in long_keys
            )

        if lose_lease:
            await _until(store, lambda: others_ready() and helm.in_flight >= long_keys)
            old = helm.identity
            helm.lose_lease()
            await helm.wait_leader(other_than=old)
        else:
            await _until(store, others_ready)
        await helm.wait_idle()

    run.script = asyncio.create_task(script(), name=f"scenario:{name}")
    return run


async def incident_925(
    store: Store,
    *,
    time_scale: float = 1.0,
    seed: int = 925,
    bug: bool = True,
    suspend_clears_stuck: bool = False,
    concurrent: int = 4,
    flux: FluxInstall = DEFAULT,
) -> ScenarioRun:
    """FLUX-FACTS §1: the Lease is lost mid-install of bp-vpa; bp-vpa alone ends stuck, on a
    default Flux install (leader election 35s/30s/5s, where the incident happened)."""
    return await _catalog_run(
        "incident-925",
        store,
        time_scale=time_scale,
        seed=seed,
        long_installs=("bp-vpa",),
        lose_lease=True,
        concurrent=concurrent,
        bug=bug,
        suspend_clears_stuck=suspend_clears_stuck,
        flux=flux,
    )


async def healthy(
    store: Store,
    *,
    time_scale: float = 1.0,
    seed: int = 1,
    concurrent: int = 4,
    bug: bool = True,
    suspend_clears_stuck: bool = False,
    flux: FluxInstall = SEED_MITIGATED,
) -> ScenarioRun:
    """The catalog installs cleanly: every HelmRelease Ready, on a Flux with the seed's
    mitigation applied."""
    return await _catalog_run(
        "healthy",
        store,
        time_scale=time_scale,
        seed=seed,
        long_installs=(),
        lose_lease=False,
        concurrent=concurrent,
        bug=bug,
        suspend_clears_stuck=suspend_clears_stuck,
        flux=flux,
    )


async def mass_outage(
    store: Store,
    *,
    time_scale: float = 1.0,
    seed: int = 15,
    stuck: int = 15,
    bug: bool = True,
    suspend_clears_stuck: bool = False,
    flux: FluxInstall = DEFAULT,
) -> ScenarioRun:
    """The Lease is lost while ``stuck`` installs run: that many HelmReleases stuck at once,
    more than the guardrail's batch limit (10)."""
    rng = random.Random(seed)
    leaves = sorted(f"{c.namespace}/{c.name}" for c in _leaves(CATALOG))
    chosen = rng.sample(leaves, min(stuck, len(leaves)))
    return await _catalog_run(
        "mass-outage",
        store,
        time_scale=time_scale,
        seed=seed,
        long_installs=chosen,
        lose_lease=True,
        concurrent=len(chosen) + 5,
        bug=bug,
        suspend_clears_stuck=suspend_clears_stuck,
        flux=flux,
    )


# What Helm says when an upgrade's wait outlives its timeout (the API was away), and what
# the client says when it cannot reach the API at all.
UPGRADE_TIMEOUT = "context deadline exceeded"
UNREACHABLE = (
    'Kubernetes cluster unreachable: Get "https://10.96.0.1:443/version": dial tcp '
    "10.96.0.1:443: connect: connection refused"
)


def _next_patch(version: str) -> str:
    """The chart's next patch version: ``1.16.5`` -> ``1.16.6``, ``v1.16.2`` -> ``v1.16.3``."""
    head, _, patch = version.rpartition(".")
    return f"{head}.{int(patch) + 1}"


async def blip_failures(
    store: Store,
    *,
    time_scale: float = 1.0,
    seed: int = 12,
    stuck: int = 2,
    stalled: int = 3,
    failing: int = 2,
    flux: FluxInstall = DEFAULT,
) -> ScenarioRun:
    """An upgrade wave meets an API blip (issue 12, "the blip's other casualties").

    The catalog installs; then ``stuck + stalled + failing`` leaf releases get a new chart
    version. While the blip lasts, the ``stalled`` upgrades time out (Helm stored a failed
    revision) until their 3 remediation retries are spent: rolled back each time, then
    Stalled RetriesExceeded (the first of them with ``remediateLastFailure: false``, so its
    Ready stays UpgradeFailed); the ``failing`` ones cannot reach the API at all (nothing
    stored, nothing counted, retried after the controller's backoff). Then helm-controller
    loses its Lease while the ``stuck`` upgrades run: they end in the stuck shape. The new
    leader reconciles everything once more, and the blip ends: every cause is gone, so a
    reset (or, for the stuck ones, a forced upgrade) recovers them.
    """
    hanging: set[tuple[str, str]] = set()
    run = await _catalog_run(
        "blip-failures",
        store,
        time_scale=time_scale,
        seed=seed,
        long_installs=(),
        lose_lease=False,
        concurrent=stuck + stalled + failing + 5,
        bug=True,
        suspend_clears_stuck=False,
        flux=flux,
        hanging=hanging,
    )
    helm = run.helm
    installed = run.script
    assert helm is not None and installed is not None
    rng = random.Random(seed)
    leaves = sorted(f"{c.namespace}/{c.name}" for c in _leaves(CATALOG))
    chosen = [_key(ref) for ref in rng.sample(leaves, min(stuck + stalled + failing, len(leaves)))]
    hang, stall, fail = (
        chosen[:stuck],
        chosen[stuck : stuck + stalled],
        chosen[stuck + stalled :],
    )
    run.expected_stuck = tuple(sorted(hang))
    run.expected_failed = tuple(sorted(stall + fail))

    def failed_as_planned() -> bool:
        views = {key: hr_view(store.get(HELMRELEASES, *key)) for key in stall + fail}
        return all(
            v.stalled is not None and v.stalled.reason == "RetriesExceeded"
            for key, v in views.items()
            if key in stall
        ) and all(
            v.ready is not None and (v.ready.status, v.ready.reason) == ("False", "UpgradeFailed")
            for key, v in views.items()
            if key in fail
        )

    async def script() -> None:
        await installed
        hanging.update(hang)
        for key in stall:
            helm.fail(*key, UPGRADE_TIMEOUT)
        for key in fail:
            helm.fail(*key, UNREACHABLE, stored=False)
        for key in chosen:
            obj = store.get(HELMRELEASES, *key)
            spec: dict[str, Any] = {
                "chart": {"spec": {"version": _next_patch(obj["spec"]["chart"]["spec"]["version"])}}
            }
            if stall and key == stall[0]:
                spec["upgrade"] = {"remediation": {"retries": 3, "remediateLastFailure": False}}
            store.patch(HELMRELEASES, *key, {"spec": spec})
        await _until(store, lambda: failed_as_planned() and helm.in_flight >= set(hang))
        old = helm.identity
        helm.lose_lease()
        await helm.wait_leader(other_than=old)
        await helm.wait_idle()
        for key in chosen:
            helm.heal(*key)
        hanging.clear()

    run.script = asyncio.create_task(script(), name="scenario:blip-failures")
    return run


@dataclass(slots=True)
class _LoadItem:
    obj: dict[str, Any]
    desired: Desired
    version: int
    last: float
    stuck: bool


def _load_items(
    n: int, *, namespaces: int, stuck: int, now: float, time_scale: float, rng: random.Random
) -> list[_LoadItem]:
    """The load scenario's HelmReleases without status, in the store's key order (inserting
    in order keeps the store's sorted key list an append)."""
    stuck_at = set(rng.sample(range(n), min(stuck, n)))
    width = len(str(max(n - 1, 1)))
    # One spec and one Desired template per chart: the store copies what it is given, so
    # the objects may share them.
    templates: dict[str, tuple[dict[str, Any], Desired]] = {}
    for c in CATALOG:
        obj = helmrelease(Component(c.name, "tenant", c.chart, c.version, c.repository))
        templates[c.name] = (obj, Desired.of(obj))
    items: list[_LoadItem] = []
    for i in range(n):
        component = CATALOG[i % len(CATALOG)]
        namespace = f"tenant-{i % namespaces:03d}"
        name = f"{component.name.removeprefix('bp-')}-{i:0{width}d}"
        template, like = templates[component.name]
        obj = {
            "apiVersion": template["apiVersion"],
            "kind": template["kind"],
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": template["metadata"]["labels"],
                "finalizers": [FINALIZER],
            },
            "spec": template["spec"],
        }
        desired = dataclasses.replace(
            like,
            namespace=namespace,
            name=name,
            release=name,
            target_namespace=namespace,
            storage_namespace=namespace,
        )
        is_stuck = i in stuck_at
        # A stuck release is a first install cut short (FLUX-FACTS §1).
        version = 1 if is_stuck else 1 + rng.randrange(6)
        age = rng.uniform(3600.0, 30 * 86400.0) * time_scale
        items.append(_LoadItem(obj, desired, version, now - age, is_stuck))
    items.sort(key=lambda it: (it.desired.namespace, it.desired.name))
    return items


async def load(
    store: Store,
    *,
    time_scale: float = 1.0,
    seed: int = 0,
    n: int = 1000,
    namespaces: int | None = None,
    secrets: bool = False,
    stuck: int = 0,
    flux: FluxInstall = DEFAULT,
) -> ScenarioRun:
    """``n`` installed, Ready HelmReleases (``stuck`` of them in the stuck shape), written
    straight into the store; with ``secrets`` each gets its last two storage Secrets."""
    rng = random.Random(seed)
    clock = SimClock()
    now = clock()
    ns_count = namespaces or max(1, n // 500)
    ensure_namespaces(store, [FLUX_NAMESPACE, *(f"tenant-{j:03d}" for j in range(ns_count))])
    expected: list[tuple[str, str]] = []
    # The objects built here are acyclic JSON: cyclic GC passes over a growing heap of them
    # would only cost time (a third of it at 50,000 HelmReleases).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _load_into(store, n, ns_count, stuck, now, time_scale, rng, secrets, expected)
    finally:
        if gc_was_enabled:
            gc.enable()
    holders = await _start_flux(
        store, time_scale=time_scale, seed=seed, clock=clock, helm=None, flux=flux
    )
    return ScenarioRun("load", store, time_scale, None, holders, tuple(sorted(expected)))


def _load_into(
    store: Store,
    n: int,
    ns_count: int,
    stuck: int,
    now: float,
    time_scale: float,
    rng: random.Random,
    secrets: bool,
    expected: list[tuple[str, str]],
) -> None:
    for item in _load_items(
        n, namespaces=ns_count, stuck=stuck, now=now, time_scale=time_scale, rng=rng
    ):
        desired, version, last = item.desired, item.version, item.last
        action = "install" if version == 1 else "upgrade"
        first = last - (version - 1) * 86400.0 * time_scale
        if item.stuck:
            # Stuck for 6 to 60 minutes: the upstream shape (FLUX-FACTS §1, §2).
            last = first = now - rng.uniform(360.0, 3600.0) * time_scale
            item.obj["status"] = stuck_status(desired, first=first, since=last)
            expected.append((desired.namespace, desired.name))
        else:
            item.obj["status"] = ready_status(
                desired,
                generation=1,
                version=version,
                action=action,
                first=first,
                last=last,
                transition=last + 30.0 * time_scale,
            )
        store.create(HELMRELEASES, item.obj)
        if secrets:
            for v in range(max(1, version - 1), version + 1):
                status = "deployed" if v == version else "superseded"
                secret = helm_release_secret(desired, v, status, action, last, first)
                store.create(SECRETS, secret)


ScenarioFn = Callable[..., Awaitable["ScenarioRun"]]

SCENARIOS: dict[str, ScenarioFn] = {
    "incident-925": incident_925,
    "healthy": healthy,
    "mass-outage": mass_outage,
    "blip-failures": blip_failures,
    "load": load,
}


async def start(
    name: str, store: Store, *, time_scale: float = 1.0, seed: int | None = None, **params: Any
) -> ScenarioRun:
    """Start the scenario ``name`` on ``store``; unknown names are a KeyError naming the known."""
    try:
        fn = SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    if seed is not None:
        params["seed"] = seed
    return await fn(store, time_scale=time_scale, **params)
