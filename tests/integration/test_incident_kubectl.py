"""The simulated helm-controller leaves incident-925's stuck shape, read back by kubectl.

kubectl is an independent client: what it prints is what any other tool of a
platform team would see on a real cluster after the incident (FLUX-FACTS §1).
"""

from __future__ import annotations

import asyncio
import json

from fluxwatch.kube.helmrelease import hr_view
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl
from fluxwatch.sim.scenarios import start


async def test_incident_925_leaves_one_release_stuck_with_a_deployed_secret(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    """FLUX-FACTS §1: a single condition Ready=Unknown/Progressing, no Reconciling, no
    Released, history[0].status deployed, and the newest Helm Secret labelled deployed with
    the same version; every other release is Ready."""
    run = await start("incident-925", tls_apiserver.store, time_scale=0.005)
    try:
        await asyncio.wait_for(run.wait(), 60)
        listed = json.loads(
            (await kubectl("get", "helmreleases", "-A", "-o", "json")).check().stdout
        )
        assert len(listed["items"]) == 35
        views = [hr_view(item) for item in listed["items"]]
        not_ready = [v.key for v in views if v.ready is None or v.ready.status != "True"]
        assert not_ready == [("flux-system", "bp-vpa")]

        hr = json.loads(
            (await kubectl("get", "hr", "bp-vpa", "-n", "flux-system", "-o", "json")).check().stdout
        )
        conditions = hr["status"]["conditions"]
        assert [(c["type"], c["status"], c["reason"]) for c in conditions] == [
            ("Ready", "Unknown", "Progressing")
        ]
        assert conditions[0]["message"] == "Running 'install' action with timeout of 5m0s"
        latest = hr["status"]["history"][0]
        assert latest["status"] == "deployed"

        view = hr_view(hr)
        secrets = json.loads(
            (
                await kubectl(
                    "get",
                    "secrets",
                    "-n",
                    view.storage_namespace,
                    "-l",
                    f"owner=helm,name={view.release_name}",
                    "-o",
                    "json",
                )
            )
            .check()
            .stdout
        )
        labels = [s["metadata"]["labels"] for s in secrets["items"]]
        newest = max(labels, key=lambda lb: int(lb["version"]))
        assert newest["status"] == "deployed"
        assert int(newest["version"]) == latest["version"]
        assert all(s["type"] == "helm.sh/release.v1" for s in secrets["items"])
    finally:
        await run.stop()


async def test_kubectl_describe_and_events_tell_what_helm_controller_did(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    """What a user runs first on a stuck release: `kubectl describe hr` and `kubectl events
    --for hr/X` show helm-controller's Events (found by kubectl's own field selectors on
    involvedObject), From helm-controller; the stuck one never got InstallSucceeded."""
    run = await start("incident-925", tls_apiserver.store, time_scale=0.005)
    try:
        await asyncio.wait_for(run.wait(), 60)
        described = (await kubectl("describe", "hr", "bp-grafana", "-n", "observability")).check()
        events = described.stdout.split("\nEvents:", 1)[1]
        assert "helm-controller" in events
        # How often it waited for its dependency depends on the host's speed at this time
        # scale; the folding of those repeats is held by test_helmcontroller.
        assert (
            "InstallSucceeded" in events
            and "Helm install succeeded for release observability/bp-grafana.v1" in events
        )

        listed = (await kubectl("events", "--for", "hr/bp-vpa", "-n", "flux-system")).check()
        lines = listed.stdout.splitlines()
        assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        assert "HelmChartCreated" in listed.stdout and "HelmRelease/bp-vpa" in listed.stdout
        assert "InstallSucceeded" not in listed.stdout
    finally:
        await run.stop()
