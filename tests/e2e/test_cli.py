"""The command line as a person runs it: real subprocesses, the embedded cluster over HTTP."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from aiohttp import web

from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.scenarios import start

pytestmark = pytest.mark.e2e

HR = "helmreleases.helm.toolkit.fluxcd.io"


async def fluxwatch(*args: str, cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_scan_reports_every_verdict_as_json(apiserver: ApiServer, tmp_path: Path) -> None:
    """FLUX-FACTS §1, the CronJob done right: one pass, each release's verdict and reason,
    the release name and storage namespace as Helm has them, and no write."""
    run = await start("load", apiserver.store, n=6, stuck=1, secrets=True)
    try:
        person = apiserver.store.list(HR)[0][0]["metadata"]
        apiserver.store.patch(HR, person["namespace"], person["name"], {"spec": {"suspend": True}})
        kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
        apiserver.stats.reset()
        code, out, err = await fluxwatch(
            "scan",
            "--kubeconfig",
            str(kubeconfig),
            "--output",
            "json",
            "--log-level",
            "error",
            cwd=tmp_path,
        )
        assert code == 0, err
        doc = json.loads(out)
        rows = {(r["namespace"], r["name"]): r for r in doc["releases"]}
        assert len(rows) == 6
        [stuck_key] = run.expected_stuck
        stuck = rows[stuck_key]
        assert stuck["verdict"] == "stuck"
        assert stuck["helmStatus"] == "deployed" and isinstance(stuck["helmVersion"], int)
        assert stuck["releaseName"] and stuck["storageNamespace"]
        assert rows[(person["namespace"], person["name"])]["skip"] == "suspended"
        assert "would act on 1 of 1 stuck" in doc["guardrail"]
        assert not [k for k in apiserver.stats.requests if k[0] in ("patch", "update", "create")]
    finally:
        await run.stop()


async def test_check_config_masks_secrets_and_invalid_settings_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "notify:\n  providers:\n"
        "    - {name: hook, type: generic, address: 'https://user:hunter2@example.test/x?token=s3cret'}\n"
    )
    code, out, _ = await fluxwatch("check-config", str(config), cwd=tmp_path)
    assert code == 0
    assert "hunter2" not in out and "s3cret" not in out
    assert json.loads(out)["notify"]["providers"][0]["name"] == "hook"

    config.write_text("guardrail:\n  maxBatch: 0\nwatch:\n  threshold: soon\n")
    code, out, err = await fluxwatch("run", "--config", str(config), cwd=tmp_path)
    assert code == 2
    assert "guardrail.max_batch" in err and "watch.threshold" in err and "'soon'" in err


async def test_test_alert_says_delivered_or_why_not(tmp_path: Path) -> None:
    got: list[dict[str, object]] = []

    async def receive(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        config = tmp_path / "config.yaml"
        config.write_text(
            "notify:\n  providers:\n"
            f"    - {{name: good, type: generic, address: 'http://127.0.0.1:{port}/hook'}}\n"
            f"    - {{name: bad, type: generic, address: 'http://127.0.0.1:{port}/nowhere'}}\n"
        )
        env_kubeconfig = tmp_path / "missing-kubeconfig"
        code, out, _ = await fluxwatch(
            "test-alert",
            "--config",
            str(config),
            "--kubeconfig",
            str(env_kubeconfig),
            "--log-level",
            "error",
            cwd=tmp_path,
        )
        assert code == 1  # one provider failed
        assert "good: delivered HTTP 202" in out
        assert "bad: FAILED HTTP 404" in out
        assert len(got) == 1 and got[0]["reportingController"] == "fluxwatch"
        code, out, _ = await fluxwatch(
            "test-alert",
            "--config",
            str(config),
            "--kubeconfig",
            str(env_kubeconfig),
            "--provider",
            "good",
            "--log-level",
            "error",
            cwd=tmp_path,
        )
        assert code == 0, out
    finally:
        await runner.cleanup()


async def test_sim_serve_prints_its_url_serves_kubectl_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    """`fluxwatch sim serve` as the README shows it: a kubeconfig kubectl can use, the
    scenario's objects behind it, and a clean exit on SIGTERM."""
    import signal

    from fluxwatch.sim.kubectl import find_kubectl

    kubectl = find_kubectl()
    if kubectl is None:
        pytest.skip("kubectl is not installed (looked for /usr/bin/kubectl and on PATH)")
    kubeconfig = tmp_path / "sim.kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        "sim",
        "serve",
        "--scenario",
        "healthy",
        "--time-scale",
        "0.01",
        "--kubeconfig-out",
        str(kubeconfig),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.startswith(b"fluxwatch sim: serving https://127.0.0.1:")
        for _ in range(100):  # the healthy catalog installs itself
            get = await asyncio.create_subprocess_exec(
                kubectl,
                "--kubeconfig",
                str(kubeconfig),
                "get",
                "helmreleases",
                "-A",
                "-o",
                "json",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await get.communicate()
            assert get.returncode == 0, err.decode()
            items = json.loads(out)["items"]
            ready = [
                i
                for i in items
                for c in (i.get("status") or {}).get("conditions") or ()
                if c["type"] == "Ready" and c["status"] == "True"
            ]
            if len(items) == 35 and len(ready) == 35:
                break
            await asyncio.sleep(0.2)
        assert len(items) == 35 and len(ready) == 35
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
