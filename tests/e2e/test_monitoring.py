"""The monitoring component against what fluxwatch really exports.

A run on the embedded cluster produces the scrapes: three replicas (a leader,
a follower, one whose API answers too slowly to ever sync) watch two healthy
HelmReleases and the Flux controllers' Leases; then an incident: three stuck
releases over ``maxBatch: 2`` (the batch guard trips), helm-controller's Lease
changes hands four times (flapping), kustomize-controller's Lease expires
(leaderless), alerts fail against a closed port and are dropped by a slow
receiver's full queue. Finally the leader stops and the follower takes over.
Every scrape is a real HTTP GET of a daemon's ``/metrics``.

Those scrapes, laid out on a timeline (one per minute, a pod with no scrape is
down: ``up 0``), with the target labels a PodMonitor adds, are the input
series of ``promtool test rules`` for the PrometheusRule: each alert fires
when the run says it should, and only then. The Grafana dashboard's queries
must parse and read only series the scrapes contain. promtool is Debian's
``prometheus`` package; CI installs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from daemon_harness import (
    LEASES,
    Cluster,
    Replica,
    Replicas,
    add_ready,
    add_stuck,
    eventually,
    make_settings,
    running_cluster,
    running_replicas,
)
from prometheus_client.parser import text_string_to_metric_families

from fluxwatch.app import Daemon, build_router
from fluxwatch.kube.client import KubeClient
from fluxwatch.notify.event import Event
from fluxwatch.settings import Settings
from fluxwatch.sim.kubectl import find_kubectl
from fluxwatch.sim.receiver import Receiver
from fluxwatch.telemetry.metrics import Metrics

pytestmark = pytest.mark.e2e

COMPONENT = Path(__file__).resolve().parents[2] / "config" / "components" / "monitoring"
HELM_LEASE = "helm-controller-leader-election"
KUSTOMIZE_LEASE = "kustomize-controller-leader-election"
NAMESPACE = "fluxwatch-system"  # the pods' namespace, a target label
JOB = "fluxwatch"  # the PodMonitor's jobLabel: the pods' app.kubernetes.io/name
PODS = ("fluxwatch-0", "fluxwatch-1", "fluxwatch-2")

# One sample: (metric name, sorted label pairs) -> value.
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass(frozen=True)
class Scrapes:
    healthy_leader: str
    healthy_follower: str
    not_ready: str
    incident_leader: str
    incident_follower: str
    took_over: str  # the follower, leading once the leader stopped

    def all(self) -> list[str]:
        return [
            self.healthy_leader,
            self.healthy_follower,
            self.not_ready,
            self.incident_leader,
            self.incident_follower,
            self.took_over,
        ]


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return found


def _lease(name: str, holder: str, *, renewed: float, duration: int) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(renewed, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "acquireTime": stamp,
            "renewTime": stamp,
            "leaseTransitions": 0,
        },
    }


def _settings(kubeconfig: Path, identity: str, slow_url: str) -> Settings:
    notify = {
        # One queued event per provider: the slow receiver's queue overflows.
        "queue_size": 1,
        "concurrency": 1,
        "max_retries": 1,
        "retry_wait_min": 0.01,
        "retry_wait_max": 0.02,
        "providers": [
            {"name": "audit", "type": "generic", "address": "http://127.0.0.1:9/"},
            {"name": "slow", "type": "generic", "address": slow_url},
        ],
        "alerts": [
            {
                "name": f"everything-to-{provider}",
                "provider_ref": {"name": provider},
                "event_severity": "info",
                "event_sources": [{"kind": "*", "name": "*", "namespace": "*"}],
            }
            for provider in ("audit", "slow")
        ],
    }
    extra = {"guardrail": {"max_batch": 2}, "notify": notify}
    return make_settings(kubeconfig, identity, extra)


async def _start(replicas: Replicas, settings: Settings) -> Replica:
    """A replica as ``fluxwatch run`` builds it, alert router included."""
    client = await KubeClient.from_config(settings.kubeconfig)
    metrics = Metrics()
    events: list[Event] = []
    daemon = Daemon(
        settings,
        client,
        metrics=metrics,
        router=await build_router(settings, client, metrics),
        on_event=events.append,
    )
    task = asyncio.create_task(daemon.run(install_signals=False), name=settings.leader.identity)
    replica = Replica(daemon, client, task, events)
    replicas.started.append(replica)
    return replica


async def _scrape(http: aiohttp.ClientSession, replica: Replica) -> str:
    server = replica.daemon.server
    assert server is not None
    async with http.get(f"http://127.0.0.1:{server.ports['metrics']}/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


async def _scrape_leading(http: aiohttp.ClientSession, replica: Replica) -> str:
    """A scrape of ``replica`` taken while it leads: on a loaded machine a renewal can miss
    its deadline and the replica steps down for a moment, and the rules must be tested on
    what a leader exports, not on that moment."""
    for _ in range(50):
        await eventually(lambda: replica.leading, 10, f"{replica.identity} leading")
        text = await _scrape(http, replica)
        if "\nfluxwatch_leader 1.0\n" in text:
            return text
    raise AssertionError(f"{replica.identity} never led at a scrape")


def _value(replica: Replica, name: str, **labels: str) -> float:
    found = replica.daemon.metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def _synced(replica: Replica) -> bool:
    informers = replica.daemon.informers
    return bool(informers) and all(i.synced.is_set() for i in informers)


def _serving(replica: Replica) -> bool:
    server = replica.daemon.server
    return server is not None and "metrics" in server.ports


def _transitions(replica: Replica) -> float:
    return _value(replica, "fluxwatch_lease_transitions_total", lease=HELM_LEASE)


def _restarted(replica: Replica) -> bool:
    return (
        _value(
            replica, "fluxwatch_watch_restarts_total", resource="helmreleases", reason="connection"
        )
        >= 1
    )


def _leaderless(replica: Replica) -> bool:
    return _value(replica, "fluxwatch_lease_leaderless", lease=KUSTOMIZE_LEASE) == 1


async def _run(workdir: Path) -> Scrapes:
    async with (
        running_cluster(workdir) as cluster,
        running_replicas() as replicas,
        aiohttp.ClientSession() as http,
    ):
        slow = Receiver(latency=2.0)
        await slow.start()
        try:
            return await _incident(cluster, replicas, http, slow.url)
        finally:
            await slow.stop()


async def _incident(
    cluster: Cluster, replicas: Replicas, http: aiohttp.ClientSession, slow_url: str
) -> Scrapes:
    store = cluster.store
    now = time.time()
    add_ready(store, "podinfo")
    add_ready(store, "redis")
    store.create(LEASES, _lease(HELM_LEASE, "hc-a", renewed=now, duration=3600))
    store.create(LEASES, _lease(KUSTOMIZE_LEASE, "kc-a", renewed=now, duration=3600))

    face = await cluster.face()
    kubeconfig = cluster.kubeconfig(face)
    leader = await _start(replicas, _settings(kubeconfig, PODS[0], slow_url))
    await leader.wait_ready()
    follower = await _start(replicas, _settings(kubeconfig, PODS[1], slow_url))
    await eventually(lambda: _synced(follower), 10, "the follower synced")
    # The third replica's API answers after a minute: it serves /metrics, never syncs.
    slow_face = await cluster.face()
    slow_face.faults.latency = 60.0
    stalled = await _start(replicas, _settings(cluster.kubeconfig(slow_face), PODS[2], slow_url))
    await eventually(lambda: _serving(stalled), 5, "the stalled replica serving /metrics")
    healthy = (await _scrape_leading(http, leader), await _scrape(http, follower))
    not_ready = await _scrape(http, stalled)
    assert "\nfluxwatch_ready 0.0\n" in not_ready
    await stalled.stop()

    # The incident: the API server drops every watch (the informers restart), ...
    assert face.faults.drop_watches() > 0
    await eventually(lambda: _restarted(leader), 10, "the leader's watch restarted")
    # ... three releases are stuck, helm-controller's Lease flaps, kustomize-controller's
    # expires, and alerts fail or overflow.
    for name in ("web-0", "web-1", "web-2"):
        add_stuck(store, name, since=now - 3600)
    # kustomize-controller's last renewal, with the Lease's shortest duration: nobody
    # renews it from here on, so it runs out a duration plus leases.grace (compressed)
    # later on fluxwatch's clock, whatever its renewTime says.
    lease = store.get(LEASES, "flux-system", KUSTOMIZE_LEASE)
    lease["spec"]["renewTime"] = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lease["spec"]["leaseDurationSeconds"] = 1
    store.update(LEASES, lease)
    for n, holder in enumerate(("hc-b", "hc-c", "hc-d", "hc-e"), start=1):
        lease = store.get(LEASES, "flux-system", HELM_LEASE)
        lease["spec"]["holderIdentity"] = holder
        lease["spec"]["leaseTransitions"] = n
        store.update(LEASES, lease)
        await eventually(lambda n=n: _transitions(follower) >= n, 5, f"leader change {n} seen")
    await eventually(
        lambda: _value(leader, "fluxwatch_guardrail_trips_total", guard="batch") == 1,
        10,
        "the batch guard tripped",
    )
    for replica in (leader, follower):
        await eventually(lambda r=replica: _leaderless(r), 10, "kustomize-controller leaderless")
    await eventually(
        lambda: (
            _value(leader, "fluxwatch_notifications_total", provider="audit", result="failed") >= 1
            and _value(leader, "fluxwatch_notifications_total", provider="slow", result="dropped")
            >= 1
        ),
        10,
        "alerts failed and dropped",
    )
    incident = (await _scrape_leading(http, leader), await _scrape(http, follower))

    await leader.stop()
    await eventually(lambda: follower.leading, 10, "the follower took over")
    # The refusal travels on the Lease with the incident (issue 12): the new leader holds
    # the same incident refused without a second trip, a second count or a second alert.
    await eventually(
        lambda: follower.daemon.tracker is not None and follower.daemon.tracker.guardrail.tripped,
        10,
        "the new leader holding the incident refused",
    )
    assert _value(follower, "fluxwatch_guardrail_trips_total", guard="batch") == 0
    took_over = await _scrape_leading(http, follower)
    return Scrapes(*healthy, not_ready, *incident, took_over)


@pytest.fixture(scope="module")
def scrapes(tmp_path_factory: pytest.TempPathFactory) -> Scrapes:
    return asyncio.run(_run(tmp_path_factory.mktemp("monitoring")))


# ---- from scrapes to promtool input ------------------------------------------------------------


def _series(text: str) -> Series:
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _selector(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    body = ", ".join(f"{k}={json.dumps(v)}" for k, v in labels)
    return f"{name}{{{body}}}"


def _number(value: float) -> str:
    return repr(value) if value == value else "NaN"


def input_series(timeline: dict[str, list[str | None]]) -> list[dict[str, str]]:
    """promtool's input series: per pod, one scrape (or None: down) per minute, with the
    labels the PodMonitor's targets carry, and ``up``."""
    out: list[dict[str, str]] = []
    for pod, slots in timeline.items():
        target = (
            ("container", "manager"),
            ("endpoint", "http-prom"),
            ("instance", f"{pod}:8080"),
            ("job", JOB),
            ("namespace", NAMESPACE),
            ("pod", pod),
        )
        parsed = [None if text is None else _series(text) for text in slots]
        keys = sorted({key for series in parsed if series for key in series})
        for name, labels in keys:
            values: list[str] = []
            for n, series in enumerate(parsed):
                if series is not None and (name, labels) in series:
                    values.append(_number(series[(name, labels)]))
                elif n and values[-1] not in ("_", "stale"):
                    # As Prometheus does when a target or a series is gone: a staleness
                    # marker, so the old value stops answering at once.
                    values.append("stale")
                else:
                    values.append("_")
            merged = tuple(sorted(dict(target + labels).items()))
            out.append({"series": _selector(name, merged), "values": " ".join(values)})
        up = " ".join("0" if s is None else "1" for s in parsed)
        out.append({"series": _selector("up", target), "values": up})
    return out


def _rules() -> list[dict[str, Any]]:
    rule = yaml.safe_load((COMPONENT / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def expected(alert: str, **labels: str) -> dict[str, Any]:
    """One firing alert as promtool wants it: labels, and the annotations rendered (they
    use ``{{ $labels.x }}`` only, which this checks)."""
    [rule] = [r for r in _rules() if r.get("alert") == alert]
    all_labels = {**rule.get("labels", {}), **labels}

    def render(text: str) -> str:
        rendered = re.sub(r"{{ \$labels\.(\w+) }}", lambda m: all_labels[m.group(1)], text)
        assert "{{" not in rendered, f"{alert}: only $labels in annotations: {text!r}"
        return rendered

    annotations = {k: render(v) for k, v in rule["annotations"].items()}
    return {"exp_labels": all_labels, "exp_annotations": annotations}


def alert_tests(at: str, firing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At ``at``, exactly ``firing`` (per alert name); every other alert silent."""
    by_name: dict[str, list[dict[str, Any]]] = {r["alert"]: [] for r in _rules()}
    for alert in firing:
        labels = dict(alert["exp_labels"])
        name = labels.pop("alertname")
        by_name[name].append({**alert, "exp_labels": labels})
    return [
        {"eval_time": at, "alertname": name, "exp_alerts": alerts}
        for name, alerts in by_name.items()
    ]


def fire(alert: str, **labels: str) -> dict[str, Any]:
    found = expected(alert, **labels)
    found["exp_labels"] = {"alertname": alert, **found["exp_labels"]}
    return found


def _rules_file(path: Path) -> Path:
    rule = yaml.safe_load((COMPONENT / "prometheusrule.yaml").read_text())
    out = path / "rules.yaml"
    out.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return out


def _run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )


# ---- the tests ---------------------------------------------------------------------------------


def test_every_scrape_passes_promtool_check_metrics(scrapes: Scrapes) -> None:
    _promtool()
    for text in scrapes.all():
        checked = subprocess.run(
            [_promtool(), "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert checked.returncode == 0 and not checked.stdout + checked.stderr, checked.stdout


def test_the_rules_file_is_valid(tmp_path: Path) -> None:
    checked = _run_promtool("check", "rules", str(_rules_file(tmp_path)))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alerts_fire_on_the_incident_and_clear_after(scrapes: Scrapes, tmp_path: Path) -> None:
    """Leader and follower healthy for 10 minutes, then the incident for 20."""
    s = scrapes
    timeline: dict[str, list[str | None]] = {
        PODS[0]: [s.healthy_leader] * 10 + [s.incident_leader] * 20,
        PODS[1]: [s.healthy_follower] * 10 + [s.incident_follower] * 20,
    }
    failed = _rose(s.healthy_leader, s.incident_leader, "failed")
    dropped = _rose(s.healthy_leader, s.incident_leader, "dropped")
    assert "audit" in failed and "slow" in dropped
    where = {"namespace": NAMESPACE, "job": JOB}
    during = [
        fire("FluxwatchHelmReleaseStuck", **where),
        fire("FluxwatchGuardrailTripped", guard="batch", **where),
        fire("FluxControllerLeaderless", lease=KUSTOMIZE_LEASE),
        fire("FluxControllerLeaderFlapping", lease=HELM_LEASE),
        *(fire("FluxwatchNotificationsFailing", provider=p, **where) for p in failed),
        *(fire("FluxwatchNotificationsDropped", provider=p, **where) for p in dropped),
    ]
    # 15 minutes on, the counters' increases have left the rules' windows.
    after = [
        fire("FluxwatchHelmReleaseStuck", **where),
        fire("FluxControllerLeaderless", lease=KUSTOMIZE_LEASE),
    ]
    tests = [
        *alert_tests("9m", []),
        # Stuck waits 2m (its `for`): not yet at 11m.
        *alert_tests("11m", [a for a in during if a is not during[0]]),
        *alert_tests("14m", during),
        *alert_tests("29m", after),
    ]
    _promtool_test(tmp_path, timeline, tests)


def _rose(before_text: str, after_text: str, result: str) -> list[str]:
    """The providers whose ``result`` count rose from one scrape to the other."""
    before, after = _series(before_text), _series(after_text)
    return sorted(
        dict(labels)["provider"]
        for (name, labels), value in after.items()
        if name == "fluxwatch_notifications_total"
        and dict(labels)["result"] == result
        and value > before.get((name, labels), 0.0)
    )


def test_leader_and_readiness_alerts(scrapes: Scrapes, tmp_path: Path) -> None:
    """The leader goes down at 10m (nobody leads), comes back at 20m while the follower
    that took over still leads (two leaders); a third replica never gets ready. The
    follower's scrape from after the takeover still shows the incident, and says so."""
    s = scrapes
    timeline: dict[str, list[str | None]] = {
        PODS[0]: [s.healthy_leader] * 10 + [None] * 10 + [s.healthy_leader] * 10,
        PODS[1]: [s.healthy_follower] * 20 + [s.took_over] * 10,
        PODS[2]: [s.not_ready] * 30,
    }
    where = {"namespace": NAMESPACE, "job": JOB}
    stalled = fire("FluxwatchNotReady", namespace=NAMESPACE, pod=PODS[2])
    failed = _rose(s.healthy_follower, s.took_over, "failed")
    dropped = _rose(s.healthy_follower, s.took_over, "dropped")
    tests = [
        *alert_tests("4m", []),
        *alert_tests("9m", [stalled]),
        *alert_tests("12m", [stalled, fire("FluxwatchNoLeader", **where)]),
        *alert_tests(
            "16m",
            [
                stalled,
                fire("FluxwatchNoLeader", **where),
                fire("FluxwatchNotReady", namespace=NAMESPACE, pod=PODS[0]),
            ],
        ),
        *alert_tests(
            "25m",
            [
                stalled,
                fire("FluxwatchTooManyLeaders", **where),
                fire("FluxwatchHelmReleaseStuck", **where),
                fire("FluxControllerLeaderless", lease=KUSTOMIZE_LEASE),
                fire("FluxControllerLeaderFlapping", lease=HELM_LEASE),
                *(fire("FluxwatchNotificationsFailing", provider=p, **where) for p in failed),
                *(fire("FluxwatchNotificationsDropped", provider=p, **where) for p in dropped),
            ],
        ),
    ]
    _promtool_test(tmp_path, timeline, tests)


def test_every_alert_is_exercised() -> None:
    """A rule added without a case above would go untested: the two tests name them all."""
    source = Path(__file__).read_text()
    for rule in _rules():
        assert f'"{rule["alert"]}"' in source, f"{rule['alert']} has no test"


def _promtool_test(
    tmp_path: Path,
    timeline: dict[str, list[str | None]],
    tests: list[dict[str, Any]],
    rules: Path | None = None,
) -> None:
    rules = rules or _rules_file(tmp_path)
    spec = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": input_series(timeline), "alert_rule_test": tests}
        ],
    }
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    ran = _run_promtool("test", "rules", str(test_file))
    assert ran.returncode == 0, ran.stdout[-6000:] + ran.stderr[-2000:]


# ---- the dashboard -----------------------------------------------------------------------------

# Grafana's variables, as a query would see them.
VARIABLES = {"$__rate_interval": "5m", "$namespace": ".+"}
SERIES_NAME = re.compile(r"\b((?:fluxwatch|process|python)_[a-z_]+)\b")


def dashboard_queries() -> Iterator[tuple[str, str]]:
    dashboard = json.loads((COMPONENT / "dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"panel {panel['title']!r}: unknown variable in {expr}"
            yield panel["title"], expr
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["name"], variable["definition"]


def test_dashboard_queries_read_series_fluxwatch_exports(scrapes: Scrapes) -> None:
    names = {name for text in scrapes.all() for name, _labels in _series(text)}
    queries = list(dashboard_queries())
    assert len(queries) > 20
    for title, expr in queries:
        used = SERIES_NAME.findall(expr)
        assert used, f"{title}: reads no fluxwatch series: {expr}"
        missing = [name for name in used if name not in names]
        assert not missing, f"{title}: {missing} not in any scrape"


def _panel_queries() -> list[str]:
    """The panels' queries (the variables' ``label_values`` is Grafana's, not PromQL)."""
    return [expr for _title, expr in dashboard_queries() if not expr.startswith("label_values(")]


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression."""
    rules = [{"record": f"dashboard:q{n}", "expr": e} for n, e in enumerate(_panel_queries())]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = _run_promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_panel_shows_data_during_the_incident(scrapes: Scrapes, tmp_path: Path) -> None:
    """Each panel's query, evaluated by promtool on the incident's series, returns at least
    one series: its label matchers (``job``, ``namespace``) and ``by`` clauses fit what the
    PodMonitor's targets carry. Wrapped as ``count(query) > 0``, an alert with no labels
    fires exactly when the query has data."""
    s = scrapes
    timeline: dict[str, list[str | None]] = {
        PODS[0]: [s.healthy_leader] * 10 + [s.incident_leader] * 20,
        PODS[1]: [s.healthy_follower] * 10 + [s.incident_follower] * 20,
    }
    queries = _panel_queries()
    rules = [{"alert": f"Panel{n}", "expr": f"count({e}) > 0"} for n, e in enumerate(queries)]
    rules_file = tmp_path / "panels.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    tests = [
        {"eval_time": "14m", "alertname": rule["alert"], "exp_alerts": [{"exp_labels": {}}]}
        for rule in rules
    ]
    _promtool_test(tmp_path, timeline, tests, rules_file)


# ---- the component in place ----------------------------------------------------------------------


def test_the_component_scrapes_the_port_the_deployment_names(tmp_path: Path) -> None:
    """``config/default`` with the component, rendered by kubectl's kustomize: the
    PodMonitor selects the Deployment's pods by its labels, scrapes the container port
    named ``http-prom`` (the Service's target too), and labels the job as the rules expect."""
    kubectl = find_kubectl()
    if kubectl is None:
        pytest.skip("kubectl is not installed: it renders the kustomization")
    root = COMPONENT.parents[2]
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(root / "config" / "default", tmp_path)],
                "components": [os.path.relpath(COMPONENT, tmp_path)],
            }
        )
    )
    out = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}
    pod = docs["Deployment", "fluxwatch"]["spec"]["template"]
    [container] = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    monitor = docs["PodMonitor", "fluxwatch"]
    assert monitor["metadata"]["namespace"] == NAMESPACE
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "http-prom" and "http-prom" in ports
    assert pod["metadata"]["labels"][monitor["spec"]["jobLabel"]] == JOB
    [service_port] = docs["Service", "fluxwatch-metrics"]["spec"]["ports"]
    assert service_port["targetPort"] == "http-prom"
    assert docs["PrometheusRule", "fluxwatch"]["metadata"]["namespace"] == NAMESPACE
    dashboard = docs["ConfigMap", "fluxwatch-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["fluxwatch.json"])["uid"] == "fluxwatch"
