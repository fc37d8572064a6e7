"""``fluxwatch doctor`` when the API server throttles or fails even after the
client's retries (Retry-After 0 here, so the retries take no time): the first
permission check it cannot get answered stops the others, with a FAIL, so that
doctor exits 1 instead of passing what it never checked."""

from __future__ import annotations

from pathlib import Path

from fluxwatch.doctor import Level, exit_code, run_doctor
from fluxwatch.kube.client import MAX_RETRIES, KubeClient
from fluxwatch.settings import Settings
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.fluxinstall import DEFAULT
from fluxwatch.sim.fluxinstall import install_flux as sim_install_flux
from fluxwatch.sim.receiver import Receiver
from fluxwatch.sim.scenarios import FLUX_CONTROLLERS


async def test_a_doctor_the_api_server_keeps_throttling_fails_and_stops_asking(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    sim_install_flux(apiserver.store, FLUX_CONTROLLERS, DEFAULT)
    settings = Settings.model_validate({"leader": {"namespace": "fluxwatch-system"}})
    receiver = Receiver()
    await receiver.start()
    client = await KubeClient.from_config(apiserver.write_kubeconfig(tmp_path / "kubeconfig"))
    try:
        apiserver.faults.fail_next(10**6, code=429, retry_after=0)
        findings = await run_doctor(settings, client, events_addr=receiver.url)
    finally:
        await client.close()
        await receiver.stop()
    assert exit_code(findings) == 1
    controllers = [f for f in findings if f.check == "leader-election"]
    assert len(controllers) == 3
    assert all(f.level is Level.WARN for f in controllers)
    assert all(
        f.message.endswith("run doctor again when the API server answers") for f in controllers
    )
    rbac = [f for f in findings if f.check == "rbac"]
    assert [f.level for f in rbac] == [Level.WARN, Level.FAIL]
    assert rbac[0].message.startswith("could not check list helmreleases")
    assert rbac[1].message.startswith(
        "the API server did not answer (429 TooManyRequests: Too many requests, please try "
        "again later.); "
    )
    assert rbac[1].message.endswith(
        "more permission checks not run: run doctor again when it answers"
    )
    # One question asked, with its retries, not every one of them.
    assert apiserver.stats.requests[("list", "helmreleases.helm.toolkit.fluxcd.io")] == (
        MAX_RETRIES + 1
    )
