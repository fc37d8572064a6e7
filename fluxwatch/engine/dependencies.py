"""What a stuck HelmRelease blocks: the ``dependsOn`` graph of every release followed.

helm-controller reconciles a HelmRelease only once every release of its
``spec.dependsOn`` is Ready (``checkDependencies``; until then Ready=False,
reason ``DependencyNotReady``). A release stuck at Ready=Unknown therefore
holds back everything that depends on it, directly or through others: in the
seed's incident one ``bp-cilium`` held 30. :class:`DependencyGraph` keeps
those edges as the watch reports them (:attr:`HRView.depends_on
<fluxwatch.kube.helmrelease.HRView.depends_on>`, namespaces already resolved
as Flux resolves them) and answers what a release blocks and in which order
an incident's releases are best recovered: roots first, since a dependent
recovered before its dependency only goes back to waiting.

Edges may name releases that do not exist (yet): they are kept, because Flux
keeps waiting for them, and they take effect when the release appears. A
release's own edges go when it is removed; the edges that point at it stay,
they belong to its dependents.

Cycles are legal in the API (nothing validates ``dependsOn``) and deadlock in
Flux; here they must neither hang nor lose a release. A release never counts
as blocking itself, even on a cycle.

Pure: no I/O, no clock, no event loop. :meth:`DependencyGraph.set` is called
for every watch event, so an unchanged list (the usual case: the reader shares
one tuple among releases naming the same dependencies) costs one lookup.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

__all__ = ["DependencyGraph", "Key"]

Key = tuple[str, str]  # (namespace, name)

_NONE: frozenset[Key] = frozenset()


class DependencyGraph:
    """The ``dependsOn`` edges of every release, both ways, and what follows from them."""

    __slots__ = ("_dependents", "_depends_on", "_memo")

    def __init__(self) -> None:
        # key -> what its spec.dependsOn names, deduplicated, in spec order.
        self._depends_on: dict[Key, tuple[Key, ...]] = {}
        # key -> the releases naming it directly; keys may be releases not (yet) seen.
        self._dependents: dict[Key, set[Key]] = {}
        # dependents() answers since the last change of an edge: scan and the gauge ask
        # for the same stuck releases over and over while the graph stands still.
        self._memo: dict[Key, frozenset[Key]] = {}

    def __len__(self) -> int:
        """How many releases have edges of their own."""
        return len(self._depends_on)

    def depends_on(self, key: Key) -> tuple[Key, ...]:
        """What ``key``'s ``dependsOn`` names, as last set."""
        return self._depends_on.get(key, ())

    def set(self, key: Key, depends_on: Iterable[Key]) -> None:
        """Make ``key``'s edges those of ``depends_on`` (its whole list, replacing the last)."""
        old = self._depends_on.get(key)
        if old is depends_on:
            return
        if old is None and not depends_on:
            return  # no edges before or now: most releases, at every watch event
        new = depends_on if type(depends_on) is tuple else tuple(depends_on)
        if not new:
            self.remove(key)
            return
        if len(new) > 1 and len(set(new)) != len(new):
            new = tuple(dict.fromkeys(new))
        self._depends_on[key] = new  # the caller's tuple: its next event is the `is` above
        if old == new:
            return
        if old:
            self._unlink(key, old)
        for dep in new:
            named = self._dependents.get(dep)
            if named is None:
                self._dependents[dep] = {key}
            else:
                named.add(key)
        self._memo.clear()

    def remove(self, key: Key) -> None:
        """Forget ``key``'s own edges (it was deleted); those naming it stay."""
        old = self._depends_on.pop(key, None)
        if old:
            self._unlink(key, old)
            self._memo.clear()

    def _unlink(self, key: Key, deps: tuple[Key, ...]) -> None:
        for dep in deps:
            named = self._dependents.get(dep)
            if named is not None:
                named.discard(key)
                if not named:
                    del self._dependents[dep]

    def dependents(self, key: Key) -> frozenset[Key]:
        """Every release that depends on ``key``, directly or through others: what it
        blocks. ``key`` itself is never in it, even when a cycle leads back to it."""
        found = self._memo.get(key)
        if found is not None:
            return found
        direct = self._dependents.get(key)
        if not direct:
            return _NONE
        seen: set[Key] = {key}
        todo = list(direct)
        while todo:
            k = todo.pop()
            if k in seen:
                continue
            seen.add(k)
            more = self._dependents.get(k)
            if more:
                todo.extend(more)
        seen.discard(key)
        found = self._memo[key] = frozenset(seen)
        return found

    def blocked(self, stuck: Iterable[Key]) -> dict[Key, frozenset[Key]]:
        """For each stuck release, what it blocks (:meth:`dependents`); releases that
        block nothing map to an empty set."""
        return {key: self.dependents(key) for key in stuck}

    def order(self, keys: Iterable[Key]) -> list[Key]:
        """``keys`` (duplicates dropped) in recovery order, roots first.

        A key that depends on another key of the set, directly or through releases
        outside it, comes after that key; keys with no such constraint keep their given
        order. The members of a cycle come together, in their given order, after
        everything the cycle depends on and before everything that depends on it.
        """
        wanted = list(dict.fromkeys(keys))
        if len(wanted) < 2:
            return wanted
        index = {k: i for i, k in enumerate(wanted)}
        # The keys of the set each key depends on: its edges followed through releases
        # outside the set up to the first member (beyond it, that member's own edges
        # say the rest).
        needs: list[list[int]] = []
        for key in wanted:
            found: list[int] = []
            seen: set[Key] = {key}
            todo = list(self._depends_on.get(key, ()))
            while todo:
                dep = todo.pop()
                if dep in seen:
                    continue
                seen.add(dep)
                at = index.get(dep)
                if at is not None:
                    found.append(at)
                else:
                    todo.extend(self._depends_on.get(dep, ()))
            needs.append(found)
        if not any(needs):
            return wanted
        return [wanted[i] for i in _roots_first(needs)]


def _roots_first(needs: list[list[int]]) -> list[int]:
    """Positions ``0..n-1`` so that each comes after every position it ``needs``,
    smallest position first wherever there is a choice; the members of a cycle
    (a strongly connected component) come together, in position order."""
    components = _components(needs)
    of = [0] * len(needs)
    for c, members in enumerate(components):
        for i in members:
            of[i] = c
    waiting = [0] * len(components)
    unblocks: list[set[int]] = [set() for _ in components]
    for i, deps in enumerate(needs):
        for d in deps:
            cd, ci = of[d], of[i]
            if cd != ci and ci not in unblocks[cd]:
                unblocks[cd].add(ci)
                waiting[ci] += 1
    # A component is ranked by its first member (members are sorted).
    ready = [(components[c][0], c) for c in range(len(components)) if not waiting[c]]
    heapq.heapify(ready)
    out: list[int] = []
    while ready:
        _, c = heapq.heappop(ready)
        out.extend(components[c])
        for nxt in unblocks[c]:
            waiting[nxt] -= 1
            if not waiting[nxt]:
                heapq.heappush(ready, (components[nxt][0], nxt))
    return out


def _components(needs: list[list[int]]) -> list[list[int]]:
    """Tarjan's strongly connected components of ``i -> needs[i]``, each sorted; iterative,
    since an incident of 10,000 releases in one chain would exceed Python's recursion."""
    n = len(needs)
    low = [0] * n
    number = [-1] * n
    on_stack = [False] * n
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for root in range(n):
        if number[root] >= 0:
            continue
        number[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, 0)]
        while work:
            v, edge = work[-1]
            deps = needs[v]
            if edge < len(deps):
                work[-1] = (v, edge + 1)
                w = deps[edge]
                if number[w] < 0:
                    number[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w]:
                    low[v] = min(low[v], number[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == number[v]:
                members: list[int] = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    members.append(w)
                    if w == v:
                        break
                members.sort()
                components.append(members)
    return components
