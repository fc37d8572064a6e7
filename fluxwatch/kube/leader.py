"""Leader election among fluxwatch replicas with a coordination.k8s.io/v1 Lease.

The algorithm is client-go's: a candidate takes the Lease when it is free or
when its holder has not renewed it for ``lease_duration`` as observed on *our*
clock (we time from the moment we saw the record change, never from the
holder's ``renewTime``, so clock skew between nodes cannot make two leaders).
Every write is a PUT carrying the resourceVersion read just before, so two
candidates racing for the same Lease cannot both win: one gets 409.

A leader renews optimistically, as client-go's leader election does: it PUTs the
Lease it wrote last, with that write's resourceVersion, without reading it
first. Nobody else wrote it in between (the usual case) and the renewal is
one request instead of two, which halves fluxwatch's steady-state API load;
anything else (a 409 because someone did write it, any error) falls back to
the read-then-write path within the same attempt. Every write starts from the
Lease as read, so annotations that are not the leader's survive it: a person's
approval (``fluxwatch.io/approve.<incident>``, ``kube/approvals.py``) merged
in by ``fluxwatch approve`` at any moment is in :attr:`LeaderElector.annotations`
after the next renewal, and the release on a clean stop re-reads after a 409.

The Lease also carries what the leader must hand over (``carry``: fluxwatch's
guardrail counts, as annotations): every write of a leader sets them, a new
leader reads them in :attr:`LeaderElector.annotations` before it starts, and
:meth:`LeaderElector.persist` writes them at once (write-ahead, before an
action they count). The resourceVersion precondition that fences leaders
fences the state too: a deposed leader cannot overwrite its successor's.

A leader that cannot renew within ``renew_deadline`` steps down at once: it
clears :attr:`LeaderElector.leading` before the Lease can expire, so it has
stopped writing before anyone else may start. A leader that reads the Lease and
finds another live holder (someone deleted the Lease and another replica
created it, say) or whose create of a missing Lease is refused because another
replica just created it, steps down then, not at its renew deadline: another
replica leads already, and client-go's ``IsLeader`` would be false from that
read on. On a clean stop it releases the Lease as client-go's ReleaseOnCancel
does (empty holder, ``leaseDurationSeconds`` 1, ``acquireTime`` and ``renewTime``
now, the transitions kept) so the next replica takes over without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from fluxwatch.kube.client import LEASES, KubeApiError, KubeClient, KubeError

log = logging.getLogger("fluxwatch.kube.leader")


def micro_time(ts: float | None = None) -> str:
    """RFC 3339 with microseconds, the form Kubernetes writes MicroTime in."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for one Lease; :attr:`leading` is set exactly while this replica leads."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_change: Callable[[bool], None] | None = None,
        carry: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError(
                "leader election: need lease_duration > renew_deadline > retry_period > 0, got "
                f"{lease_duration}/{renew_deadline}/{retry_period}"
            )
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_change = on_change
        self.carry = carry
        self.leading = asyncio.Event()
        # Renewals and persist() must not race each other into a 409 on our own Lease.
        self._writing = asyncio.Lock()
        self._asked = 0  # persist() calls so far
        self._carried_up_to = 0  # how many of them the last leader's write carried
        self.holder: str = ""
        self._observed: dict[str, Any] | None = None
        self._observed_at = 0.0

    @property
    def is_leader(self) -> bool:
        return self.leading.is_set()

    @property
    def lease_uid_and_version(self) -> tuple[str, str]:
        """The uid and resourceVersion of the Lease as last read or written ("" before
        any): what an Event about this replica's leadership references."""
        meta = (self._observed or {}).get("metadata") or {}
        return str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")

    @property
    def annotations(self) -> Mapping[str, str]:
        """The annotations of the Lease as last read or written (the previous leader's
        hand-over when this replica has just become leader)."""
        observed = self._observed or {}
        return (observed.get("metadata") or {}).get("annotations") or {}

    async def persist(self) -> bool:
        """Write ``carry`` now, while leading; False when that failed (not leading any more,
        or the Lease could not be written): whoever asked must not act on it."""
        if not self.is_leader:
            return False
        self._asked += 1
        mine = self._asked
        async with self._writing:
            if self._carried_up_to < mine:  # else a write since we asked carried it already
                await self._write()
            return self._carried_up_to >= mine and self.is_leader

    def _carried(self, lease: dict[str, Any]) -> dict[str, Any]:
        """``lease`` with what a leader hands over set in its annotations."""
        if self.carry is None:
            return lease
        metadata = dict(lease.get("metadata") or {})
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **self.carry()}
        return {**lease, "metadata": metadata}

    async def run(self) -> None:
        """Campaign, lead, and campaign again after a loss; forever."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                while True:
                    attempt = loop.time()
                    if await self._try_acquire_or_renew():
                        break
                    await asyncio.sleep(self.retry_period)
                self._set_leading(True)
                # Counted from when the winning request was sent: the other candidates count
                # from when they saw it land, which is no earlier.
                last_renew = attempt
                while True:
                    await asyncio.sleep(self.retry_period)
                    attempt = loop.time()
                    # A renewal gets only what is left of the renew deadline: a request that
                    # hangs must not keep this replica leading after the Lease could expire.
                    left = last_renew + self.renew_deadline - attempt
                    try:
                        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows
                        # a cancel that lands as the renewal completes, and this loop
                        # would outlive its own cancellation (shutdown would hang).
                        async with asyncio.timeout(max(left, 0.0)):
                            renewed = await self._try_acquire_or_renew()
                    except TimeoutError:
                        renewed, left = False, 0.0
                    if renewed:
                        last_renew = attempt
                    elif not self.is_leader:
                        break  # deposed: another replica holds the Lease (see _depose)
                    elif left <= 0.0 or loop.time() - last_renew >= self.renew_deadline:
                        log.error(
                            "could not renew the leader Lease within %.1fs; stepping down",
                            self.renew_deadline,
                            extra={"namespace": self.namespace, "object": self.name},
                        )
                        self._set_leading(False)
                        break
        finally:
            if self.is_leader:
                self._set_leading(False)
                await self._release()

    def _set_leading(self, value: bool) -> None:
        if value == self.leading.is_set():
            return
        if value:
            self.leading.set()
            log.info(
                "became leader",
                extra={"namespace": self.namespace, "object": self.name, "identity": self.identity},
            )
        else:
            self.leading.clear()
            log.warning(
                "lost leadership",
                extra={"namespace": self.namespace, "object": self.name, "identity": self.identity},
            )
        if self.on_change is not None:
            self.on_change(value)

    def _spec(self, transitions: int, acquire_time: str | None) -> dict[str, Any]:
        now = micro_time()
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "acquireTime": acquire_time or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def _try_acquire_or_renew(self) -> bool:
        async with self._writing:
            return await self._write()

    async def _write(self) -> bool:
        """One acquire-or-renew, holding ``_writing``."""
        # Every persist() asked before this point is carried by this write (``carry`` is
        # read while it is built): ten recoveries admitted together cost one write.
        covers = self._asked
        written = await self._acquire_or_renew()
        if written and self.is_leader:
            self._carried_up_to = covers
        return written

    async def _acquire_or_renew(self) -> bool:
        if self.is_leader and await self._renew_optimistically():
            return True
        loop = asyncio.get_running_loop()
        try:
            try:
                lease = await self.client.get(LEASES, self.namespace, self.name)
            except KubeApiError as exc:
                if not exc.not_found:
                    raise
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(0, None),
                }
                try:
                    created = await self.client.create(LEASES, self.namespace, body)
                except KubeApiError as exc:
                    if exc.conflict:  # AlreadyExists: another replica created it and leads
                        self._depose("another replica created the Lease")
                    raise
                self._observe(created, loop.time())
                return True
            spec = lease.get("spec") or {}
            if self._observed is None or self._observed.get("spec") != spec:
                self._observe(lease, loop.time())
            holder = spec.get("holderIdentity") or ""
            duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
            expired = self._observed_at + duration <= loop.time()
            if holder and holder != self.identity and not expired:
                self._depose(f"{holder} holds the Lease")
                return False
            transitions = int(spec.get("leaseTransitions") or 0)
            mine = holder == self.identity
            lease["spec"] = self._spec(
                transitions if mine else transitions + 1,
                spec.get("acquireTime") if mine else None,
            )
            if self.is_leader:
                # Only a sitting leader: one taking over keeps its predecessor's hand-over.
                lease = self._carried(lease)
            # PUT with the resourceVersion just read: a racing candidate gets 409.
            updated = await self.client.replace(LEASES, self.namespace, self.name, lease)
            self._observe(updated, loop.time())
            return True
        except KubeApiError as exc:
            if not exc.conflict:
                log.warning("leader election: %s", exc, extra={"object": self.name})
            return False
        except KubeError as exc:
            log.warning("leader election: %s", exc, extra={"object": self.name})
            return False

    async def _renew_optimistically(self) -> bool:
        """PUT the Lease as we last wrote it, without a GET; False to take the slow path."""
        loop = asyncio.get_running_loop()
        observed = self._observed
        if observed is None:
            return False
        spec = observed.get("spec") or {}
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        if spec.get("holderIdentity") != self.identity or (
            self._observed_at + duration <= loop.time()
        ):
            return False
        lease = self._carried(dict(observed))
        lease["spec"] = self._spec(int(spec.get("leaseTransitions") or 0), spec.get("acquireTime"))
        try:
            updated = await self.client.replace(LEASES, self.namespace, self.name, lease)
        except KubeError as exc:
            log.debug("optimistic Lease renewal failed (%s); reading it first", exc)
            return False
        self._observe(updated, loop.time())
        return True

    def _depose(self, why: str) -> None:
        """Stop leading now if this replica leads: ``why`` says who does instead."""
        if self.is_leader:
            log.error(
                "%s; stepping down",
                why,
                extra={"namespace": self.namespace, "object": self.name},
            )
            self._set_leading(False)

    def _observe(self, lease: dict[str, Any], at: float) -> None:
        self._observed = lease
        self._observed_at = at
        self.holder = (lease.get("spec") or {}).get("holderIdentity") or ""

    async def _release(self) -> None:
        """Hand the Lease back so the next replica need not wait for it to expire."""
        if self._observed is None:
            return
        # Twice at most: a 409 means someone wrote the Lease since our last renewal (a
        # person's approval annotation, say); read it and release what is there now.
        for _ in range(2):
            # The last hand-over goes with it: what happened since the last renewal.
            lease = self._carried(dict(self._observed))
            spec = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") != self.identity:
                return
            now = micro_time()
            spec.update(holderIdentity="", acquireTime=now, renewTime=now, leaseDurationSeconds=1)
            lease["spec"] = spec
            try:
                async with asyncio.timeout(5.0):
                    await self.client.replace(LEASES, self.namespace, self.name, lease)
                log.info("released the leader Lease", extra={"object": self.name})
                return
            except KubeApiError as exc:
                if not exc.conflict:
                    self._not_released(exc)
                    return
                try:
                    async with asyncio.timeout(5.0):
                        self._observed = await self.client.get(LEASES, self.namespace, self.name)
                except (KubeError, TimeoutError) as exc:
                    self._not_released(exc)
                    return
            except (KubeError, TimeoutError) as exc:
                self._not_released(exc)
                return
        log.warning(
            "could not release the leader Lease: it kept changing", extra={"object": self.name}
        )

    def _not_released(self, exc: BaseException) -> None:
        log.warning("could not release the leader Lease: %s", exc, extra={"object": self.name})
