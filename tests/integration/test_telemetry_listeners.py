"""The telemetry server listens on IPv4, IPv6 or both, as its address says.

Specific addresses are tried on this host's loopback. The wildcards (``:0``,
``[::]:0``, ``0.0.0.0:0``) bind every interface, so they are tried in a network
namespace of their own (``unshare --net``) whose only interface is loopback: a
probe over ``127.0.0.1`` and over ``::1`` shows which families a wildcard serves,
and nothing outside the namespace can reach it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from fluxwatch.app import Daemon, build_router
from fluxwatch.kube.client import KubeClient
from fluxwatch.settings import Settings
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.telemetry.metrics import Metrics
from fluxwatch.telemetry.server import TelemetryServer

ROOT = Path(__file__).resolve().parents[2]


async def _get(host: str, port: int, path: str) -> str:
    """The status line of GET ``path``, or the connection error's name."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        return type(exc).__name__
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    status = (await reader.readline()).decode().strip()
    writer.close()
    await writer.wait_closed()
    return status


def _server(metrics_addr: str, health_addr: str) -> TelemetryServer:
    return TelemetryServer(
        CollectorRegistry(),
        metrics_addr=metrics_addr,
        health_addr=health_addr,
        live={"loop": lambda: True},
        ready={"informer": lambda: True},
    )


async def test_ipv4_and_ipv6_loopback_addresses() -> None:
    server = _server("127.0.0.1:0", "[::1]:0")
    await server.start()
    try:
        metrics, health = server.ports["metrics"], server.ports["health"]
        assert await _get("127.0.0.1", metrics, "/metrics") == "HTTP/1.1 200 OK"
        assert await _get("::1", health, "/healthz") == "HTTP/1.1 200 OK"
        assert await _get("::1", health, "/readyz") == "HTTP/1.1 200 OK"
        # Each address is that address only.
        assert await _get("::1", metrics, "/metrics") == "ConnectionRefusedError"
        assert await _get("127.0.0.1", health, "/healthz") == "ConnectionRefusedError"
        assert [s[0] for s in server.sockets["health"]] == ["::1"]
    finally:
        await server.stop()


async def test_one_address_for_both_is_one_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = _server(f"127.0.0.1:{port}", f"127.0.0.1:{port}")
    await server.start()
    try:
        assert server.ports == {"metrics": port, "health": port}
        assert await _get("127.0.0.1", port, "/metrics") == "HTTP/1.1 200 OK"
        assert await _get("127.0.0.1", port, "/readyz") == "HTTP/1.1 200 OK"
    finally:
        await server.stop()


async def test_a_name_listens_on_every_address_it_resolves_to() -> None:
    resolved = {
        info[4][0]
        for info in socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)
        if info[4][0] in ("127.0.0.1", "::1")
    }
    server = _server("localhost:0", "127.0.0.1:0")
    await server.start()
    try:
        assert {s[0] for s in server.sockets["metrics"]} == resolved
        # One port for all of them, even when asked for port 0.
        assert len({s[1] for s in server.sockets["metrics"]}) == 1
        for host in resolved:
            assert await _get(host, server.ports["metrics"], "/metrics") == "HTTP/1.1 200 OK"
    finally:
        await server.stop()


async def test_an_address_in_use_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = _server("127.0.0.1:0", f"127.0.0.1:{port}")
        with pytest.raises(OSError, match=rf"cannot listen on 127\.0\.0\.1:{port}: "):
            await server.start()
        await server.stop()


# Runs inside the namespace: serve on each wildcard, probe both loopbacks, print JSON. It
# imports the server alone (not this module, which pulls in the daemon) to start fast.
_IN_NAMESPACE = textwrap.dedent(
    """
    import asyncio, json, sys
    sys.path[:0] = json.loads(sys.argv[1])
    from prometheus_client import CollectorRegistry
    from fluxwatch.telemetry.server import TelemetryServer

    async def get(host, port):
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            return type(exc).__name__
        writer.write(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
        status = (await reader.readline()).decode().strip()
        writer.close()
        return status

    async def main():
        seen = {}
        for addr in (":0", "[::]:0", "0.0.0.0:0"):
            server = TelemetryServer(
                CollectorRegistry(), metrics_addr=addr, health_addr="127.0.0.1:0",
                live={}, ready={},
            )
            await server.start()
            port = server.ports["metrics"]
            seen[addr] = {
                "v4": await get("127.0.0.1", port),
                "v6": await get("::1", port),
                "sockets": len(server.sockets["metrics"]),
            }
            await server.stop()
        print(json.dumps(seen))

    asyncio.run(main())
    """
)


def test_wildcards_in_a_loopback_only_network_namespace() -> None:
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None:
        pytest.skip("needs unshare (util-linux) and ip (iproute2): .ci/run installs them")
    paths = json.dumps([str(ROOT), *(p for p in sys.path if p)])
    command = f"{ip} link set lo up && exec {sys.executable} -c \"$0\" '{paths}'"
    try:
        done = subprocess.run(
            [unshare, "--net", "sh", "-c", command, _IN_NAMESPACE],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError as exc:
        pytest.skip(f"unshare --net cannot run here: {exc}")
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip(f"unshare --net needs root or user namespaces: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    ok = "HTTP/1.1 200 OK"
    # ":0" and "[::]:0": one dual-stack socket answers both families (Go's meaning).
    assert seen[":0"] == {"v4": ok, "v6": ok, "sockets": 1}
    assert seen["[::]:0"] == {"v4": ok, "v6": ok, "sockets": 1}
    # "0.0.0.0:0": IPv4 only.
    assert seen["0.0.0.0:0"] == {"v4": ok, "v6": "ConnectionRefusedError", "sockets": 1}


async def test_the_daemon_exits_1_naming_an_address_it_cannot_listen_on(
    make_apiserver: Callable[..., Awaitable[ApiServer]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = await make_apiserver()
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    client = await KubeClient.from_config(kubeconfig)
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            settings = Settings.model_validate(
                {
                    "kubeconfig": str(kubeconfig),
                    "leader": {"namespace": "fluxwatch-system", "identity": "fluxwatch-0"},
                    "telemetry": {
                        "metrics_addr": "127.0.0.1:0",
                        "health_addr": f"127.0.0.1:{port}",
                    },
                }
            )
            metrics = Metrics()
            router = await build_router(settings, client, metrics)
            daemon = Daemon(settings, client, metrics=metrics, router=router)
            assert await asyncio.wait_for(daemon.run(install_signals=False), 10) == 1
    finally:
        await client.close()
    (line,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert line.getMessage().startswith(f"cannot listen on 127.0.0.1:{port}: ")
