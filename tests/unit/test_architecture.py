"""The rules of the house (DESIGN.md), held by reading the imports of every module.

- only ``fluxwatch/kube`` imports ``kubernetes_asyncio``;
- only ``notify/transport.py``, ``sim/`` and ``telemetry/server.py`` create aiohttp
  sessions or servers;
- ``engine/policy.py`` and ``engine/guardrail.py`` are pure: no asyncio, no I/O;
- data flows one way: ``kube`` never imports the engine, the notifier or the simulator,
  and no production room imports ``sim``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fluxwatch"
MODULES = sorted(PACKAGE.rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


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


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_only_kube_imports_kubernetes_asyncio(path: Path) -> None:
    if rel(path).startswith("kube/"):
        return
    assert not {m for m in imports(path) if m.split(".")[0] == "kubernetes_asyncio"}


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_sessions_and_servers_only_where_allowed(path: Path) -> None:
    allowed = rel(path) in {"notify/transport.py", "telemetry/server.py"} or rel(path).startswith(
        "sim/"
    )
    if allowed:
        return
    assert not calls(path) & {"ClientSession", "Application", "AppRunner", "TCPSite"}


@pytest.mark.parametrize("name", ["engine/policy.py", "engine/guardrail.py"])
def test_policy_and_guardrail_are_pure(name: str) -> None:
    found = imports(PACKAGE / name)
    impure = {"asyncio", "aiohttp", "socket", "fluxwatch.kube.client", "fluxwatch.notify.router"}
    assert not found & impure


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_data_flows_one_way(path: Path) -> None:
    room = rel(path).split("/")[0]
    ours = {m for m in imports(path) if m.startswith("fluxwatch.")}
    if room == "kube":
        assert not {m for m in ours if m.split(".")[1] in {"engine", "notify", "sim", "app"}}
    if room in {"kube", "engine", "notify", "telemetry"}:
        assert not {m for m in ours if m.startswith("fluxwatch.sim")}
