"""DependencyGraph: what a stuck release blocks through ``dependsOn``, and roots-first order.

Pure: no event loop, no cluster. The edges are what helm-controller waits on
(``checkDependencies``): a dependent is reconciled only once each release it
names is Ready, so it is blocked by everything it reaches through them.
"""

from __future__ import annotations

import itertools
import random
import time

import pytest

from fluxwatch.engine.dependencies import DependencyGraph, Key


def k(name: str, namespace: str = "apps") -> Key:
    return (namespace, name)


ROOT = k("bp-cilium", "flux-system")


def seed_shape() -> DependencyGraph:
    """The seed's incident: bp-cilium, 30 releases that name it across namespaces, and
    three that wait on one of those (bp-cert-manager)."""
    g = DependencyGraph()
    g.set(ROOT, ())
    for i in range(30):
        g.set(k(f"app-{i}", f"team-{i % 4}"), (ROOT,))
    for name in ("external-secrets", "openbao", "trust-manager"):
        g.set(k(name, "flux-system"), (k("app-0", "team-0"),))
    return g


def test_a_root_blocks_its_dependents_transitively() -> None:
    g = seed_shape()
    blocked = g.dependents(ROOT)
    assert len(blocked) == 33
    assert k("app-29", "team-1") in blocked and k("openbao", "flux-system") in blocked
    assert g.dependents(k("app-0", "team-0")) == {
        k("external-secrets", "flux-system"),
        k("openbao", "flux-system"),
        k("trust-manager", "flux-system"),
    }
    assert g.dependents(k("openbao", "flux-system")) == frozenset()
    assert g.dependents(k("never-seen")) == frozenset()


def test_a_chain_is_followed_to_its_end() -> None:
    g = DependencyGraph()
    g.set(k("c"), (k("b"),))
    g.set(k("b"), (k("a", "infra"),))
    assert g.dependents(k("a", "infra")) == {k("b"), k("c")}
    assert g.dependents(k("b")) == {k("c")}


def test_set_replaces_a_releases_edges() -> None:
    g = DependencyGraph()
    g.set(k("b"), (k("a"),))
    g.set(k("c"), (k("b"),))
    assert g.dependents(k("a")) == {k("b"), k("c")}
    g.set(k("b"), [k("x")])
    assert g.dependents(k("a")) == frozenset()
    assert g.dependents(k("x")) == {k("b"), k("c")}
    assert g.depends_on(k("b")) == (k("x"),)
    g.set(k("b"), ())
    assert g.dependents(k("x")) == frozenset()
    assert g.depends_on(k("b")) == ()
    assert len(g) == 1  # only c has edges left


def test_an_unchanged_list_changes_nothing() -> None:
    """The watch sets every release on every event; the answers asked since stay valid
    (the same object comes back: nothing was recomputed)."""
    g = seed_shape()
    before = g.dependents(ROOT)
    g.set(k("app-3", "team-3"), (ROOT,))  # equal, not the same tuple
    g.set(k("app-3", "team-3"), g.depends_on(k("app-3", "team-3")))  # the same tuple
    assert g.dependents(ROOT) is before
    g.set(k("app-3", "team-3"), ())
    after = g.dependents(ROOT)
    assert after is not before and len(after) == 32


def test_duplicates_in_a_list_are_one_edge() -> None:
    g = DependencyGraph()
    g.set(k("b"), (k("a"), k("a"), k("c")))
    assert g.depends_on(k("b")) == (k("a"), k("c"))
    g.set(k("d"), [k("e"), k("e")])
    assert g.depends_on(k("d")) == (k("e"),)
    g.set(k("b"), (k("c"),))
    assert g.dependents(k("a")) == frozenset()


def test_remove_drops_a_releases_own_edges_and_keeps_those_naming_it() -> None:
    """A deleted release no longer waits on anything; its dependents still wait on it
    (Flux cannot find it: DependencyNotReady until it comes back)."""
    g = DependencyGraph()
    g.set(k("b"), (k("a"),))
    g.set(k("c"), (k("b"),))
    g.remove(k("b"))
    assert g.dependents(k("a")) == frozenset()
    assert g.dependents(k("b")) == {k("c")}
    g.remove(k("b"))  # twice is harmless
    g.remove(k("never-seen"))
    assert g.dependents(k("b")) == {k("c")}


def test_churn_leaves_nothing_behind() -> None:
    """Releases come and go for as long as the daemon runs: once every release that named
    a key is gone or names others, nothing is kept for that key (the reverse index is
    private, and read here because memory is the point)."""
    g = seed_shape()
    for i in range(30):
        g.remove(k(f"app-{i}", f"team-{i % 4}"))
    for name in ("external-secrets", "openbao", "trust-manager"):
        g.set(k(name, "flux-system"), ())
    assert len(g) == 0
    assert g._dependents == {}


def test_edges_to_releases_not_yet_seen_are_kept() -> None:
    g = DependencyGraph()
    g.set(k("app"), (k("db", "data"),))
    assert g.dependents(k("db", "data")) == {k("app")}
    g.set(k("db", "data"), ())  # it appears, depending on nothing
    assert g.dependents(k("db", "data")) == {k("app")}


@pytest.mark.timeout(5)
def test_cycles_end_and_a_release_never_blocks_itself() -> None:
    g = DependencyGraph()
    g.set(k("a"), (k("c"),))
    g.set(k("b"), (k("a"),))
    g.set(k("c"), (k("b"),))
    g.set(k("d"), (k("a"),))
    g.set(k("self"), (k("self"),))
    assert g.dependents(k("a")) == {k("b"), k("c"), k("d")}
    assert g.dependents(k("d")) == frozenset()
    assert g.dependents(k("self")) == frozenset()


def test_blocked_names_what_each_stuck_release_blocks() -> None:
    g = seed_shape()
    blocked = g.blocked([ROOT, k("openbao", "flux-system")])
    assert blocked == {ROOT: g.dependents(ROOT), k("openbao", "flux-system"): frozenset()}
    assert g.blocked([]) == {}


# -- order ----------------------------------------------------------------------------------


def test_order_puts_roots_first() -> None:
    g = DependencyGraph()
    g.set(k("c"), (k("b"),))
    g.set(k("b"), (k("a"),))
    assert g.order([k("c"), k("b"), k("a")]) == [k("a"), k("b"), k("c")]


def test_order_keeps_the_given_order_where_nothing_constrains_it() -> None:
    g = DependencyGraph()
    g.set(k("c"), (k("b"),))
    g.set(k("b"), (k("a"),))
    unrelated = [k("x"), k("y"), k("z")]
    assert g.order(unrelated) == unrelated
    # The first key free to go goes first: x, then y (a comes later in the list than y).
    assert g.order([k("x"), k("c"), k("y"), k("b"), k("a")]) == [
        k("x"),
        k("y"),
        k("a"),
        k("b"),
        k("c"),
    ]


def test_order_follows_dependencies_through_releases_outside_the_set() -> None:
    g = DependencyGraph()
    g.set(k("b"), (k("x"),))
    g.set(k("x"), (k("a"),))
    assert g.order([k("b"), k("a")]) == [k("a"), k("b")]


def test_order_drops_duplicates() -> None:
    g = DependencyGraph()
    g.set(k("b"), (k("a"),))
    assert g.order([k("b"), k("a"), k("b"), k("a")]) == [k("a"), k("b")]
    assert g.order([]) == [] and g.order([k("a")]) == [k("a")]


def test_order_keeps_a_cycle_together_in_its_given_order() -> None:
    """A cycle (a deadlock in Flux) is broken where it is: its members in the order given,
    after what the cycle needs and before what needs it; none is lost."""
    g = DependencyGraph()
    g.set(k("a"), (k("b"), k("root")))
    g.set(k("b"), (k("a"),))
    g.set(k("leaf"), (k("a"),))
    assert g.order([k("leaf"), k("b"), k("a"), k("root")]) == [
        k("root"),
        k("b"),
        k("a"),
        k("leaf"),
    ]
    assert g.order([k("a"), k("b")]) == [k("a"), k("b")]
    assert g.order([k("b"), k("a")]) == [k("b"), k("a")]


def _reaches(g: DependencyGraph, src: Key, dst: Key) -> bool:
    """Whether ``src`` depends on ``dst`` through any path (the test's own search)."""
    seen, todo = {src}, list(g.depends_on(src))
    while todo:
        node = todo.pop()
        if node == dst:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(g.depends_on(node))
    return False


def test_dependents_on_random_graphs_are_what_reaches_the_release() -> None:
    """Against the test's own search, on graphs with diamonds, cycles and self-loops."""
    rng = random.Random(1411)
    for _ in range(200):
        nodes = [k(f"r{i}", f"ns{i % 3}") for i in range(rng.randint(2, 25))]
        g = DependencyGraph()
        for node in nodes:
            g.set(node, rng.sample(nodes, rng.randint(0, min(4, len(nodes)))))
        for node in nodes:
            expected = {other for other in nodes if other != node and _reaches(g, other, node)}
            assert g.dependents(node) == expected, node


def test_order_on_random_graphs_loses_nothing_and_puts_dependencies_first() -> None:
    rng = random.Random(1409)
    for _ in range(200):
        nodes = [k(f"r{i}", f"ns{i % 3}") for i in range(rng.randint(2, 25))]
        g = DependencyGraph()
        for node in nodes:
            g.set(node, rng.sample(nodes, rng.randint(0, min(3, len(nodes)))))
        keys = rng.sample(nodes, rng.randint(1, len(nodes))) * rng.choice((1, 2))
        out = g.order(keys)
        assert sorted(out) == sorted(set(keys))
        assert g.order(keys) == out  # deterministic
        at = {key: i for i, key in enumerate(out)}
        for a in at:
            for b in at:
                if a != b and _reaches(g, b, a) and not _reaches(g, a, b):
                    assert at[a] < at[b], (a, b, out)


@pytest.mark.timeout(10)
def test_a_ten_thousand_release_chain_neither_recurses_nor_crawls() -> None:
    """10,000 releases in one chain, and the chain closed into a cycle: Python's recursion
    limit is 1,000, and the answers must stay linear."""
    chain = [k(f"r{i:05d}") for i in range(10_000)]
    g = DependencyGraph()
    for before, after in itertools.pairwise(chain):
        g.set(after, (before,))
    start = time.perf_counter()
    assert g.order(reversed(chain)) == chain
    assert len(g.dependents(chain[0])) == 9_999
    g.set(chain[0], (chain[-1],))
    assert g.order(reversed(chain)) == chain[::-1]  # one cycle: the given order
    assert len(g.dependents(chain[0])) == 9_999
    assert time.perf_counter() - start < 2.0
