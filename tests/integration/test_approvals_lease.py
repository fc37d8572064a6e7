"""A person's approval on the leader Lease outlives the leader's own writes.

``fluxwatch approve`` merges one annotation into the Lease at any moment; the leader
PUTs the whole Lease every ``retryPeriod``. These tests hold the elector to keeping
what it did not write: after an approval lands between two renewals, and after one
lands between a renewal's read and its write (a 409, then a re-read), the approval is
still on the Lease after several renewals and in ``elector.annotations``; and a
leader that stops right after an approval still hands the Lease back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fluxwatch.kube.approvals import Approval, approvals
from fluxwatch.kube.approver import write_approval
from fluxwatch.kube.client import LEASES, KubeClient, Resource
from fluxwatch.kube.leader import LeaderElector
from fluxwatch.sim.apiserver import ApiServer

NS, LEASE = "fluxwatch-system", "fluxwatch-leader-election"
LEASE_KEY = "leases.coordination.k8s.io"


class ApprovedAfterRead(KubeClient):
    """The leader's client. Armed with an approval, its next read of the Lease is followed
    at once by a person writing that approval: the renewal's PUT then carries a stale
    resourceVersion, as when ``fluxwatch approve`` lands between the leader's read and
    its write."""

    approver: KubeClient
    armed: Approval | None = None
    reads = 0

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        lease = await super().get(res, namespace, name)
        self.reads += 1
        if self.armed is not None and res == LEASES:
            approval, self.armed = self.armed, None
            await write_approval(self.approver, NS, LEASE, approval)
        return lease


@pytest.fixture
async def approver(apiserver: ApiServer, tmp_path: Path) -> AsyncIterator[KubeClient]:
    """The person's client, its own connection."""
    client = await KubeClient.from_config(apiserver.write_kubeconfig(tmp_path / "person"))
    yield client
    await client.close()


@pytest.fixture
async def leader_client(
    apiserver: ApiServer, tmp_path: Path, approver: KubeClient
) -> AsyncIterator[ApprovedAfterRead]:
    client = await ApprovedAfterRead.from_config(apiserver.write_kubeconfig(tmp_path / "pod"))
    assert isinstance(client, ApprovedAfterRead)
    client.approver = approver
    yield client
    await client.close()


def _elector(client: KubeClient, state: list[str]) -> LeaderElector:
    return LeaderElector(
        client,
        NS,
        LEASE,
        "fluxwatch-0",
        lease_duration=5.0,
        renew_deadline=3.0,
        retry_period=0.05,
        carry=lambda: {"fluxwatch.io/guardrail": state[0]},
    )


async def _renewals(apiserver: ApiServer, n: int) -> None:
    """Until the leader has written the Lease ``n`` more times."""
    start = apiserver.stats.requests[("update", LEASE_KEY)]
    for _ in range(200):
        if apiserver.stats.requests[("update", LEASE_KEY)] >= start + n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {n} renewals in 4 s")


async def test_an_approval_survives_renewals_and_reaches_the_leaders_annotations(
    apiserver: ApiServer, leader_client: ApprovedAfterRead, approver: KubeClient
) -> None:
    state = ["before"]
    elector = _elector(leader_client, state)
    task = asyncio.create_task(elector.run())
    try:
        await asyncio.wait_for(elector.leading.wait(), 5)
        await _renewals(apiserver, 2)

        # Between two renewals (the usual case): the next optimistic PUT gets 409, the
        # leader reads the Lease, approval included, and writes it back with its own.
        first = Approval.new("inc-20260127t184512", "alice", time.time(), "blip")
        await write_approval(approver, NS, LEASE, first)
        state[0] = "after the first approval"
        await _renewals(apiserver, 5)
        assert elector.is_leader
        stored = apiserver.store.get(LEASE_KEY, NS, LEASE)["metadata"]["annotations"]
        assert stored["fluxwatch.io/guardrail"] == "after the first approval"
        assert approvals(stored) == ([first], [])
        assert approvals(elector.annotations) == ([first], [])

        # Between a renewal's read and its write: a foreign write makes the leader read
        # the Lease, and right after that read the second approval lands.
        second = Approval.new("inc-20260127t190000", "bob", time.time())
        leader_client.armed = second
        reads = leader_client.reads
        touched = apiserver.store.get(LEASE_KEY, NS, LEASE)
        touched["metadata"]["annotations"]["example.com/note"] = "someone else's"
        apiserver.store.update(LEASE_KEY, touched)
        await _renewals(apiserver, 5)
        assert leader_client.armed is None and leader_client.reads >= reads + 2
        assert elector.is_leader
        stored = apiserver.store.get(LEASE_KEY, NS, LEASE)["metadata"]["annotations"]
        assert approvals(stored) == ([first, second], [])
        assert stored["example.com/note"] == "someone else's"
        assert approvals(elector.annotations) == ([first, second], [])
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_leader_stopping_right_after_an_approval_still_releases_the_lease(
    apiserver: ApiServer, leader_client: ApprovedAfterRead, approver: KubeClient
) -> None:
    """The release PUT carries the resourceVersion of the last renewal; an approval since
    then makes it a 409, and the leader reads the Lease and releases that, approval kept
    (else the next replica would wait out leaseDuration)."""
    elector = _elector(leader_client, ["state"])
    elector.retry_period = 10.0  # no renewal between the approval and the stop
    task = asyncio.create_task(elector.run())
    await asyncio.wait_for(elector.leading.wait(), 5)
    approval = Approval.new("inc-20260127t184512", "alice", time.time())
    await write_approval(approver, NS, LEASE, approval)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    lease = apiserver.store.get(LEASE_KEY, NS, LEASE)
    assert lease["spec"]["holderIdentity"] in ("", None), "released"
    assert approvals(lease["metadata"]["annotations"]) == ([approval], [])
    assert lease["metadata"]["annotations"]["fluxwatch.io/guardrail"] == "state"
