"""``fluxwatch scan`` when the API server pushes back and does not give in: one pass
waits a bounded time for its list, then says why on stderr and exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxwatch.scan import run_scan
from fluxwatch.settings import load_settings
from fluxwatch.sim.apiserver import ApiServer


async def test_a_scan_the_api_server_keeps_throttling_gives_up_and_exits_1(
    apiserver: ApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    settings = load_settings(None, {"kubeconfig": str(kubeconfig)})
    apiserver.faults.fail_next(10**6, code=429, retry_after=0, verb="list")
    assert await run_scan(settings, output="json", sync_deadline=2.0) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("fluxwatch: scan: could not list HelmReleases within 2s; the last ")
    assert "429 TooManyRequests: Too many requests, please try again later." in err
    assert "Traceback" not in err


async def test_a_scan_of_an_api_server_that_is_gone_gives_up_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with ApiServer() as gone:
        kubeconfig = gone.write_kubeconfig(tmp_path / "kubeconfig")
    settings = load_settings(None, {"kubeconfig": str(kubeconfig)})
    assert await run_scan(settings, output="json", sync_deadline=2.0) == 1
    err = capsys.readouterr().err
    assert "could not list HelmReleases within 2s; the last answer: GET " in err
    assert "Connect" in err


async def test_a_scan_throttled_for_a_while_lists_after_retry_after(
    apiserver: ApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    settings = load_settings(None, {"kubeconfig": str(kubeconfig)})
    apiserver.faults.fail_next(3, code=429, retry_after=0, verb="list")
    assert await run_scan(settings, output="json", sync_deadline=5.0) == 0
