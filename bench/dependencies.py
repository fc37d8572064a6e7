"""7. The dependsOn graph: what keeping it costs per watch event, and what asking it saves.

No I/O: the releases are built here, as watch lines, and everything runs on
one core. The shape is the seed's at scale: one root (``flux-system/bp-cilium``)
named by 30 releases across namespaces, and tenant namespaces where every
fifth release is a database the next four name (``dependsOn: [{name: db-N}]``,
namespace left to Flux's default), 10,000 releases in all.

Figures, each against a baseline measured in the same run:

- reading a watch event that carries ``dependsOn`` (``hr_event``, bytes to
  view), against the same events without it: what the field costs the reader;
- :meth:`DependencyGraph.set` per watch event, its list unchanged (every event
  of a release that did not edit its ``dependsOn``) and changed, against
  reading that event: the share of an event's cost the graph adds;
- :meth:`DependencyGraph.dependents` of the root after an edge changed (so
  not answered from its memo; the ``set()`` that changed it is counted in),
  against finding the same releases without a graph: passes over every view
  until no release is added, as a scan over the cache would.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from typing import Any

import orjson

from bench.common import Context, Figure
from fluxwatch.engine.dependencies import DependencyGraph, Key
from fluxwatch.kube.helmrelease import HRView, hr_event
from fluxwatch.sim.scenarios import Component, helmrelease

ROOT: Key = ("flux-system", "bp-cilium")
ROOT_DEPENDENTS = 30
TENANT_SIZE = 500  # releases per tenant namespace, as the load scenario spreads them
DB_EVERY = 5
SIZES = {"full": 10_000, "quick": 10_000, "smoke": 300}
ROUNDS = {"full": 9, "quick": 7, "smoke": 1}


def _status() -> dict[str, Any]:
    when = "2026-11-26T10:00:00Z"
    return {
        "conditions": [
            {
                "type": kind,
                "status": "True",
                "reason": "UpgradeSucceeded",
                "message": "Helm upgrade succeeded",
                "observedGeneration": 2,
                "lastTransitionTime": when,
            }
            for kind in ("Ready", "Released")
        ],
        "history": [
            {
                "name": "app",
                "namespace": "apps",
                "version": 2,
                "status": "deployed",
                "action": "upgrade",
                "chartName": "podinfo",
                "chartVersion": "6.7.1",
            }
        ],
        "observedGeneration": 2,
    }


def releases(n: int) -> list[dict[str, Any]]:
    """The root, its 30 direct dependents, and tenants of databases and their apps."""
    status = _status()

    def release(namespace: str, name: str, deps: tuple[str, ...]) -> dict[str, Any]:
        obj = helmrelease(Component(name, namespace, "podinfo", "6.7.1", "podinfo", None, deps))
        obj["metadata"].update(generation=2, resourceVersion="1", uid=f"uid-{namespace}-{name}")
        obj["status"] = status
        return obj

    out = [release(*ROOT, ())]
    for i in range(min(ROOT_DEPENDENTS, n - 1)):
        out.append(release(f"platform-{i % 6}", f"bp-app-{i:02d}", ("flux-system/bp-cilium",)))
    db = ""
    for i in range(n - len(out)):
        namespace = f"tenant-{i // TENANT_SIZE:03d}"
        if i % DB_EVERY == 0:
            db = f"db-{i:05d}"
            out.append(release(namespace, db, ()))
        else:
            out.append(release(namespace, f"app-{i:05d}", (db,)))
    return out


def _lines(objects: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps({"type": "MODIFIED", "object": obj}) for obj in objects]


def _best(rounds: int, fn: Callable[[], object]) -> float:
    """The fastest of ``rounds`` runs, in CPU seconds of this process: nothing here waits,
    and on a shared machine wall time mostly measures the other tenants."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _best_of_two(
    rounds: int, a: Callable[[], object], b: Callable[[], object]
) -> tuple[float, float]:
    """:func:`_best` of two functions, run in turn: the machine's drift over the rounds
    falls on both sides of a ratio alike."""
    best_a = best_b = float("inf")
    for _ in range(rounds):
        best_a = min(best_a, _best(1, a))
        best_b = min(best_b, _best(1, b))
    return best_a, best_b


def _read_all(lines: list[bytes]) -> list[HRView]:
    views = []
    for line in lines:
        event = hr_event(line)
        assert event is not None, "the typed reader takes every release built here"
        views.append(event[1])
    return views


def _scan_dependents(views: list[HRView], root: Key) -> set[Key]:
    """What a stuck root blocks, found without a graph: passes over every view, adding
    each release that names one already found, until a pass adds none."""
    found = {root}
    grew = True
    while grew:
        grew = False
        for view in views:
            if view.key not in found and any(dep in found for dep in view.depends_on):
                found.add(view.key)
                grew = True
    found.discard(root)
    return found


async def run(ctx: Context) -> list[Figure]:
    n = SIZES[ctx.sizes.mode]
    rounds = ROUNDS[ctx.sizes.mode]
    objects = releases(n)
    with_deps = _lines(objects)
    bare = copy.deepcopy(objects)
    for obj in bare:
        obj["spec"].pop("dependsOn", None)
    without_deps = _lines(bare)

    read_with, read_without = (
        t / n
        for t in _best_of_two(rounds, lambda: _read_all(with_deps), lambda: _read_all(without_deps))
    )
    views = _read_all(with_deps)

    graph = DependencyGraph()
    for view in views:
        graph.set(view.key, view.depends_on)

    def set_unchanged() -> None:
        for view in views:
            graph.set(view.key, view.depends_on)

    set_same = _best(rounds, set_unchanged) / n

    # Every release moves its edges to another root and back: two changes per release.
    other: tuple[Key, ...] = (("flux-system", "bp-other"),)

    def set_changed() -> None:
        for view in views:
            graph.set(view.key, other)
        for view in views:
            graph.set(view.key, view.depends_on)

    set_moved = _best(rounds, set_changed) / (2 * n)

    blocked = graph.dependents(ROOT)
    expected = _scan_dependents(views, ROOT)
    assert blocked == expected, "the graph and the scan disagree"
    toggled = views[-1]
    repeats = 200

    def graph_dependents() -> None:
        for i in range(repeats):
            # A change anywhere drops the memo: each call walks the graph again.
            graph.set(toggled.key, other if i % 2 else toggled.depends_on)
            graph.dependents(ROOT)

    walk = _best(rounds, graph_dependents) / repeats
    scan = _best(rounds, lambda: _scan_dependents(views, ROOT))

    incident = [ROOT, *sorted(blocked)]
    random.Random(1409).shuffle(incident)
    order_seconds = _best(rounds, lambda: graph.order(incident))
    assert graph.order(incident)[0] == ROOT

    shape = {
        "releases": n,
        "root_dependents": len(blocked),
        "releases_with_dependencies": len(graph),
        "rounds": rounds,
    }
    us = 1e6
    return [
        Figure(
            "dependencies",
            f"read a watch event carrying dependsOn, {n:,} HRs",
            read_with * us,
            "us/event",
            read_without * us,
            "the same events without dependsOn",
            better="lower",
            bound="hr_event, bytes to view, one core (no I/O)",
            details=shape,
        ),
        Figure(
            "dependencies",
            "dependsOn graph set() per watch event, list unchanged",
            set_same * us,
            "us/event",
            read_with * us,
            "reading that event (hr_event)",
            better="lower",
            bound="one lookup and an identity check: the reader shares equal lists",
            details=shape,
        ),
        Figure(
            "dependencies",
            "dependsOn graph set() per watch event, list changed",
            set_moved * us,
            "us/event",
            read_with * us,
            "reading that event (hr_event)",
            better="lower",
            bound="unlink the old edges, link the new, drop the memo",
            details=shape,
        ),
        Figure(
            "dependencies",
            f"dependents() of a root blocking {len(blocked)}, {n:,} HRs",
            walk * us,
            "us",
            scan * us,
            "passes over every view until none is added (no graph)",
            better="lower",
            bound="set() of one release, then a walk of the reverse edges from the root",
            details={**shape, "order_us_for_the_incident": order_seconds * us},
        ),
    ]
