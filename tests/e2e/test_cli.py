"""The command line as a person runs it: real subprocesses, the embedded cluster over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.scenarios import start

pytestmark = pytest.mark.e2e

HR = "helmreleases.helm.toolkit.fluxcd.io"
ROOT = Path(__file__).resolve().parents[2]
# The subprocesses import this checkout's fluxwatch, not whichever the venv installed.
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


async def fluxwatch(*args: str, cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        *args,
        cwd=cwd,
        env=ENV,
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
        # Issue 12: the stuck release's incident, named by the UTC second it started.
        [incident] = doc["incidents"]
        assert stuck["incident"] == incident["id"] and incident["id"].startswith("inc-")
        assert (incident["stuck"], incident["releases"]) == (1, 1)
        assert rows[(person["namespace"], person["name"])]["incident"] == ""
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
    assert "guardrail.maxBatch" in err and "watch.threshold" in err and "'soon'" in err


HOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"


@pytest.mark.parametrize(
    ("text", "env", "problem"),
    [
        (
            f"notify:\n  providers:\n    - {{name: s, type: slack, adress: '{HOOK}'}}\n",
            {},
            "notify.providers.0.adress: unknown field; expected one of name, namespace, type, "
            "address",
        ),
        (
            f"notify:\n  providers:\n    - {{name: s, type: slack, secretRef: '{HOOK}'}}\n",
            {},
            "notify.providers.0.secretRef: Input should be a valid dictionary",
        ),
        ("watch:\n  labelSelector: 'tier in (a,'\n", {}, "watch.labelSelector: label selector"),
        ("telemetry:\n  metricsAddr: 'nosuch.invalid:8080'\n", {}, "telemetry.metricsAddr: "),
        ("watch:\n  threshold: 1e400\n", {}, "watch.threshold: expected a duration of at most"),
        ("guardrail:\n  maxBatch: true\n", {}, "guardrail.maxBatch: expected a number, got true"),
        (
            "{}\n",
            {"FLUXWATCH_NOTIFY__PROVIDERS": f'[{{"name": "s", "address": "{HOOK}"'},
            "FLUXWATCH_NOTIFY__PROVIDERS: expected JSON (a list or an object), Expecting ",
        ),
    ],
)
async def test_every_bad_setting_is_one_line_exit_2_in_check_config_as_in_run(
    tmp_path: Path, text: str, env: dict[str, str], problem: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    for command in (("check-config", str(config)), ("run", "--config", str(config))):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fluxwatch",
            *command,
            cwd=tmp_path,
            env={**ENV, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        lines = err.decode().splitlines()
        assert proc.returncode == 2, (command, out, err)
        assert lines == ["fluxwatch: invalid settings:", f"  - {lines[1][4:]}"], lines
        assert lines[1].startswith(f"  - {problem}"), (command, lines)
        assert "SECRET" not in err.decode() + out.decode()


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
        env=ENV,
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
        # healthy runs Flux with the seed's mitigation: doctor passes its flags and limits.
        code, out, err = await fluxwatch(
            "doctor", "--kubeconfig", str(kubeconfig), "--output", "json", cwd=tmp_path
        )
        assert code == 0, err
        audit = {(f["check"], f["level"]) for f in json.loads(out)}
        for check in ("leader-election", "memory", "version"):
            assert (check, "pass") in audit and (check, "warn") not in audit, out
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# ---- `fluxwatch sim serve` for a first-time user ------------------------------------------------


async def test_sim_serve_help_explains_every_option(tmp_path: Path) -> None:
    """Every option says what it does; --time-scale says what 0.02 means; --scenario lists the
    scenarios (the same as fluxwatch.sim.scenarios has); --helm-controller says what it does
    with the catalog scenarios."""
    from fluxwatch.cli import SIM_SCENARIOS, build_parser
    from fluxwatch.sim.scenarios import SCENARIOS

    assert tuple(SCENARIOS) == SIM_SCENARIOS
    serve = build_parser().parse_args(["sim", "serve"]).serve_parser
    for action in serve._actions:
        assert action.help, f"sim serve {action.option_strings} has no help"
    code, out, _ = await fluxwatch("sim", "serve", "--help", cwd=tmp_path)
    assert code == 0
    text = " ".join(out.split())
    assert "--scenario {incident-925,healthy,mass-outage,blip-failures,load}" in text
    assert "0.02 replays the incident's minutes in seconds" in text
    # argparse wraps help at hyphens too ("blip-" at a line's end).
    unwrapped = re.sub(r"(\w)- (\w)", r"\1-\2", text)
    assert (
        "The catalog scenarios (incident-925, healthy, mass-outage, blip-failures) always run "
        "their own" in unwrapped
    )


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--scenario", "incident-9255"], "argument --scenario: invalid choice: 'incident-9255'"),
        (["--scenario", "load", "--helm-controller"], "--helm-controller with --scenario load"),
        (["--time-scale", "fast"], "argument --time-scale: not a number: 'fast'"),
        (["--time-scale", "0"], "argument --time-scale: must be above 0, not 0"),
        (["--crd", "missing.yaml"], "--crd missing.yaml: [Errno 2] No such file or directory"),
        (["--crd", "/dev/null"], "--crd /dev/null: no CustomResourceDefinition in the file"),
    ],
)
async def test_sim_serve_usage_errors_exit_2(
    tmp_path: Path, args: list[str], complaint: str
) -> None:
    code, out, err = await fluxwatch("sim", "serve", *args, cwd=tmp_path, timeout=30)
    assert code == 2
    assert err.startswith("usage: fluxwatch sim serve")
    assert complaint in err
    assert out == ""


async def test_sim_token_is_the_one_sim_serve_grants(tmp_path: Path) -> None:
    from fluxwatch.sim.rbac import token_for_subject

    subject = "system:serviceaccount:fluxwatch-system:fluxwatch"
    code, out, _ = await fluxwatch("sim", "token", subject, cwd=tmp_path)
    assert (code, out) == (0, token_for_subject(subject) + "\n")


def readme_tryout() -> tuple[str, list[str]]:
    """The README's kubectl try-out: the `sim serve` line, then the commands of the second
    terminal, exactly as written there."""
    text = (ROOT / "README.md").read_text()
    section = text.split("Try the embedded cluster with `kubectl`", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "the try-out has a block per terminal"
    [serve] = blocks[0].strip().splitlines()
    return serve, blocks[1].strip().splitlines()


def as_here(command: str, kubeconfig: Path) -> list[str]:
    """A README command run here: its `.venv/bin/fluxwatch` is this interpreter's fluxwatch,
    its /tmp/sim.kubeconfig one in the test's directory; nothing else changes."""
    argv = shlex.split(command.replace("/tmp/sim.kubeconfig", str(kubeconfig)))
    if argv[0] == ".venv/bin/fluxwatch":
        return [sys.executable, "-m", "fluxwatch", *argv[1:]]
    return argv


async def test_the_readme_tryout_works_as_written(tmp_path: Path) -> None:
    """README "Try the embedded cluster with kubectl", command by command: sim serve prints
    the kubeconfig and the admin token and says when incident-925 played out; kubectl lists
    bp-vpa Unknown and its Events ending at HelmChartCreated; scan calls it stuck; doctor
    warns about Flux's default leader-election flags; SIGINT ends it and removes the
    kubeconfig whose token died with it."""
    from fluxwatch.sim.kubectl import find_kubectl

    if find_kubectl() is None:
        pytest.skip("kubectl is not installed (looked for /usr/bin/kubectl and on PATH)")
    serve_line, commands = readme_tryout()
    kubeconfig = tmp_path / "sim.kubeconfig"
    serve = await asyncio.create_subprocess_exec(
        *as_here(serve_line, kubeconfig),
        cwd=tmp_path,
        env=ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert serve.stdout is not None
        banner: list[str] = []
        async with asyncio.timeout(60):
            while not banner or "played out" not in banner[-1]:
                line = (await serve.stdout.readline()).decode()
                assert line, f"sim serve ended early: {banner}"
                banner.append(line.rstrip())
        text = "\n".join(banner)
        assert banner[0].startswith("fluxwatch sim: serving https://127.0.0.1:")
        assert f"kubeconfig:  {kubeconfig}" in text
        token = re.search(r"admin token: (\S+)", text)
        assert token is not None and token[1] in kubeconfig.read_text()
        assert "fluxwatch sim token system:serviceaccount:<ns>:<name>" in text
        assert banner[-1] == (
            "fluxwatch sim: scenario incident-925 played out (1 stuck: flux-system/bp-vpa)"
        )

        outputs = []
        for command in commands:
            proc = await asyncio.create_subprocess_exec(
                *as_here(command, kubeconfig),
                cwd=tmp_path,
                env=ENV,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, f"{command}: {err.decode()}"
            outputs.append(out.decode())
        listed, events, scanned, doctor = outputs
        rows = {line.split()[1]: line.split() for line in listed.splitlines()[1:]}
        assert len(rows) == 35 and rows["bp-vpa"][3] == "Unknown"
        assert [r for r, row in rows.items() if row[3] != "True"] == ["bp-vpa"]
        assert "HelmChartCreated" in events and "InstallSucceeded" not in events, events
        vpa = next(line for line in scanned.splitlines() if " bp-vpa " in line)
        assert vpa.split()[2] == "stuck", scanned
        assert "WARN  leader-election          helm-controller: lease/renew/retry 35s/30s/5s" in (
            doctor
        )
        assert "PASS  version                  helm-controller v1.6.3" in doctor

        serve.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(serve.wait(), 15) == 0
        assert not kubeconfig.exists()
    finally:
        if serve.returncode is None:
            serve.kill()
            await serve.wait()


async def test_sim_serve_with_rbac_prints_each_subjects_token(tmp_path: Path) -> None:
    """With --rbac config/rbac, fluxwatch's ServiceAccount gets a token, printed where a user
    can copy it, and that token is what the server authenticates as that ServiceAccount."""
    kubeconfig = tmp_path / "sim.kubeconfig"
    serve = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        "sim",
        "serve",
        "--rbac",
        str(ROOT / "config" / "rbac"),
        "--kubeconfig-out",
        str(kubeconfig),
        cwd=tmp_path,
        env=ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert serve.stdout is not None
        banner: list[str] = []
        async with asyncio.timeout(30):
            while not banner or "auth can-i" not in banner[-1]:
                banner.append((await serve.stdout.readline()).decode().rstrip())
        url = banner[0].rpartition(" ")[2]
        subject = "system:serviceaccount:fluxwatch-system:fluxwatch"
        [line] = [b for b in banner if b.strip().startswith(subject + ":")]
        token = line.rpartition(" ")[2]
        _, printed, _ = await fluxwatch("sim", "token", subject, cwd=tmp_path)
        assert token == printed.strip()
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        hrs = f"{url}/apis/helm.toolkit.fluxcd.io/v2/helmreleases"
        async with aiohttp.ClientSession() as session:
            # config/rbac lets fluxwatch list HelmReleases cluster-wide; a made-up token is
            # nobody.
            for bearer, status in ((token, 200), ("sim-made-up", 401)):
                async with session.get(
                    hrs, headers={"Authorization": f"Bearer {bearer}"}, ssl=insecure
                ) as response:
                    assert response.status == status, await response.text()
    finally:
        serve.send_signal(signal.SIGINT)
        await asyncio.wait_for(serve.wait(), 15)


async def test_sim_serve_helm_controller_installs_what_you_apply(tmp_path: Path) -> None:
    """--helm-controller on an empty cluster: Flux's Deployments exist, and a HelmRelease
    applied with kubectl is installed, Ready, with helm-controller's Events on it."""
    from fluxwatch.sim.kubectl import find_kubectl

    kubectl = find_kubectl()
    if kubectl is None:
        pytest.skip("kubectl is not installed (looked for /usr/bin/kubectl and on PATH)")
    kubeconfig = tmp_path / "sim.kubeconfig"
    serve = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        "sim",
        "serve",
        "--helm-controller",
        "--time-scale",
        "0.01",
        "--kubeconfig-out",
        str(kubeconfig),
        cwd=tmp_path,
        env=ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def run(*args: str, stdin: bytes | None = None) -> str:
        proc = await asyncio.create_subprocess_exec(
            str(kubectl),
            "--kubeconfig",
            str(kubeconfig),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin)
        assert proc.returncode == 0, f"kubectl {args}: {err.decode()}"
        return out.decode()

    try:
        assert serve.stdout is not None
        await asyncio.wait_for(serve.stdout.readline(), 30)
        deployments = await run("get", "deployments", "-n", "flux-system", "-o", "name")
        assert "deployment.apps/helm-controller" in deployments.split()
        manifest = {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "default"},
            "spec": {
                "interval": "10m",
                "chart": {
                    "spec": {
                        "chart": "podinfo",
                        "version": "6.7.1",
                        "sourceRef": {
                            "kind": "HelmRepository",
                            "name": "podinfo",
                            "namespace": "flux-system",
                        },
                    }
                },
            },
        }
        # Client-side schema validation needs the server's OpenAPI documents, which this
        # test is not about.
        await run("create", "--validate=false", "-f", "-", stdin=json.dumps(manifest).encode())
        await run("wait", "hr/podinfo", "-n", "default", "--for=condition=Ready", "--timeout=30s")
        events = await run("events", "--for", "hr/podinfo", "-n", "default")
        assert "InstallSucceeded" in events
        assert "Helm install succeeded for release default/podinfo.v1" in events
    finally:
        serve.send_signal(signal.SIGINT)
        await asyncio.wait_for(serve.wait(), 15)


FLUX_CRDS = Path(__file__).resolve().parents[3] / "shared" / "flux-crds"


async def test_sim_serve_crd_serves_flux_s_own_definitions(tmp_path: Path) -> None:
    """`--crd` loads any CRD file: Flux's HelmRepository becomes a kind kubectl can use,
    and Flux's published HelmRelease definition replaces the built-in one."""
    from fluxwatch.sim.kubectl import find_kubectl

    kubectl = find_kubectl()
    if kubectl is None:
        pytest.skip("kubectl is not installed (looked for /usr/bin/kubectl and on PATH)")
    repo_crd = FLUX_CRDS / "source.toolkit.fluxcd.io_helmrepositories.yaml"
    hr_crd = FLUX_CRDS / "helm.toolkit.fluxcd.io_helmreleases.yaml"
    if not repo_crd.exists():
        pytest.skip(f"Flux's CRDs are not beside the project ({FLUX_CRDS})")
    kubeconfig = tmp_path / "sim.kubeconfig"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        "sim",
        "serve",
        "--crd",
        str(repo_crd),
        "--crd",
        str(hr_crd),
        "--kubeconfig-out",
        str(kubeconfig),
        cwd=tmp_path,
        env=ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        sub = await asyncio.create_subprocess_exec(
            kubectl,
            "--kubeconfig",
            str(kubeconfig),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await sub.communicate(stdin)
        assert sub.returncode is not None
        return sub.returncode, out.decode(), err.decode()

    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.startswith(b"fluxwatch sim: serving https://127.0.0.1:")
        repo = {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": "podinfo", "namespace": "default"},
            "spec": {"url": "https://stefanprodan.github.io/podinfo", "interval": "10m"},
        }
        code, out, err = await run("apply", "-f", "-", stdin=json.dumps(repo).encode())
        assert code == 0, err
        assert out.strip() == "helmrepository.source.toolkit.fluxcd.io/podinfo created"
        code, out, err = await run("get", "helmrepositories", "-o", "json")
        assert code == 0, err
        [item] = json.loads(out)["items"]
        assert item["spec"]["url"] == repo["spec"]["url"]
        code, out, err = await run("explain", "helmrepository.spec.url")
        assert code == 0 and "FIELD: url <string>" in out, err
        # Flux's own HelmRelease definition is served now: its descriptions explain.
        code, out, err = await run("explain", "helmrelease.spec.interval")
        assert code == 0 and "Interval at which to reconcile the Helm release." in out, out
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# ---- `fluxwatch sim serve`: fault hooks and a restart with the same identity ---------------------


async def _sim_serve(tmp_path: Path, *args: str) -> tuple[asyncio.subprocess.Process, str, str]:
    """Start `sim serve`; return the process, its URL and its admin token from the banner."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fluxwatch",
        "sim",
        "serve",
        *args,
        cwd=tmp_path,
        env=ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    url = token = ""
    while not token:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "sim serve ended before its banner"
        if line.startswith("fluxwatch sim: serving "):
            url = line.split()[-1]
        if line.strip().startswith("admin token:"):
            token = line.split()[-1]
    return proc, url, token


async def _stop(proc: asyncio.subprocess.Process) -> None:
    import signal

    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_sim_serve_fault_hooks_replay_faults_by_hand(tmp_path: Path) -> None:
    """Each hook does to the API what its name says; only the admin token may use them."""
    state = tmp_path / "state"
    proc, url, token = await _sim_serve(tmp_path, "--state-dir", str(state))
    ssl_ctx = ssl.create_default_context(cafile=str(state / "tls.crt"))
    admin = {"Authorization": f"Bearer {token}"}
    hooks = f"{url}/fluxwatch-sim/faults"
    namespaces = f"{url}/api/v1/namespaces"
    try:
        async with aiohttp.ClientSession(
            headers=admin, connector=aiohttp.TCPConnector(ssl=ssl_ctx)
        ) as http:
            async with http.post(f"{hooks}/fail?n=2&code=503&verb=list") as resp:
                assert resp.status == 200, await resp.text()
                answer = await resp.json()
            assert answer["queued"] == 2 and answer["faults"]["failures"][0]["code"] == 503
            statuses = []
            for _ in range(3):
                async with http.get(namespaces) as resp:
                    statuses.append(resp.status)
            assert statuses == [503, 503, 200]

            async with http.post(f"{hooks}/fail?n=1&code=429&retryAfter=7") as resp:
                assert resp.status == 200
            async with http.get(namespaces) as resp:
                assert (resp.status, resp.headers["Retry-After"]) == (429, "7")

            async with http.post(f"{hooks}/latency?seconds=0.3") as resp:
                assert resp.status == 200
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with http.get(namespaces) as resp:
                assert resp.status == 200
            assert loop.time() - started >= 0.3
            async with http.post(f"{hooks}/clear") as resp:
                assert (await resp.json())["faults"] == {"latency": 0.0, "failures": [], "cuts": []}

            # A watch is cut by drop-watches; after compact, resuming from its version is 410.
            async with http.get(namespaces) as resp:
                version = (await resp.json())["metadata"]["resourceVersion"]
            watch = await http.get(f"{namespaces}?watch=true&resourceVersion={version}")
            async with http.post(f"{hooks}/drop-watches") as resp:
                assert (await resp.json())["dropped"] == 1
            with pytest.raises(aiohttp.ClientPayloadError):
                await asyncio.wait_for(watch.read(), 10)
            watch.release()
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "moved"}}
            async with http.post(namespaces, json=body) as resp:
                assert resp.status == 201
            async with http.post(f"{hooks}/compact") as resp:
                assert resp.status == 200
            async with http.get(f"{namespaces}?watch=true&resourceVersion={version}") as resp:
                event = json.loads(await resp.content.readline())
            assert event["type"] == "ERROR" and event["object"]["code"] == 410

            async with http.post(f"{hooks}/fail?n=x") as resp:
                assert resp.status == 400 and "n: expected a number" in await resp.text()
            async with http.post(f"{hooks}/explode") as resp:
                assert resp.status == 404 and "drop-watches" in await resp.text()
        # No token, or another user's: refused, and nothing queued.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_ctx)) as anon:
            async with anon.post(f"{hooks}/fail?n=5") as resp:
                assert resp.status == 403
            sa = {"Authorization": "Bearer wrong"}
            async with anon.post(f"{hooks}/fail?n=5", headers=sa) as resp:
                assert resp.status == 401
            async with anon.get(hooks, headers=admin) as resp:
                assert (await resp.json())["failures"] == []
    finally:
        await _stop(proc)


async def test_sim_serve_restarts_with_the_same_certificate_token_and_address(
    tmp_path: Path,
) -> None:
    """A client configured for the first run (its kubeconfig: CA, token, URL) works with the
    second, whose cluster starts over: an older resourceVersion at the same address."""
    state = tmp_path / "state"
    kubeconfig = tmp_path / "sim.kubeconfig"
    first, url, token = await _sim_serve(
        tmp_path, "--state-dir", str(state), "--kubeconfig-out", str(kubeconfig)
    )
    await _stop(first)
    assert kubeconfig.exists()  # kept: its token and CA stay valid
    ca = (state / "tls.crt").read_bytes()
    second, url_again, token_again = await _sim_serve(tmp_path, "--state-dir", str(state))
    try:
        assert (url_again, token_again) == (url, token)
        assert (state / "tls.crt").read_bytes() == ca
        code, out, err = await fluxwatch(
            "scan", "--kubeconfig", str(kubeconfig), "--output", "json", cwd=tmp_path
        )
        assert code == 0, err
        assert json.loads(out)["releases"] == []  # the new cluster is empty, and reached
    finally:
        await _stop(second)
    assert oct((state / "admin-token").stat().st_mode & 0o777) == "0o600"
    assert oct((state / "tls.key").stat().st_mode & 0o777) == "0o600"
