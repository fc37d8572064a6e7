"""What the machine's kubectl sends: a loopback HTTP server that records request
bodies, and the kubectl commands whose protobuf bodies the tests decode.

The recorder answers just enough discovery for kubectl to resolve ``secrets`` and
``configmaps``, and refuses every write after recording it, so nothing here depends
on the emulator whose decoding is under test.

Run as a script to record the fixtures again (after a kubectl upgrade):
``/work/main/.venv/bin/python tests/unit/kubectl_recorder.py`` writes
``tests/fixtures/protobuf/<name>.bin`` (the body kubectl sent) and, where kubectl
can print it, ``<name>.json`` (the same object from ``--dry-run=client -o json``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from fluxwatch.sim import kubeconfig
from fluxwatch.sim.kubectl import Kubectl, find_kubectl

FIXTURES = Path(__file__).parent.parent / "fixtures" / "protobuf"

# name -> kubectl arguments; "{binary}" is a file made for the run. (create secret tls
# is captured live only: a recorded body would hold a private key.)
COMMANDS: dict[str, tuple[str, ...]] = {
    "namespace": ("create", "namespace", "x"),
    "secret-generic": (
        "create", "secret", "generic", "s", "-n", "x",
        "--from-literal=a=b", "--from-literal=empty=", "--type=Opaque",
    ),
    "secret-docker-registry": (
        "create", "secret", "docker-registry", "d", "--docker-server=r.io",
        "--docker-username=u", "--docker-password=p", "--docker-email=u@r.io",
    ),
    "configmap": (
        "create", "configmap", "c", "--from-literal=a=b", "--from-file=blob={binary}",
    ),
    "serviceaccount": ("create", "serviceaccount", "sa"),
    "token": ("create", "token", "sa"),
    "token-bound": (
        "create", "token", "sa", "--audience=a", "--audience=b", "--duration=10m",
        "--bound-object-kind=Secret", "--bound-object-name=s", "--bound-object-uid=0d4691ed",
    ),
    "can-i": ("auth", "can-i", "get", "secrets/s", "-n", "x"),
    "can-i-non-resource": ("auth", "can-i", "get", "/logs"),
    "whoami": ("auth", "whoami"),
    "role": (
        "create", "role", "r", "--verb=get,list", "--resource=secrets,configmaps",
        "--resource-name=a",
    ),
    "clusterrole": ("create", "clusterrole", "cr", "--verb=get", "--non-resource-url=/logs/*"),
    "clusterrole-aggregated": ("create", "clusterrole", "agg", "--aggregation-rule=a=b,c=d"),
    "rolebinding": (
        "create", "rolebinding", "rb", "--role=r", "--user=u", "--group=g",
        "--serviceaccount=default:sa",
    ),
    "clusterrolebinding": ("create", "clusterrolebinding", "crb", "--clusterrole=cr", "--user=u"),
    "deployment": (
        "create", "deployment", "dep", "--image=nginx", "--replicas=2", "--port=80",
        "--", "nginx", "-g", "daemon off;",
    ),
    "service-clusterip": ("create", "service", "clusterip", "svc", "--tcp=80:8080,443:https"),
    "service-nodeport": ("create", "service", "nodeport", "np", "--tcp=80:80", "--node-port=30080"),
    "service-externalname": ("create", "service", "externalname", "en", "--external-name=x.io"),
    "pdb-min-available": ("create", "pdb", "p", "--selector=a=b", "--min-available=50%"),
    "pdb-max-unavailable": ("create", "pdb", "q", "--selector=a in (b)", "--max-unavailable=1"),
}  # fmt: skip

# Commands without --dry-run: their JSON is written out in the tests instead.
NO_DRY_RUN = frozenset({"token", "token-bound", "can-i", "can-i-non-resource", "whoami"})

_RESOURCES = [
    {"name": plural, "singularName": kind.lower(), "namespaced": True, "kind": kind, "verbs": []}
    for plural, kind in (("secrets", "Secret"), ("configmaps", "ConfigMap"))
]
_DISCOVERY: dict[str, Any] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "v1",
        "resources": _RESOURCES,
    },
}


@dataclass(frozen=True, slots=True)
class Recorded:
    method: str
    path: str
    content_type: str
    accept: str
    body: bytes


class Recorder:
    """The bodies of the writes kubectl sent, in order."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []

    async def handle(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            doc = _DISCOVERY.get(request.path)
            if doc is None:
                return web.json_response({"kind": "Status", "code": 404}, status=404)
            return web.json_response(doc)
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                request.headers.get("Content-Type", ""),
                request.headers.get("Accept", ""),
                await request.read(),
            )
        )
        status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403}
        return web.json_response({**status, "message": "recorded"}, status=403)


@asynccontextmanager
async def recording_kubectl(tmp: Path) -> AsyncIterator[tuple[Recorder, Kubectl]]:
    """A recorder on a free loopback port and the machine's kubectl pointed at it."""
    binary = find_kubectl()
    if binary is None:
        raise FileNotFoundError("kubectl is not installed (looked for /usr/bin/kubectl and PATH)")
    recorder = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        config = kubeconfig.write_kubeconfig(tmp / "kubeconfig", f"http://127.0.0.1:{port}", "-")
        yield recorder, Kubectl(binary, config, tmp / "cache")
    finally:
        await runner.cleanup()


def command(name: str, tmp: Path) -> list[str]:
    """The arguments of ``COMMANDS[name]``, with the files it reads made in ``tmp``."""
    binary = tmp / "blob.bin"
    binary.write_bytes(bytes(range(256)))
    return [arg.replace("{binary}", str(binary)) for arg in COMMANDS[name]]


async def capture(kubectl: Kubectl, recorder: Recorder, args: list[str]) -> Recorded:
    """The one write ``kubectl args`` sends."""
    before = len(recorder.requests)
    await kubectl(*args)
    sent = recorder.requests[before:]
    if len(sent) != 1:
        raise AssertionError(f"kubectl {' '.join(args)} sent {len(sent)} writes, not one")
    return sent[0]


async def dry_run_json(kubectl: Kubectl, args: list[str]) -> dict[str, Any]:
    """The object ``kubectl args`` sends, as kubectl prints it in JSON."""
    # The flags go before a "--", after which come a container's command words.
    cut = args.index("--") if "--" in args else len(args)
    flags = ["--dry-run=client", "-o", "json"]
    done = (await kubectl(*args[:cut], *flags, *args[cut:])).check()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def _record(tmp: Path) -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    async with recording_kubectl(tmp) as (recorder, kubectl):
        for name in COMMANDS:
            args = command(name, tmp)
            sent = await capture(kubectl, recorder, args)
            (FIXTURES / f"{name}.bin").write_bytes(sent.body)
            if name not in NO_DRY_RUN:
                obj = await dry_run_json(kubectl, args)
                text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
                (FIXTURES / f"{name}.json").write_text(text)
            print(f"{name}: {sent.method} {sent.path} {sent.content_type} {len(sent.body)} bytes")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_record(Path(folder)))
