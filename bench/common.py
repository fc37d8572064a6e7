"""What every benchmark shares: figures, sizes, CPU pinning, the emulator in its own process.

A :class:`Figure` is one measured number with its unit, the baseline measured
in the same command, their ratio (oriented so that > 1 means fluxwatch is
better) and the goal. Figures are compared with a baseline rather than read
alone because the machine is shared and noisy: both sides of a ratio see the
same noise.

The benchmark process pins itself to one CPU (the goals are per core) and
starts the Kubernetes API emulator (``python -m bench.emulator``) in another
process pinned to the other CPU, so that serving the API does not eat into
the core being measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fluxwatch import native

HR_GROUP, HR_VERSION, HR_PLURAL = "helm.toolkit.fluxcd.io", "v2", "helmreleases"
HR_KEY = f"{HR_PLURAL}.{HR_GROUP}"
ROOT = Path(__file__).resolve().parent.parent

Better = Literal["higher", "lower"]


@dataclass
class Figure:
    """One result row: fluxwatch's number, the baseline's, and how they compare."""

    bench: str
    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    better: Better = "higher"
    goal: str = ""
    goal_met: bool | None = None
    bound: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """How many times better than the baseline (> 1 is better), whatever the unit's sense."""
        v, b = self.value, self.baseline
        if v is None or b is None:
            return None
        if self.better == "higher":
            return v / b if b > 0 else None
        return b / v if v > 0 else math.inf

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        ratio = self.ratio
        out["ratio"] = None if ratio is None or math.isinf(ratio) else round(ratio, 3)
        if ratio is not None and math.isinf(ratio):
            out["ratio_note"] = "fluxwatch's figure is 0: the ratio is unbounded"
        return out


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark runs: ``full`` for the record, ``quick`` and ``smoke`` shrink it."""

    mode: Literal["full", "quick", "smoke"]
    watch_releases: int
    watch_rounds: int
    sync_sizes: tuple[int, ...]
    sync_rounds: int
    memory_sizes: tuple[int, ...]
    detect_releases: int
    detect_stuck: int
    detect_window: float  # seconds over which releases become stuck
    detect_scale: float  # time compression: 0.01 is x100
    load_releases: int
    load_seconds: float  # length of the compressed steady-state run
    load_scale: float
    alert_events: int
    alert_paced_seconds: float

    @classmethod
    def of(cls, mode: str) -> Sizes:
        if mode == "full":
            return cls(
                "full", 10_000, 5, (1_000, 10_000, 50_000), 5, (10_000, 50_000),
                2_000, 40, 20.0, 0.01, 10_000, 24.0, 0.02, 2_000, 3.0,
            )  # fmt: skip
        if mode == "quick":
            return cls(
                "quick", 10_000, 3, (1_000, 10_000), 3, (10_000,),
                1_000, 20, 8.0, 0.01, 10_000, 8.0, 0.02, 1_000, 1.5,
            )  # fmt: skip
        if mode == "smoke":
            return cls(
                "smoke", 300, 1, (300,), 1, (300,),
                60, 3, 0.6, 0.002, 300, 1.0, 0.01, 80, 0.3,
            )  # fmt: skip
        raise ValueError(f"unknown mode {mode!r}")


# -- statistics ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# -- the machine --------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        # Which HelmRelease watch reader fluxwatch ran with (fluxwatch.native).
        "watch_reader": native.watch_reader(),
    }


def cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def pin(cpu: int | None) -> None:
    """Run this process on one CPU (no-op where affinity is unsupported)."""
    if cpu is None:
        return
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {cpu})


@dataclass(frozen=True)
class Placement:
    """Which CPU the measured process uses, and which its helpers (emulator, receiver) use."""

    bench: int | None
    helper: int | None

    @classmethod
    def choose(cls, enabled: bool = True) -> Placement:
        available = cpus()
        if not enabled or not available:
            return cls(None, None)
        if len(available) == 1:
            return cls(available[0], available[0])
        return cls(available[0], available[1])


# -- helper processes ---------------------------------------------------------------------------


class Child:
    """A helper process of ours (``python -m bench.<module>``) that prints one JSON line
    when it is ready and exits when its stdin closes."""

    def __init__(self, proc: asyncio.subprocess.Process, info: dict[str, Any]) -> None:
        self.proc = proc
        self.info = info

    @classmethod
    async def start(cls, module: str, *args: str, timeout: float = 180.0) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=str(ROOT),
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"{module} did not start within {timeout:.0f}s") from None
        if not line:
            await proc.wait()
            raise RuntimeError(f"{module} exited with {proc.returncode} before it was ready")
        return cls(proc, json.loads(line))

    async def request(self, command: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """Send one JSON command line and read one JSON answer line."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"helper process exited ({self.proc.returncode})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def stop(self) -> None:
        if self.proc.returncode is not None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# -- clients ------------------------------------------------------------------------------------


async def library_client(kubeconfig: str) -> Any:
    """kubernetes_asyncio's own ApiClient for the kubeconfig: what the baselines use."""
    from kubernetes_asyncio import client as k8s_client
    from kubernetes_asyncio import config as k8s_config

    configuration = k8s_client.Configuration()
    await k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return k8s_client.ApiClient(configuration)


def quiet_logs() -> None:
    """Benchmarks print a table; the daemon's logs would drown it."""
    import logging

    logging.getLogger().setLevel(logging.CRITICAL)
    for name in ("fluxwatch", "aiohttp", "kubernetes_asyncio", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


class Stopwatch:
    __slots__ = ("start",)

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


@dataclass
class Context:
    """What a benchmark gets: its sizes, where to run, a scratch directory, a logger, and
    emulators shared between benchmarks (one per size, started on first use)."""

    sizes: Sizes
    placement: Placement
    workdir: Path
    log: Callable[[str], None] = print
    _emulators: dict[int, tuple[bool, Child]] = field(default_factory=dict)

    async def emulator(self, releases: int, *, burst: bool = False) -> Child:
        have = self._emulators.get(releases)
        if have is not None and (have[0] or not burst):
            return have[1]
        if have is not None:
            await have[1].stop()
        clock = Stopwatch()
        args = [
            "--releases",
            str(releases),
            "--kubeconfig-out",
            str(self.workdir / f"emu-{releases}.kc"),
        ]
        if burst:
            args.append("--burst")
        if self.placement.helper is not None:
            args += ["--cpu", str(self.placement.helper)]
        child = await Child.start("bench.emulator", *args)
        self._emulators[releases] = (burst, child)
        self.log(f"  emulator with {releases:,} HelmReleases ready in {clock():.1f}s")
        return child

    async def close(self) -> None:
        for _, child in self._emulators.values():
            await child.stop()
        self._emulators.clear()
