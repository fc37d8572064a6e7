"""The rules of the house (DESIGN.md): the layer contracts of ``.importlinter``, and what
imports cannot show.

- import-linter holds who may import what (only ``kube/`` imports ``kubernetes_asyncio``,
  only ``kube/client`` aiohttp, data flows one way, ``policy`` and ``guardrail`` are pure
  even indirectly, no simulator in production); ``make lint`` runs it too;
- only ``notify/transport.py``, ``sim/`` and ``telemetry/server.py`` create aiohttp
  sessions or servers (a call, not an import).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fluxwatch"
MODULES = sorted(PACKAGE.rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                names.add(func.attr)
            elif isinstance(func, ast.Name):
                names.add(func.id)
    return names


def test_the_package_has_modules() -> None:
    assert len(MODULES) > 40


def test_the_import_contracts_are_kept() -> None:
    # A process of its own: import-linter's CLI reconfigures logging, which would
    # disable every logger the other tests of this session already created.
    linter = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(linter), "--no-cache"],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_sessions_and_servers_only_where_allowed(path: Path) -> None:
    allowed = rel(path) in {"notify/transport.py", "telemetry/server.py"} or rel(path).startswith(
        "sim/"
    )
    if allowed:
        return
    assert not calls(path) & {"ClientSession", "Application", "AppRunner", "TCPSite"}
