"""What ``fluxwatch approve`` tells a person to type works as printed: after the
approval of a refused incident, the leader records an IncidentApproved core/v1 Event
on its Lease, and the real kubectl with the printed field selector lists it.
"""

from __future__ import annotations

import asyncio
import sys

import pytest
from daemon_harness import Cluster, Replicas, eventually, make_settings
from test_daemon_guardrail import ONE_INCIDENT, _load

from fluxwatch.notify.event import Meta
from fluxwatch.sim.kubectl import Kubectl, find_kubectl


async def run(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_printed_kubectl_command_lists_the_leaders_incident_approved_event(
    cluster: Cluster, replicas: Replicas
) -> None:
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (looked for /usr/bin/kubectl and on PATH)")
    loaded = await _load(cluster, 11)
    try:
        face = await cluster.face()
        kubeconfig = cluster.kubeconfig(face)
        settings = make_settings(kubeconfig, "fluxwatch-0", ONE_INCIDENT)
        replica = await replicas.start(settings, record=True)
        await replica.wait_ready()
        await eventually(lambda: "GuardrailTripped" in replica.reasons(), 10, "the alert")
        [alert] = replica.of()
        incident = alert.metadata[Meta.INCIDENT]

        code, out, err = await run(
            sys.executable, "-m", "fluxwatch", "approve", incident, "--reason", "API is back",
            "--kubeconfig", str(kubeconfig),
        )  # fmt: skip
        assert code == 0, err
        printed = [line.strip() for line in out.splitlines() if "kubectl " in line]
        assert printed == [
            "kubectl get events -n fluxwatch-system --field-selector reason=IncidentApproved"
        ]
        await eventually(lambda: "IncidentApproved" in replica.reasons(), 10, "the approval")

        kubectl = Kubectl(binary, kubeconfig, cluster.workdir / "kube-cache")

        async def listed() -> list[list[str]]:
            result = (await kubectl(*printed[0].split()[1:])).check()
            return [line.split() for line in result.stdout.splitlines()[1:]]

        for _ in range(50):  # the recorder writes asynchronously
            rows = await listed()
            if rows:
                break
            await asyncio.sleep(0.1)
        assert [row[1:4] for row in rows] == [
            ["Normal", "IncidentApproved", "lease/fluxwatch-leader-election"]
        ]
    finally:
        await loaded.stop()
