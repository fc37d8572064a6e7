"""``fluxwatch demo``: the seed's incident replayed end to end on one machine.

The embedded cluster (the API emulator over real HTTPS) runs the simulated
helm-controller through ``incident-925``: 35 HelmReleases fan out, the
controller loses its leader Lease in the middle of bp-vpa's install, and
bp-vpa is left at ``Ready=Unknown`` although its Helm release is deployed.
A real fluxwatch daemon (the same code ``fluxwatch run`` runs, through the
real kubernetes_asyncio client) watches it with every duration compressed by
``time_scale``, and a local webhook receiver stands in for Slack.

The demo prints a timeline (real seconds and the cluster time they stand
for), then a summary, and exits 0 when every release the scenario left stuck
was recovered. In ``mass-outage`` the guardrail first refuses the whole
incident; the demo then plays the person on call and runs the command the
alert names, ``fluxwatch approve INCIDENT``, as a separate process with the
demo's kubeconfig, and the leader recovers the incident under its budget.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fluxwatch.app import Daemon, build_recorder, build_router
from fluxwatch.engine.config import GuardrailSettings, LeaseSettings
from fluxwatch.kube.client import KubeClient
from fluxwatch.notify.event import Event, Meta
from fluxwatch.notify.metrics import PrometheusMetrics
from fluxwatch.settings import RecoverySettings, Settings, WatchSettings
from fluxwatch.sim import scenarios
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.receiver import Receiver
from fluxwatch.telemetry.metrics import Metrics

THRESHOLD = WatchSettings().threshold


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``top``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            out[key] = merge(below, value)
        else:
            out[key] = value
    return out


def compressed(time_scale: float, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A settings tree whose cluster-time durations are the defaults times ``time_scale``,
    under whatever ``data`` sets itself. The demo, the tests and the benchmarks all replay
    minutes in seconds this way; read from the defaults, a new default cannot be missed."""
    s = time_scale
    guard, leases = GuardrailSettings(), LeaseSettings()
    recovery = RecoverySettings()
    scaled = {
        "watch": {"threshold": THRESHOLD * s},
        "recovery": {
            "verify_timeout": recovery.verify_timeout * s,
            "suspend_pause": recovery.suspend_pause * s,
        },
        "guardrail": {
            "window": guard.window * s,
            "batch_window": guard.batch_window * s,
            "incident_window": guard.incident_window * s,
            "backoff_base": guard.backoff_base * s,
            "backoff_max": guard.backoff_max * s,
        },
        "leases": {
            "flap_window": leases.flap_window * s,
            "grace": leases.grace * s,
            "suspect_ttl": leases.suspect_ttl * s,
        },
    }
    return merge(scaled, data or {})


DEMO_NAMESPACE = "fluxwatch-system"


def demo_settings(kubeconfig: Path, receiver_url: str, time_scale: float) -> Settings:
    """Production defaults with every cluster duration multiplied by ``time_scale``."""
    return Settings.model_validate(
        compressed(
            time_scale,
            {
                "kubeconfig": str(kubeconfig),
                "shutdown_timeout": 5.0,
                "leader": {
                    "namespace": DEMO_NAMESPACE,
                    "identity": "fluxwatch-demo",
                    "lease_duration": 3.0,
                    "renew_deadline": 2.0,
                    "retry_period": 0.5,
                },
                "telemetry": {"metrics_addr": "127.0.0.1:0", "health_addr": "127.0.0.1:0"},
                "notify": {
                    "providers": [{"name": "webhook", "type": "generic", "address": receiver_url}],
                    "alerts": [
                        {
                            "name": "everything",
                            "providerRef": {"name": "webhook"},
                            "eventSeverity": "info",
                            "eventSources": [{"kind": "*", "name": "*", "namespace": "*"}],
                        }
                    ],
                },
            },
        )
    )


class Timeline:
    def __init__(self, time_scale: float) -> None:
        self.start = time.monotonic()
        self.time_scale = time_scale

    def stamp(self) -> str:
        real = time.monotonic() - self.start
        cluster = real / self.time_scale
        minutes, seconds = divmod(int(cluster), 60)
        return f"[{real:6.1f}s | cluster +{minutes:2d}m{seconds:02d}s]"

    def say(self, text: str) -> None:
        print(f"{self.stamp()} {text}", flush=True)


async def run_demo(time_scale: float = 0.02, scenario: str = "incident-925") -> int:
    workdir = Path.cwd() / ".fluxwatch"
    workdir.mkdir(exist_ok=True)
    timeline = Timeline(time_scale)
    events: list[Event] = []
    received: list[dict[str, Any]] = []

    def on_event(event: Event) -> None:
        events.append(event)
        mark = "!!" if event.severity == "error" else "--"
        timeline.say(f"{mark} {event.reason}: {event.message}")

    # The timeline prints every event; the daemon's own event log lines would repeat them.
    for name in ("fluxwatch.app", "fluxwatch.engine.tracker"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    server = ApiServer(tls=True, time_scale=time_scale)
    receiver = Receiver(on_alert=received.append)
    await server.start()
    await receiver.start()
    kubeconfig = server.write_kubeconfig(workdir / "demo.kubeconfig")
    timeline.say(f"embedded cluster serving {server.url}")
    timeline.say(f"  kubectl --kubeconfig {kubeconfig} get helmreleases -A   (while the demo runs)")
    timeline.say(
        f"scenario {scenario}, time compressed x{1 / time_scale:.0f}: "
        f"the {THRESHOLD / 60:.0f}m stuck threshold lasts {THRESHOLD * time_scale:.1f}s"
    )
    run = await scenarios.start(scenario, server.store, time_scale=time_scale)
    # fluxwatch's own namespace, as `kubectl apply -k config/default` creates it: its
    # leader-election Lease lives there.
    server.store.create("namespaces", {"metadata": {"name": DEMO_NAMESPACE}})
    expected = set(run.expected_stuck)
    settings = demo_settings(kubeconfig, receiver.url, time_scale)
    client = await KubeClient.from_config(kubeconfig)
    metrics = Metrics()
    notify_metrics = PrometheusMetrics(metrics.registry)
    router = await build_router(settings, client, metrics, notify_metrics)
    recorder = build_recorder(settings, client, notify_metrics)
    daemon = Daemon(
        settings, client, metrics=metrics, router=router, recorder=recorder, on_event=on_event
    )
    task = asyncio.create_task(daemon.run(install_signals=False))
    timeline.say(f"fluxwatch started; expecting {len(expected)} release(s) to get stuck")

    def recovered() -> set[tuple[str, str]]:
        return {
            (e.involved_object.namespace, e.involved_object.name)
            for e in events
            if e.reason == "RecoverySucceeded"
        }

    def done() -> bool:
        return bool(expected) and expected <= recovered()

    approval: asyncio.Task[None] | None = None

    async def approve(incident: str) -> None:
        """The person on call reads the alert and runs the command it names."""
        command = ["fluxwatch", "approve", incident, "--kubeconfig", str(kubeconfig)]
        command += ["--reason", "API server blip over; recover them"]
        timeline.say(f"a person on call approves the incident: {' '.join(command[:3])}")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fluxwatch",
            *command[1:],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        for line in out.decode().splitlines():
            timeline.say(f"   | {line}")

    limit = 60.0 + 3 * (THRESHOLD + 240.0) * time_scale
    ok = False
    try:
        async with asyncio.timeout(limit):
            while not done():
                if task.done():
                    break
                tripped = [e for e in events if e.reason == "GuardrailTripped"]
                if tripped and approval is None:
                    incident = tripped[0].metadata.get(Meta.INCIDENT, "")
                    approval = asyncio.create_task(approve(incident))
                await asyncio.sleep(0.1)
            ok = done()
            if approval is not None:
                await approval
    except TimeoutError:
        timeline.say(f"gave up after {limit:.0f}s")
    await asyncio.sleep(0.5)  # let the last alerts reach the receiver
    daemon.stop()
    code = await task
    await run.stop()
    await client.close()
    await receiver.stop()
    await server.stop()

    writes = daemon.recovery.writes if daemon.recovery else 0
    print()
    print("summary")
    print(f"  stuck releases expected : {', '.join(f'{ns}/{n}' for ns, n in sorted(expected))}")
    print(f"  recovered               : {', '.join(f'{ns}/{n}' for ns, n in sorted(recovered()))}")
    print(f"  writes to HelmReleases  : {writes}")
    print(
        f"  events raised           : {len(events)}  "
        f"({', '.join(sorted({e.reason for e in events}))})"
    )
    print(f"  alerts at the receiver  : {len(received)}")
    print(f"  result                  : {'OK' if ok and code == 0 else 'FAILED'}")
    return 0 if ok and code == 0 else 1
