"""Run the machine's kubectl against the emulator, without blocking its event loop.

The emulator serves from the same event loop as the caller, so kubectl must run
as an asyncio subprocess: a blocking ``subprocess.run`` would wait forever for
a server that can no longer answer.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PATH = Path("/usr/bin/kubectl")


def find_kubectl() -> Path | None:
    """``/usr/bin/kubectl``, else the first kubectl on PATH, else None."""
    if DEFAULT_PATH.exists():
        return DEFAULT_PATH
    found = shutil.which("kubectl")
    return Path(found) if found else None


@dataclass(frozen=True, slots=True)
class KubectlResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> KubectlResult:
        if self.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(self.args)} exited {self.returncode}: {self.stderr.strip()}"
            )
        return self


class Kubectl:
    """``await kubectl("get", "hr", "-A")``: kubectl with a kubeconfig, a private
    discovery cache and a request timeout. ``cwd`` is where it runs: kubectl names a
    file in its messages as it was given (``error when creating "hr.yaml"``)."""

    def __init__(
        self,
        binary: Path,
        kubeconfig: Path,
        cache_dir: Path,
        request_timeout: str = "10s",
        cwd: Path | None = None,
    ) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir
        self.request_timeout = request_timeout
        self.cwd = cwd

    def argv(self, *args: str) -> list[str]:
        return [
            str(self.binary),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.cache_dir}",
            f"--request-timeout={self.request_timeout}",
            *args,
        ]

    async def __call__(
        self, *args: str, stdin: str | None = None, timeout: float = 30
    ) -> KubectlResult:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(*args),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.cwd,
        )
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see kube/leader.py
                out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return KubectlResult(args, proc.returncode, out.decode(), err.decode())

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        """Start a long-running kubectl (``get -w``); the caller reads and kills it."""
        return await asyncio.create_subprocess_exec(
            *self.argv(*args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.cwd,
        )
