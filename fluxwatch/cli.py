"""Command line: run, demo, scan, approve, sim serve, check-config, test-alert, doctor, rbac.

Flags use Flux's names where Flux has one (``--watch-label-selector``,
``--log-level``, ``--metrics-addr``, ``--health-addr``). Exit codes: 0 done,
1 failed, 2 invalid settings or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from fluxwatch.settings import Settings, SettingsError, load_settings

EXIT_INVALID = 2


def _flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line flags as a nested dict, the highest settings source."""
    out: dict[str, Any] = {}

    def put(path: str, value: Any) -> None:
        if value is None:
            return
        *groups, leaf = path.split(".")
        node = out
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value

    put("kubeconfig", getattr(args, "kubeconfig", None))
    put("context", getattr(args, "context", None))
    put("watch.namespaces", getattr(args, "watch_namespaces", None))
    put("watch.exclude_namespaces", getattr(args, "exclude_namespaces", None))
    put("watch.label_selector", getattr(args, "watch_label_selector", None))
    put("watch.threshold", getattr(args, "threshold", None))
    put("telemetry.log_level", getattr(args, "log_level", None))
    put("telemetry.log_encoding", getattr(args, "log_encoding", None))
    put("telemetry.metrics_addr", getattr(args, "metrics_addr", None))
    put("telemetry.health_addr", getattr(args, "health_addr", None))
    put("shutdown_timeout", getattr(args, "shutdown_timeout", None))
    if getattr(args, "dry_run", False):
        put("guardrail.dry_run", True)
    return out


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None), _flag_overrides(args))


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML settings file (also FLUXWATCH_CONFIG)")
    p.add_argument("--kubeconfig", help="kubeconfig path (default: in-cluster or KUBECONFIG)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--watch-namespaces", help="comma-separated namespaces (default: all)")
    p.add_argument("--exclude-namespaces", help="comma-separated namespaces to leave out")
    p.add_argument("--watch-label-selector", help="only HelmReleases matching this selector")
    p.add_argument("--threshold", help="stuck threshold, e.g. 5m")
    p.add_argument("--log-level", choices=["debug", "info", "error"])
    p.add_argument("--log-encoding", choices=["json", "console"])


class _VersionAction(argparse.Action):
    """``--version``: the version and git revision, exit 0. The revision may ask git, so
    it is looked up only when asked for, not each time the parser is built."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        from fluxwatch.version import version_text

        print(version_text())
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluxwatch",
        description="Recovers Flux HelmReleases stuck at Ready=Unknown; watches Flux's Leases.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    _add_common(run)
    run.add_argument("--metrics-addr", help="[host]:port for /metrics (default :8080)")
    run.add_argument("--health-addr", help="[host]:port for /healthz and /readyz (default :9440)")
    run.add_argument("--shutdown-timeout", help="how long SIGTERM may take (default 30s)")
    run.add_argument("--dry-run", action="store_true", help="decide and alert, never write")

    scan = sub.add_parser("scan", help="one pass over every HelmRelease: verdicts and reasons")
    _add_common(scan)
    scan.add_argument("--output", choices=["table", "json"], default="table")
    scan.add_argument("--recover", action="store_true", help="run the recovery ladder once")

    demo = sub.add_parser("demo", help="replay incident-925 against the embedded cluster")
    demo.add_argument(
        "--time-scale",
        type=float,
        default=0.02,
        help="cluster time compression (0.02: 5m become 6s)",
    )
    demo.add_argument("--scenario", default="incident-925")

    _add_approve(sub)

    check = sub.add_parser("check-config", help="print the effective settings, secrets masked")
    check.add_argument("file", nargs="?", help="YAML settings file")

    doctor = sub.add_parser(
        "doctor", help="audit the cluster: Flux leader election, memory, API, permissions"
    )
    _add_common(doctor)
    doctor.add_argument(
        "--flux-namespace", help="where the Flux controllers run (default: leases.namespace)"
    )
    doctor.add_argument(
        "--events-address",
        help="notification-controller's event address (default: a flux provider's address, "
        "else http://notification-controller.flux-system.svc.cluster.local./)",
    )
    doctor.add_argument("--output", choices=["text", "json"], default="text")

    test_alert = sub.add_parser("test-alert", help="send one test event through the providers")
    _add_common(test_alert)
    test_alert.add_argument("--provider", help="only this provider")

    rbac = sub.add_parser(
        "rbac", help="print the Roles and bindings these settings need (YAML for kubectl apply)"
    )
    _add_common(rbac)
    rbac.add_argument(
        "--helm-storage",
        choices=["none", "namespaced", "cluster"],
        default="none",
        help="where fluxwatch may list Secrets to check Helm storage (default: none, "
        "status.history decides; listing Secrets returns their data)",
    )
    rbac.add_argument(
        "--storage-namespace",
        action="append",
        default=[],
        help="a namespace holding Helm storage, for --helm-storage namespaced (repeatable; "
        "default: watch.namespaces)",
    )
    rbac.add_argument(
        "--service-account", default="fluxwatch", help="fluxwatch's ServiceAccount name"
    )
    rbac.add_argument(
        "--approver-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="also let GROUP run `fluxwatch approve` (get and patch of the leader Lease, "
        "create of selfsubjectreviews), repeatable",
    )
    rbac.add_argument(
        "--approver-user",
        action="append",
        default=[],
        metavar="USER",
        help="the same for one user, repeatable",
    )

    sim = sub.add_parser("sim", help="the embedded cluster: a Kubernetes API emulator")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    _add_sim_serve(sim_sub)
    token = sim_sub.add_parser(
        "token",
        help="print the bearer token of a user or ServiceAccount of `sim serve --rbac`",
        description="Tokens of the embedded cluster are derived from the subject, so they are "
        "the same on every run: the token a `sim serve --rbac FILE` grants to a subject its "
        "bindings name. A subject no binding names is not known to the server (401).",
    )
    token.add_argument(
        "subject",
        help="system:serviceaccount:<namespace>:<name>, or a user name",
    )
    return parser


def _incident(text: str) -> str:
    """An argparse type: an incident id, or a usage error saying what is wrong with it."""
    from fluxwatch.kube.approvals import ApprovalError, check_incident

    try:
        return check_incident(text)
    except ApprovalError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_approve(sub: Any) -> argparse.ArgumentParser:
    approve = sub.add_parser(
        "approve",
        help="approve an incident the batch guardrail refused: the leader recovers it once",
        description="Approve, once, the recovery of an incident that fluxwatch's batch "
        "guardrail refused (its GuardrailTripped alert names the incident). The API server "
        "says who you are (a SelfSubjectReview, as `kubectl auth whoami`); the approval is "
        "one annotation, fluxwatch.io/approve.INCIDENT, on fluxwatch's leader Lease, which "
        "the leading replica reads at its next renewal and records as an IncidentApproved "
        "event. The recovery budget and dependency order still apply. Needs get and patch "
        "on that Lease and create on selfsubjectreviews (config/components/approver).",
    )
    _add_common(approve)
    approve.add_argument(
        "incident", type=_incident, help="the incident id, e.g. inc-20260127t184512"
    )
    approve.add_argument(
        "--reason", default="", help="why: kept with the approval and in its event"
    )
    approve.add_argument(
        "--as", dest="as_user", metavar="USER", help="approve as USER (impersonation, as kubectl)"
    )
    approve.add_argument(
        "--as-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="with --as: the group to impersonate, repeatable",
    )
    approve.set_defaults(approve_parser=approve)
    return approve


# Scenario names, as `fluxwatch.sim.scenarios.SCENARIOS` has them; listed here so that the
# parser does not import the emulator (aiohttp, the store) for every command.
SIM_SCENARIOS = ("incident-925", "healthy", "mass-outage", "blip-failures", "load")
# Scenarios that drive their own simulated helm-controller.
CATALOG_SCENARIOS = ("incident-925", "healthy", "mass-outage", "blip-failures")

_SIM_SERVE_EPILOG = """\
examples:
  fluxwatch sim serve --scenario incident-925 --time-scale 0.02 --kubeconfig-out /tmp/sim.kubeconfig
      the seed's incident in about 3 seconds; then, in another terminal:
      kubectl --kubeconfig /tmp/sim.kubeconfig get helmreleases -A
  fluxwatch sim serve --helm-controller --rbac config/rbac
      an empty cluster with Flux installed and a helm-controller that installs what you
      apply; fluxwatch's ServiceAccount gets a token (printed), its RBAC from config/rbac
  fluxwatch sim serve --state-dir /tmp/sim --kubeconfig-out /tmp/sim.kubeconfig
      stop it and start it again with the same --state-dir: same address, certificate
      and admin token, so a running fluxwatch reconnects (to an empty cluster, like one
      whose etcd was restored to nothing)

fault hooks (loopback clients with the admin token only; answers are JSON):
  URL=https://127.0.0.1:PORT/fluxwatch-sim/faults  AUTH="Authorization: Bearer <admin token>"
  curl -k -H "$AUTH" $URL                                 what is queued, the latency
  curl -k -H "$AUTH" -X POST $URL/drop-watches            cut every open watch (?clean=true:
                                                          end them as a timeout does)
  curl -k -H "$AUTH" -X POST "$URL/fail?n=5&code=503"     fail the next 5 API requests as a
      real server does (code 429, 500, 503 or 504; &retryAfter=S for a 429's or 503's
      Retry-After, &verb=list|watch|patch..., &resource=
      helmreleases.helm.toolkit.fluxcd.io to fail only those)
  curl -k -H "$AUTH" -X POST "$URL/cut?verb=patch"        cut the next patch's connection
      after it is served: it lands, its answer is lost (&served=false: before)
  curl -k -H "$AUTH" -X POST "$URL/latency?seconds=2"     2 s before every API request
  curl -k -H "$AUTH" -X POST $URL/compact                 expire the watch history (410s)
  curl -k -H "$AUTH" -X POST $URL/clear                   no failures queued, no latency
"""


def _positive(kind: type[int] | type[float]) -> Any:
    """An argparse type: a number above zero (a time scale of 0 would spin, not pause)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _add_sim_serve(sim_sub: Any) -> argparse.ArgumentParser:
    serve = sim_sub.add_parser(
        "serve",
        help="serve the Kubernetes API emulator until Ctrl-C",
        description="Serve the embedded Kubernetes API (HTTPS on loopback) that fluxwatch's "
        "tests use, for kubectl and fluxwatch. It prints its URL, the kubeconfig it wrote "
        "and the tokens it accepts, and a line when the scenario has played out.",
        epilog=_SIM_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: 0, any free port)"
    )
    serve.add_argument(
        "--kubeconfig-out",
        type=Path,
        metavar="PATH",
        help="write a kubeconfig for this server here, with the admin token; removed again "
        "on exit (default: ./fluxwatch-sim.kubeconfig)",
    )
    serve.add_argument(
        "--scenario",
        choices=SIM_SCENARIOS,
        help="what the cluster holds: incident-925 (the seed's incident: 35 HelmReleases, "
        "helm-controller loses its Lease mid-install, bp-vpa stays Ready=Unknown), healthy "
        "(the same 35, all Ready, on Flux with the seed's 60s/40s/5s mitigation), "
        "mass-outage (15 stuck at once, past the guardrail), load (--releases Ready "
        "HelmReleases written at once, no helm-controller); default: an empty cluster",
    )
    serve.add_argument(
        "--releases",
        type=_positive(int),
        default=1000,
        metavar="N",
        help="how many HelmReleases --scenario load writes (default: 1000)",
    )
    serve.add_argument(
        "--time-scale",
        type=_positive(float),
        default=1.0,
        metavar="F",
        help="multiply every cluster duration (Helm installs, Lease timings) by F: 0.02 "
        "replays the incident's minutes in seconds, a 35s Lease lasting 0.7s; the times "
        "written into objects stay real wall-clock times (default: 1, real time)",
    )
    serve.add_argument(
        "--helm-controller",
        action="store_true",
        help="with no --scenario: install Flux and run the simulated helm-controller, which "
        "installs the HelmReleases you apply and records its Events on them. The catalog "
        "scenarios (incident-925, healthy, mass-outage, blip-failures) always run their "
        "own, so this changes nothing there; with load it is refused (it would install "
        "every release again)",
    )
    serve.add_argument(
        "--rbac",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="RBAC YAML (Roles, ClusterRoles and their bindings; a file or a kustomize "
        "directory such as config/rbac), repeatable. Every subject a binding names gets a "
        "bearer token, printed at start; without --rbac only the admin token exists",
    )
    serve.add_argument(
        "--crd",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="CustomResourceDefinitions to serve (YAML, e.g. Flux's published CRDs), "
        "repeatable; applied at start like `kubectl apply -f`, so a definition named like "
        "the built-in HelmRelease one (helmreleases.helm.toolkit.fluxcd.io) replaces it",
    )
    serve.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="keep the TLS certificate, the admin token and the port in DIR (created if "
        "missing) and reuse them on the next start with the same DIR, so clients configured "
        "for this server trust and reach the restarted one; the cluster's objects are not "
        "kept, and the kubeconfig is then left in place on exit",
    )
    # Usage errors found after parsing are reported by this parser, with its usage line.
    serve.set_defaults(serve_parser=serve)
    return serve


def _sim_banner(server: Any, path: Path, subjects: list[str]) -> list[str]:
    """What a first-time user needs to talk to the cluster, in the order they need it."""
    lines = [
        f"fluxwatch sim: serving {server.url}",
        f"  kubeconfig:  {path} (context fluxwatch-sim, as the admin)",
        f"  try:         kubectl --kubeconfig {path} get helmreleases -A",
        f"  admin token: {server.admin_token}",
        f"               kubectl --server {server.url} --insecure-skip-tls-verify "
        f"--token {server.admin_token} get ns",
    ]
    if subjects:
        lines.append("  tokens of the --rbac subjects (valid on every run):")
        lines += [f"    {subject}: {server.token_for(subject)}" for subject in subjects]
        lines.append(
            f"    as one of them: kubectl --kubeconfig {path} --token <token> auth can-i --list"
        )
    else:
        lines.append(
            "  ServiceAccount tokens: none without --rbac; pass --rbac config/rbac for "
            "fluxwatch's, then `fluxwatch sim token system:serviceaccount:<ns>:<name>`"
        )
    return lines


def apply_crd(store: Any, crd: dict[str, Any]) -> None:
    """Create a CRD, or replace the one of the same name, as ``kubectl apply`` would."""
    from fluxwatch.sim.customresources import CRD_KEY
    from fluxwatch.sim.store import ApiError

    try:
        store.create(CRD_KEY, crd)
    except ApiError as err:
        if err.code != 409:
            raise
        current = store.get(CRD_KEY, None, crd["metadata"]["name"])
        replacement = {**crd, "metadata": {**crd["metadata"]}}
        replacement["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        store.update(CRD_KEY, replacement)


def _read_crds(serve_parser: argparse.ArgumentParser, paths: list[Path]) -> list[dict[str, Any]]:
    """The CRDs of every --crd file; a file that cannot be read or holds none is a
    usage error."""
    import yaml

    from fluxwatch.sim.customresources import load_crd_file

    crds: list[dict[str, Any]] = []
    for path in paths:
        try:
            found = load_crd_file(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            serve_parser.error(f"--crd {path}: {exc}")
        if not found:
            serve_parser.error(f"--crd {path}: no CustomResourceDefinition in the file")
        crds.extend(found)
    return crds


class SimState:
    """What ``sim serve --state-dir`` keeps between runs: certificate, admin token, port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cert, self.key = folder / "tls.crt", folder / "tls.key"
        self.token_file, self.port_file = folder / "admin-token", folder / "port"

    def load(self) -> tuple[tuple[Path, Path], str, int]:
        """(certificate, key), admin token and port (0 the first time), made as needed."""
        import secrets
        import shutil

        from fluxwatch.sim import certs

        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not (self.cert.is_file() and self.key.is_file()):
            cert, key = certs.self_signed()
            shutil.move(cert, self.cert)
            shutil.move(key, self.key)
            self.key.chmod(0o600)
        if not self.token_file.is_file():
            self.token_file.write_text(f"sim-admin-{secrets.token_hex(16)}\n")
            self.token_file.chmod(0o600)
        token = self.token_file.read_text().strip()
        text = self.port_file.read_text().strip() if self.port_file.is_file() else ""
        return (self.cert, self.key), token, int(text) if text.isdigit() else 0

    def save_port(self, port: int) -> None:
        self.port_file.write_text(f"{port}\n")


async def _sim_serve(args: argparse.Namespace) -> int:
    import signal

    from fluxwatch.sim import rbac, scenarios
    from fluxwatch.sim.apiserver import ApiServer
    from fluxwatch.sim.store import ApiError

    certificate, token, port = None, None, args.port
    state = SimState(args.state_dir) if args.state_dir is not None else None
    if state is not None:
        certificate, token, kept_port = state.load()
        port = args.port or kept_port
    # TLS: kubectl sends a bearer token only over https. Bookmarks and compaction run
    # on the scenario's clock, like every other duration.
    server = ApiServer(
        host=args.host,
        port=port,
        admin_token=token,
        rbac_files=args.rbac,
        tls=True,
        time_scale=args.time_scale,
        certificate=certificate,
        control=True,
    )
    await server.start()
    if state is not None:
        state.save_port(server.port)
    run = None
    helm = None
    announce: asyncio.Task[None] | None = None
    path: Path = args.kubeconfig_out
    try:
        for crd in args.crds:
            try:
                apply_crd(server.store, crd)
            except ApiError as err:
                name = (crd.get("metadata") or {}).get("name", "?")
                print(f"fluxwatch: --crd {name}: {err.message}", file=sys.stderr)
                return 2
        if args.scenario:
            params: dict[str, Any] = {"n": args.releases} if args.scenario == "load" else {}
            run = await scenarios.start(
                args.scenario, server.store, time_scale=args.time_scale, **params
            )
        elif args.helm_controller:
            from fluxwatch.sim.fluxinstall import install_flux
            from fluxwatch.sim.helmcontroller import HelmController

            install_flux(server.store, scenarios.FLUX_CONTROLLERS)
            helm = HelmController(server.store, time_scale=args.time_scale)
            await helm.start()
        server.write_kubeconfig(path)
        # Before the banner: whoever read it may signal at once.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        subjects = rbac.binding_subjects(rbac.load_documents(args.rbac or []))
        for line in _sim_banner(server, path, subjects):
            print(line, flush=True)
        if args.scenario in CATALOG_SCENARIOS and args.helm_controller:
            print(f"  --helm-controller: {args.scenario} runs its own", flush=True)
        if run is not None:
            announce = asyncio.create_task(_announce(run))
        await stop.wait()
        return 0
    finally:
        if announce is not None:
            announce.cancel()
        if helm is not None:
            await helm.stop()
        if run is not None:
            await run.stop()
        await server.stop()


async def _announce(run: Any) -> None:
    """One line once the scenario has played out: a script (or a person) waits for it."""
    await run.wait()
    stuck = ", ".join(f"{ns}/{name}" for ns, name in run.expected_stuck)
    what = f"{len(run.expected_stuck)} stuck: {stuck}" if stuck else "nothing stuck"
    print(f"fluxwatch sim: scenario {run.name} played out ({what})", flush=True)


async def _run(settings: Settings) -> int:
    from fluxwatch.app import run_daemon

    return await run_daemon(settings)


async def _check_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.file)
    dumped = settings.model_dump(mode="json", by_alias=True)
    print(orjson.dumps(dumped, option=orjson.OPT_INDENT_2).decode())
    for line in settings.notify.deprecations():
        print(f"warning: notify: {line}", file=sys.stderr)
    return 0


async def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from fluxwatch.doctor import Finding, Level, as_json, exit_code, render, run_doctor
    from fluxwatch.kube.client import KubeClient

    try:
        client = await KubeClient.from_config(settings.kubeconfig, settings.context)
    except Exception as exc:  # no kubeconfig, no in-cluster config: that is the finding
        findings = [Finding("api", Level.FAIL, f"no Kubernetes client: {exc}")]
    else:
        try:
            findings = await run_doctor(
                settings,
                client,
                flux_namespace=args.flux_namespace,
                events_addr=args.events_address,
            )
        finally:
            await client.close()
    if args.output == "json":
        print(orjson.dumps(as_json(findings), option=orjson.OPT_INDENT_2).decode())
    else:
        print(render(findings))
    return exit_code(findings)


async def _test_alert(args: argparse.Namespace, settings: Settings) -> int:
    from fluxwatch.kube.client import KubeClient
    from fluxwatch.kube.patch import KubeEventWriter, KubeSecretReader
    from fluxwatch.notify.testalert import send_test_alert

    client = None
    try:
        client = await KubeClient.from_config(settings.kubeconfig, settings.context)
    except Exception as exc:  # no cluster: providers without Kubernetes still work
        print(f"note: no Kubernetes client ({exc}); secretRef and kubernetes-event unavailable")
    try:
        results = await send_test_alert(
            settings.notify,
            args.provider,
            namespace=settings.leader.namespace,
            secret_reader=KubeSecretReader(client) if client else None,
            event_writer=KubeEventWriter(client) if client else None,
        )
    finally:
        if client is not None:
            await client.close()
    failed = 0
    for r in results:
        status = f" HTTP {r.status}" if r.status else ""
        if r.ok:
            print(f"{r.provider}: delivered{status} in {r.latency_s * 1000:.0f}ms")
        else:
            failed += 1
            print(f"{r.provider}: FAILED{status} after {r.latency_s * 1000:.0f}ms: {r.error}")
    if not results:
        print("no providers configured")
        return 1
    return 1 if failed else 0


async def _approve(args: argparse.Namespace, settings: Settings) -> int:
    from fluxwatch.kube.approvals import Approval, ApprovalError
    from fluxwatch.kube.approver import whoami, write_approval
    from fluxwatch.kube.client import Impersonation, KubeApiError, KubeClient, KubeError
    from fluxwatch.settings import leader_lease_name

    if not settings.leader.enabled:
        print(
            "fluxwatch: approve: leader.enabled is false in these settings; approvals are "
            "read from the leader Lease, so they need leader election on",
            file=sys.stderr,
        )
        return EXIT_INVALID
    namespace, name = settings.leader.namespace, leader_lease_name(settings)
    lease = f"Lease {namespace}/{name}"
    impersonate = Impersonation(args.as_user, tuple(args.as_group)) if args.as_user else None
    try:
        client = await KubeClient.from_config(
            settings.kubeconfig, settings.context, impersonate=impersonate
        )
    except Exception as exc:  # no kubeconfig, no in-cluster config
        print(f"fluxwatch: approve: no Kubernetes client: {exc}", file=sys.stderr)
        return 1
    try:
        user, server_time = await whoami(client)
        at = time.time() if server_time is None else server_time
        approval = Approval.new(args.incident, user, at, args.reason)
        before, _after = await write_approval(client, namespace, name, approval)
    except KubeApiError as exc:
        print(f"fluxwatch: approve: {exc}", file=sys.stderr)
        if exc.forbidden:
            print(
                f"fluxwatch: approve: approving needs get and patch on {lease} and create "
                "on selfsubjectreviews.authentication.k8s.io (config/components/approver)",
                file=sys.stderr,
            )
        return 1
    except (KubeError, ApprovalError) as exc:
        print(f"fluxwatch: approve: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    meta = before.get("metadata") or {}
    holder = (before.get("spec") or {}).get("holderIdentity") or ""
    print(f"approved incident {approval.incident} as {user}")
    print(f"  wrote annotation {approval.key} on {lease}")
    if approval.reason:
        print(f"  reason: {approval.reason}")
    earlier = (meta.get("annotations") or {}).get(approval.key)
    if earlier is not None:
        print("  it replaces the approval of this incident that was there (a new token)")
    if holder:
        print(
            f"  the leader, {holder}, reads it at its next renewal (every "
            f"{settings.leader.retry_period:g}s) and records an IncidentApproved event:"
        )
    else:
        print("  no replica leads right now: the next leader reads it and records an")
        print("  IncidentApproved event:")
    print(f"    kubectl get events -n {namespace} --field-selector reason=IncidentApproved")
    return 0


def _rbac(args: argparse.Namespace, settings: Settings) -> int:
    import yaml

    from fluxwatch.rbac import (
        HelmStorage,
        RbacError,
        approver_manifests,
        exposure,
        manifests,
        storage_namespaces,
    )
    from fluxwatch.rbac import warnings as rbac_warnings

    shape = HelmStorage(args.helm_storage)
    try:
        docs = manifests(
            settings,
            helm_storage=shape,
            storage_in=args.storage_namespace,
            service_account=args.service_account,
        )
        where = (
            storage_namespaces(settings, args.storage_namespace) if shape == "namespaced" else []
        )
        if args.approver_group or args.approver_user:
            docs += approver_manifests(
                settings, users=args.approver_user, groups=args.approver_group
            )
    except RbacError as exc:
        print(f"fluxwatch: {exc}", file=sys.stderr)
        return EXIT_INVALID
    for warning in rbac_warnings(settings, shape):
        print(f"fluxwatch: warning: {warning}", file=sys.stderr)
    print(f"# fluxwatch rbac --helm-storage {shape}: Secrets readable: {exposure(shape, where)}.")
    print(yaml.safe_dump_all(docs, sort_keys=False), end="")
    return 0


def _check_approve(args: argparse.Namespace) -> None:
    """Usage errors argparse cannot see alone; they exit 2 before any request."""
    from fluxwatch.kube.approvals import MAX_REASON

    parser: argparse.ArgumentParser = args.approve_parser
    if args.as_group and not args.as_user:
        parser.error("--as-group needs --as: a group is impersonated along with a user")
    if len(args.reason) > MAX_REASON:
        parser.error(f"--reason is {len(args.reason)} characters long, at most {MAX_REASON}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    from fluxwatch.telemetry.logs import setup_logging

    try:
        if args.command == "sim":
            if args.sim_command == "token":
                from fluxwatch.sim.rbac import token_for_subject

                print(token_for_subject(args.subject))
                return 0
            if args.helm_controller and args.scenario == "load":
                args.serve_parser.error(
                    "--helm-controller with --scenario load: load's releases are written "
                    "installed, a helm-controller would install every one again"
                )
            args.crds = _read_crds(args.serve_parser, args.crd)
            setup_logging("info", "console")
            args.kubeconfig_out = args.kubeconfig_out or Path.cwd() / "fluxwatch-sim.kubeconfig"
            try:
                return asyncio.run(_sim_serve(args))
            finally:
                # Its token died with the server (unless --state-dir keeps it for the next
                # start); a stale file would only mislead.
                if args.state_dir is None:
                    args.kubeconfig_out.unlink(missing_ok=True)
        if args.command == "check-config":
            return asyncio.run(_check_config(args))
        if args.command == "demo":
            from fluxwatch.demo import run_demo

            setup_logging("error", "console")
            return asyncio.run(run_demo(time_scale=args.time_scale, scenario=args.scenario))
        if args.command == "approve":
            _check_approve(args)
        settings = _settings(args)
        if args.command == "rbac":  # offline, prints YAML: nothing to log
            return _rbac(args, settings)
        setup_logging(settings.telemetry.log_level, settings.telemetry.log_encoding)
        if args.command == "run":
            return asyncio.run(_run(settings))
        if args.command == "scan":
            from fluxwatch.scan import run_scan

            return asyncio.run(run_scan(settings, output=args.output, recover=args.recover))
        if args.command == "doctor":
            return asyncio.run(_doctor(args, settings))
        if args.command == "approve":
            return asyncio.run(_approve(args, settings))
        if args.command == "test-alert":
            return asyncio.run(_test_alert(args, settings))
    except SettingsError as exc:
        print(f"fluxwatch: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command!r}")
    return EXIT_INVALID
