"""Real receivers as subprocesses: Debian's ``prometheus-alertmanager`` and ``nats-server``.

Each fixture starts its binary on a free loopback port, waits until it is
ready, and stops it (by its own PID) at the end of the session. When a
binary is missing the tests skip and say which package installs it; CI
installs both and turns skips into failures.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from daemon_harness import Cluster, Replicas, running_cluster, running_replicas

READY_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(name: str, *fallbacks: str) -> str | None:
    """On PATH, or where Debian puts it (``/usr/sbin`` is not on every PATH)."""
    found = shutil.which(name)
    if found:
        return found
    return next((path for path in fallbacks if Path(path).is_file()), None)


def wait_until(
    name: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log.read_text()}")
        if ready():
            return
        time.sleep(0.02)
    raise RuntimeError(f"{name} not ready in {READY_TIMEOUT}s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


ALERTMANAGER_CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1h
receivers:
  - name: blackhole
"""


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a real Alertmanager with no cluster gossip and a null receiver."""
    binary = find_binary("prometheus-alertmanager", "/usr/bin/prometheus-alertmanager")
    if binary is None:
        pytest.skip(
            "prometheus-alertmanager not found; install it with "
            "`apt-get install -y prometheus-alertmanager`"
        )
    workdir = tmp_path_factory.mktemp("alertmanager")
    config = workdir / "alertmanager.yml"
    config.write_text(ALERTMANAGER_CONFIG)
    port = free_port()
    log = workdir / "alertmanager.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_until("alertmanager", ready, proc, log)
        yield url
    finally:
        stop(proc)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (free a moment ago)."""
    return free_port()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real nats-server on loopback that wants a user and password: url, user, password."""
    binary = find_binary("nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server")
    if binary is None:
        pytest.skip("nats-server not found; install it with `apt-get install -y nats-server`")
    workdir = tmp_path_factory.mktemp("nats")
    port = free_port()
    server = {"url": f"nats://127.0.0.1:{port}", "user": "fluxwatch", "password": "n4ts-s3cret"}
    log = workdir / "nats.log"
    args = [binary, "-a", "127.0.0.1", "-p", str(port)]
    args += ["--user", server["user"], "--pass", server["password"]]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                return s.recv(4).startswith(b"INFO")
        except OSError:
            return False

    try:
        wait_until("nats-server", ready, proc, log)
        yield server
    finally:
        stop(proc)


# -- the daemon tests' cluster and replicas (tests/e2e/daemon_harness.py) ------------------


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running_cluster(tmp_path) as c:
        yield c


@pytest.fixture
async def replicas() -> AsyncIterator[Replicas]:
    async with running_replicas() as r:
        yield r
