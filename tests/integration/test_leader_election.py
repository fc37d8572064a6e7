"""fluxwatch's own leader election against client-go's semantics, several replicas over
real HTTP against the strict embedded cluster.

client-go (tools/leaderelection): a candidate takes a Lease whose holder is empty, or
whose record it has not seen change for leaseDurationSeconds on its own clock;
leaseTransitions goes up by one on each take-over and never on a renewal; a leader
that cannot renew within the renew deadline stops leading; ReleaseOnCancel writes an
empty holder, leaseDurationSeconds 1, acquireTime and renewTime now, the transitions
kept. Every write carries the resourceVersion (or, creating, nothing) it read, so of
two candidates one wins and the other gets 409.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fluxwatch.kube.client import KubeApiError, KubeClient
from fluxwatch.kube.fields import format_micro, parse_rfc3339
from fluxwatch.kube.leader import LeaderElector
from fluxwatch.sim.apiserver import ApiServer

LEASES = "leases.coordination.k8s.io"
NS, NAME = "fluxwatch-system", "fluxwatch-leader-election"


def elector(
    client: KubeClient, identity: str, lease: float, renew: float, retry: float
) -> LeaderElector:
    return LeaderElector(
        client,
        NS,
        NAME,
        identity,
        lease_duration=lease,
        renew_deadline=renew,
        retry_period=retry,
    )


class Running:
    """Electors running as tasks; cancelled (and so released) on exit."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, *electors: LeaderElector) -> None:
        self.tasks += [asyncio.create_task(e.run()) for e in electors]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def running(*electors: LeaderElector) -> AsyncIterator[Running]:
    run = Running()
    run.start(*electors)
    try:
        yield run
    finally:
        await run.stop()


async def sample(electors: list[LeaderElector], seconds: float) -> list[tuple[float, set[str]]]:
    """Who believes it leads, every 10 ms."""
    seen: list[tuple[float, set[str]]] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen.append((time.monotonic(), {e.identity for e in electors if e.is_leader}))
        await asyncio.sleep(0.01)
    return seen


def stored(apiserver: ApiServer) -> dict[str, Any]:
    return apiserver.store.get(LEASES, NS, NAME)["spec"]


async def test_replicas_racing_for_a_missing_lease_elect_exactly_one(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """Three replicas find no Lease and create it at once: one create is 201, the others
    409 AlreadyExists; the losers then read a fresh holder and wait. The winner created
    it with leaseTransitions 0."""
    replicas = [elector(client, f"r{i}", 5.0, 3.0, 0.05) for i in range(3)]
    async with running(*replicas):
        seen = await sample(replicas, 1.5)
        spec = stored(apiserver)
    assert all(len(leaders) <= 1 for _, leaders in seen)
    [winner] = seen[-1][1]
    assert spec["holderIdentity"] == winner
    assert spec["leaseTransitions"] == 0
    assert all(leaders in ({winner}, set()) for _, leaders in seen)


async def test_transitions_count_take_overs_only(apiserver: ApiServer, client: KubeClient) -> None:
    """Renewals keep leaseTransitions and acquireTime; each take-over (from an empty
    holder too, as client-go counts it) adds one and sets acquireTime."""
    a, b = elector(client, "a", 5.0, 3.0, 0.05), elector(client, "b", 5.0, 3.0, 0.05)
    run_a = Running()
    run_a.start(a)
    await asyncio.wait_for(a.leading.wait(), 5)
    first = stored(apiserver)
    await asyncio.sleep(0.3)  # several renewals
    renewed = stored(apiserver)
    assert renewed["leaseTransitions"] == first["leaseTransitions"] == 0
    assert renewed["acquireTime"] == first["acquireTime"]
    assert renewed["renewTime"] > first["renewTime"]
    run_b = Running()
    run_b.start(b)
    await asyncio.sleep(0.2)
    assert not b.is_leader
    await run_a.stop()  # releases: b takes over without waiting 5 s
    await asyncio.wait_for(b.leading.wait(), 2)
    taken = stored(apiserver)
    assert (taken["holderIdentity"], taken["leaseTransitions"]) == ("b", 1)
    assert taken["acquireTime"] > renewed["acquireTime"]
    await asyncio.sleep(0.3)
    assert stored(apiserver)["leaseTransitions"] == 1
    await run_b.stop()


async def test_a_release_writes_what_client_go_writes(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """ReleaseOnCancel: holderIdentity "", leaseDurationSeconds 1, acquireTime and
    renewTime the moment of the release, leaseTransitions kept."""
    a = elector(client, "a", 15.0, 10.0, 0.05)
    async with running(a):
        await asyncio.wait_for(a.leading.wait(), 5)
        held = stored(apiserver)
        before = time.time()
    released = stored(apiserver)
    assert released["holderIdentity"] == ""
    assert released["leaseDurationSeconds"] == 1
    assert released["leaseTransitions"] == held["leaseTransitions"]
    assert released["acquireTime"] == released["renewTime"]
    assert parse_rfc3339(released["renewTime"]) >= before - 0.001


async def test_a_live_holder_with_old_timestamps_is_not_taken_over(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """Expiry is measured on the candidate's clock from when it saw the record change:
    a holder whose node clock runs an hour behind keeps its Lease while it renews, and
    loses it a full leaseDurationSeconds after its last renewal, not at once."""
    stale = time.time() - 3600
    apiserver.store.create(
        LEASES,
        {
            "metadata": {"name": NAME, "namespace": NS},
            "spec": {
                "holderIdentity": "other",
                "leaseDurationSeconds": 1,
                "acquireTime": format_micro(stale),
                "renewTime": format_micro(stale),
                "leaseTransitions": 3,
            },
        },
    )

    async def renew_for(seconds: float) -> float:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            lease = apiserver.store.get(LEASES, NS, NAME)
            lease["spec"]["renewTime"] = format_micro(
                parse_rfc3339(lease["spec"]["renewTime"]) + 0.2
            )
            apiserver.store.update(LEASES, lease)
            await asyncio.sleep(0.2)
        return time.monotonic()

    b = elector(client, "b", 5.0, 3.0, 0.05)
    async with running(b):
        last = await renew_for(1.5)
        assert not b.is_leader
        await asyncio.wait_for(b.leading.wait(), 3)
        waited = time.monotonic() - last
    assert waited >= 0.8  # the record's 1 s from the last change b saw (less its poll)
    assert stored(apiserver)["leaseTransitions"] == 4


async def test_a_leader_whose_lease_is_deleted_and_recreated_by_another_steps_down_at_once(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """The Lease is deleted; candidate b finds it missing and creates it (it leads). a's
    next renewal fails its UID precondition (409), a reads the Lease, sees b holding a
    Lease it has just seen change, and stops leading then, not at its renew deadline."""
    a = elector(client, "a", 6.0, 4.0, 1.0)
    b = elector(client, "b", 6.0, 4.0, 0.05)
    run_a = Running()
    run_a.start(a)
    await asyncio.wait_for(a.leading.wait(), 5)
    run_b = Running()
    run_b.start(b)
    await asyncio.sleep(0.2)
    assert a.is_leader and not b.is_leader
    apiserver.store.delete(LEASES, NS, NAME)
    try:
        await asyncio.wait_for(b.leading.wait(), 2)
        b_leads = time.monotonic()
        seen = await sample([a, b], 2.5)
    finally:
        await run_b.stop()
        await run_a.stop()
    both = [t for t, leaders in seen if leaders == {"a", "b"}]
    # At most until a's next renewal (1 s); its renew deadline would be 4 s.
    assert not both or both[-1] - b_leads <= 1.3
    assert seen[-1][1] == {"b"}
    assert a.holder == "b"


async def test_a_leader_whose_lease_is_deleted_recreates_it_and_keeps_leading(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """Nobody else there: the renewal's 409 (the deleted Lease's uid) sends the leader to
    read (404) and create: a new Lease, leaseTransitions 0, no gap in leading."""
    a = elector(client, "a", 5.0, 3.0, 0.05)
    async with running(a):
        await asyncio.wait_for(a.leading.wait(), 5)
        uid = apiserver.store.get(LEASES, NS, NAME)["metadata"]["uid"]
        apiserver.store.delete(LEASES, NS, NAME)
        seen = await sample([a], 0.5)
        lease = apiserver.store.get(LEASES, NS, NAME)
    assert all(leaders == {"a"} for _, leaders in seen)
    assert lease["metadata"]["uid"] != uid
    assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == ("a", 0)


class LosesTheCreateRace(KubeClient):
    """When armed, a Lease read that finds nothing lets another replica create the Lease
    before this one's create arrives: the race client-go answers with AlreadyExists."""

    apiserver: ApiServer | None = None
    armed = False

    async def get(self, res: Any, namespace: str | None, name: str) -> dict[str, Any]:
        try:
            return await super().get(res, namespace, name)
        except KubeApiError as exc:
            if exc.not_found and self.armed and self.apiserver is not None:
                self.armed = False
                spec = {"holderIdentity": "b", "leaseDurationSeconds": 6, "leaseTransitions": 0}
                self.apiserver.store.create(
                    LEASES, {"metadata": {"name": NAME, "namespace": NS}, "spec": spec}
                )
            raise


async def test_a_leader_that_loses_the_race_to_recreate_its_lease_steps_down_at_once(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    """Its Lease deleted, the leader reads nothing, and its create is refused (409
    AlreadyExists): another replica created it and leads; this one stops leading then."""
    racing = await LosesTheCreateRace.from_config(
        apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    )
    assert isinstance(racing, LosesTheCreateRace)
    racing.apiserver = apiserver
    a = elector(racing, "a", 6.0, 4.0, 0.5)
    try:
        async with running(a):
            await asyncio.wait_for(a.leading.wait(), 5)
            racing.armed = True
            apiserver.store.delete(LEASES, NS, NAME)
            gone = time.monotonic()
            seen = await sample([a], 1.5)
            spec = stored(apiserver)
    finally:
        await racing.close()
    stepped_down = next(t for t, leaders in seen if not leaders)
    # In the renewal that lost the race (within a 0.5 s retry period), not one later,
    # nor at its 4 s renew deadline.
    assert stepped_down - gone <= 0.75
    assert all(not leaders for t, leaders in seen if t > stepped_down)
    assert spec["holderIdentity"] == "b"
