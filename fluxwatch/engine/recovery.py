"""Runs one recovery attempt on one stuck HelmRelease: the ladder, each step verified.

The tracker calls :class:`Recovery` (its ``on_due``) with a release it judged
stuck and the guardrail admitted. One call is one attempt:

1. an interrupted suspend-toggle (fluxwatch's marker and ``suspend: true``) is
   resumed, dry run or not, and nothing else happens in that call;
2. Helm storage is read when the verdict asks for it, and the release judged
   again with what the Secrets say; not stuck any more means no write
   (the storage gate); then StuckDetected is announced; a dry run stops here;
3. the guardrail's state is recorded (:meth:`Standing.record`, write-ahead:
   the next leader must know of this action) or nothing is written;
4. the ladder runs in order (``force-reconcile``, ``suspend-toggle``,
   ``status-correct`` when enabled); each step's write is verified through the
   watch: ``Ready=True`` with ``observedGeneration`` at least the generation
   written, within ``verify_timeout``; a step that does not verify is a
   ``RecoveryFailed`` naming the next step, the last one says it gave up.

A ``casualty`` verdict (a release whose install or upgrade failed inside an
incident window, made by the tracker) takes another path: CasualtyDetected is
announced; with ``recovery.reset`` the ``reset`` strategy writes what ``flux
reconcile hr --reset`` writes (``requestedAt`` and ``resetAt``, one token) and
is verified through the watch (Ready=True and ``status.lastHandledResetAt`` at
that token); without it, or in a dry run, nothing is written and the
announcement tells a person the command.

Writes go through the :class:`Writer` seam with the resourceVersion of the
view judged; a 409 re-reads the release, judges it again and, still stuck,
repeats the step once on the fresh view. A replica that is not (or no longer)
the leader writes nothing. A suspend is always followed by its resume, even
when the attempt is cancelled in between (shutdown, lost leadership): the
resume runs shielded and :meth:`Recovery.drain` waits for it. fluxwatch's own
suspend is a debt: a refused resume is retried with backoff while this
replica leads, whatever attempts, budget or dry run say, and every error of
it is handled in one place (``_repay``), which never raises.

What it tells people goes through the :class:`Announcer` seam and what it
counts through :class:`RecoveryObserver`, both in the engine's terms: the
Flux-shaped Events are worded in ``fluxwatch.announce``, the metrics are
``telemetry``'s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from fluxwatch.engine.clock import Clock
from fluxwatch.engine.config import EngineSettings, VerifyStorage
from fluxwatch.engine.policy import Kind, Skip, StorageState, Verdict, decide
from fluxwatch.kube.errors import KubeApiError, KubeError
from fluxwatch.kube.helmrelease import HRView
from fluxwatch.kube.helmstorage import StoredRelease

log = logging.getLogger("fluxwatch.engine.recovery")
# One trace per call: "recover helmrelease", with storage-check, one span per ladder step
# (its writes and "verify" inside) and the alerts it publishes as children.
_tracer = trace.get_tracer(__name__)

Key = tuple[str, str]
FORCE_RECONCILE = "force-reconcile"
SUSPEND_TOGGLE = "suspend-toggle"
STATUS_CORRECT = "status-correct"
RESET = "reset"  # for casualties only, never a step of the ladder


class Writer(Protocol):
    async def get(self, namespace: str, name: str) -> HRView: ...
    async def force_reconcile(self, view: HRView, token: str) -> HRView: ...
    async def reset(self, view: HRView, token: str) -> HRView: ...
    async def suspend(self, view: HRView, marker: str) -> HRView: ...
    async def resume(self, view: HRView) -> HRView: ...
    async def correct_status(self, view: HRView, now: float) -> HRView: ...


class StorageReader(Protocol):
    async def releases(self, namespace: str, release: str) -> list[StoredRelease]: ...


class Announcer(Protocol):
    """What a recovery tells people, in the engine's terms; the wording is app-land's
    (``fluxwatch.announce`` turns each call into a Flux-shaped Event)."""

    def stuck_detected(
        self,
        view: HRView,
        *,
        age: float,
        threshold: float,
        suspicion: str | None,
        blocks: Collection[Key] = (),
    ) -> None: ...
    def recovery_started(
        self, view: HRView, *, strategy: str, attempt: int, max_attempts: int
    ) -> None: ...
    def recovery_failed(
        self,
        view: HRView,
        *,
        strategy: str,
        attempt: int,
        max_attempts: int,
        error: str,
        next_strategy: str | None,
    ) -> None: ...
    # An API error ended the attempt outside any step's own handling.
    def recovery_stopped(
        self, view: HRView, *, attempt: int, max_attempts: int, error: str
    ) -> None: ...
    def recovery_succeeded(
        self, view: HRView, *, strategy: str, attempt: int, max_attempts: int, took: float
    ) -> None: ...
    def recovery_skipped(self, view: HRView, *, why: str, state: str = "stuck") -> None: ...
    # A release whose install or upgrade failed inside an incident window.
    def casualty_detected(
        self, view: HRView, *, failed_for: float, stalled: bool, resetting: bool
    ) -> None: ...
    def suspend_resumed(self, view: HRView, *, marker: str) -> None: ...
    # The API refused the resume of fluxwatch's own suspend: it stays suspended meanwhile.
    def still_suspended(self, view: HRView, *, marker: str, error: str) -> None: ...


class RecoveryObserver(Protocol):
    """What a recovery reports for metrics; telemetry's ``Metrics`` implements it.

    ``result`` is ``succeeded`` or ``failed``, of one step or of the whole ladder."""

    def on_detection_delay(self, seconds: float) -> None: ...  # threshold to first write
    def on_recovery_step(self, strategy: str, result: str) -> None: ...
    def on_recovery_ended(self, result: str, seconds: float) -> None: ...  # from first write


@dataclass(frozen=True, slots=True)
class RecoveryOptions:
    strategies: tuple[str, ...] = (FORCE_RECONCILE, SUSPEND_TOGGLE, STATUS_CORRECT)
    status_correct: bool = False
    # The reset strategy for casualties (Kind.CASUALTY): opt-in, recovery.reset.
    reset: bool = False
    verify_timeout: float = 120.0
    suspend_pause: float = 5.0
    # A refused resume is retried after this, doubling up to the max: fast enough that a
    # short outage leaves the release suspended for seconds, slow enough not to hammer it.
    resume_backoff: float = 1.0
    resume_backoff_max: float = 30.0

    @property
    def ladder(self) -> tuple[str, ...]:
        return tuple(s for s in self.strategies if s != STATUS_CORRECT or self.status_correct)


class ViewWaiter:
    """Lets a recovery wait for the watch to show a release in a wanted state.

    The informer's handler calls :meth:`notify` with every HelmRelease view; a
    waiter registered for that key checks its predicate on it. Keys nobody
    waits for cost one dict lookup.
    """

    def __init__(self, lookup: Callable[[Key], HRView | None] | None = None) -> None:
        self._waiting: dict[Key, list[_Wait]] = {}
        # The cache's latest view: an event handled between a write's response and the
        # wait's registration would otherwise be missed.
        self._lookup = lookup

    def notify(self, view: HRView) -> None:
        waiting = self._waiting.get((view.namespace, view.name))
        if not waiting:
            return
        for wait in waiting:
            wait.latest = view
            if not wait.future.done() and wait.predicate(view):
                wait.future.set_result(view)

    def latest(self, view: HRView) -> HRView:
        """The newest view the cache holds of this release (``view`` when it holds none)."""
        cached = self._lookup((view.namespace, view.name)) if self._lookup is not None else None
        return cached if cached is not None else view

    async def wait(
        self, predicate: Callable[[HRView], bool], timeout: float, current: HRView
    ) -> tuple[bool, HRView]:
        """Whether ``predicate`` held within ``timeout``, and the latest view seen."""
        key = (current.namespace, current.name)
        cached = self._lookup(key) if self._lookup is not None else None
        for view in (current, cached):
            if view is not None and predicate(view):
                return True, view
        wait = _Wait(predicate, asyncio.get_running_loop().create_future(), current)
        self._waiting.setdefault(key, []).append(wait)
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see kube/leader.py
                return True, await wait.future
        except TimeoutError:
            return False, wait.latest
        finally:
            waiting = self._waiting[key]
            waiting.remove(wait)
            if not waiting:
                del self._waiting[key]


@dataclass(slots=True)
class _Wait:
    predicate: Callable[[HRView], bool]
    future: asyncio.Future[HRView]
    latest: HRView


def ready_at_generation(generation: int) -> Callable[[HRView], bool]:
    """Verified: Ready=True, observed at (at least) the generation fluxwatch wrote."""

    def check(view: HRView) -> bool:
        ready = view.ready
        if ready is None or ready.status != "True":
            return False
        observed = ready.observed_generation
        if observed is None:
            observed = view.observed_generation
        return observed >= generation

    return check


def reset_handled(token: str) -> Callable[[HRView], bool]:
    """Verified: helm-controller handled this reset (``status.lastHandledResetAt``) and the
    release is Ready=True."""

    def check(view: HRView) -> bool:
        ready = view.ready
        return view.last_handled_reset_at == token and ready is not None and ready.status == "True"

    return check


def _token() -> str:
    """A new annotation token, RFC 3339 with microseconds as the flux CLI writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class _Climbed:
    """How far one attempt got up the ladder."""

    attempt: int
    strategy: str = ""  # the last strategy run
    first_write: float | None = None  # clock time of the first step
    verified: HRView | None = None  # the view that verified it, if one did


class Standing(Protocol):
    """What a recovery asks of the daemon running it: leadership and the guardrail."""

    def is_leader(self) -> bool: ...
    def attempt_of(self, key: Key) -> int: ...  # this attempt's number, 1 for the first
    def suspicion_of(self, key: Key) -> str | None: ...  # why it is a suspect, if it is
    def halted(self, key: Key) -> str | None: ...  # why not to take the next step, if so
    def blocking(self, key: Key) -> Collection[Key]: ...  # what waits for it (dependsOn)
    async def record(self) -> bool: ...  # the guardrail's state persisted: safe to act


class Alone:
    """A single replica (``fluxwatch scan --recover``): always leads, nothing to hand over."""

    def is_leader(self) -> bool:
        return True

    def attempt_of(self, key: Key) -> int:
        return 1

    def suspicion_of(self, key: Key) -> str | None:
        return None

    def halted(self, key: Key) -> str | None:
        return None

    def blocking(self, key: Key) -> Collection[Key]:
        return ()

    async def record(self) -> bool:
        return True


class _Changed(Exception):
    """The release changed under us and is no longer stuck: stop without writing."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        super().__init__(verdict.reason)


class Recovery:
    """The tracker's ``on_due``: one verified recovery attempt per call."""

    def __init__(
        self,
        writer: Writer,
        waiter: ViewWaiter,
        settings: EngineSettings,
        options: RecoveryOptions,
        announcer: Announcer,
        *,
        clock: Clock,
        storage: StorageReader | None = None,
        standing: Standing | None = None,
        metrics: RecoveryObserver | None = None,
    ) -> None:
        self.writer = writer
        self.waiter = waiter
        self.settings = settings
        self.options = options
        self.announcer = announcer
        self.clock = clock
        self.storage = storage
        self.standing: Standing = standing if standing is not None else Alone()
        self.metrics = metrics
        self._resumes: set[asyncio.Future[HRView | None]] = set()
        self.writes = 0

    async def __call__(self, view: HRView, verdict: Verdict) -> None:
        if not self.standing.is_leader():
            return
        attributes: dict[str, AttributeValue] = {
            "k8s.namespace.name": view.namespace,
            "k8s.helmrelease.name": view.name,
            "fluxwatch.verdict": str(verdict.kind),
            "fluxwatch.attempt": self.standing.attempt_of(_key(view)),
            "fluxwatch.max_attempts": self.settings.guardrail.max_attempts,
            "fluxwatch.ladder": list(self.options.ladder),
            "fluxwatch.dry_run": self.settings.guardrail.dry_run,
        }
        with _tracer.start_as_current_span("recover helmrelease", attributes=attributes):
            await self._attempt(view, verdict)

    async def _attempt(self, view: HRView, verdict: Verdict) -> None:
        try:
            if verdict.kind is Kind.RESUME_PENDING:
                resumed = await self._resume_interrupted(view)
                _outcome("resumed" if resumed else "not-resumed")
            elif verdict.kind is Kind.STUCK:
                await self._recover(view, verdict)
            elif verdict.kind is Kind.CASUALTY:
                await self._reset(view, verdict)
        except _Changed as changed:
            _outcome("changed")
            log.info(
                "no longer stuck before any write: %s",
                changed.verdict.reason,
                extra={"namespace": view.namespace, "object": view.name},
            )
        except KubeError as exc:
            trace.get_current_span().record_exception(exc)
            _outcome("api-error", str(exc))
            log.error(
                "recovery stopped by an API error: %s",
                exc,
                extra={"namespace": view.namespace, "object": view.name},
            )
            self.announcer.recovery_stopped(
                view,
                attempt=self.standing.attempt_of(_key(view)),
                max_attempts=self.settings.guardrail.max_attempts,
                error=str(exc),
            )

    # -- the steps ---------------------------------------------------------------------------

    async def _recover(self, view: HRView, verdict: Verdict) -> None:
        """Storage gate, announcement, ladder, outcome: each its own method below."""
        if verdict.needs_storage:
            gated = await self._storage_gate(view)
            if gated is None:
                return
            view, verdict = gated
        self._announce(view)
        if self.settings.guardrail.dry_run:
            _outcome("dry-run")
            self.announcer.recovery_skipped(
                view, why="dry run: fluxwatch decides and alerts but never writes"
            )
            return
        if not await self.standing.record():
            # Write-ahead: an action the next leader would not know of escapes its limits.
            _outcome("not-recorded", "the guardrail's state could not be recorded")
            log.warning(
                "not recovering: the guardrail's state could not be recorded in the Lease",
                extra={"namespace": view.namespace, "object": view.name},
            )
            return
        result = await self._ladder(view, verdict)
        self._outcome(result)

    async def _storage_gate(self, view: HRView) -> tuple[HRView, Verdict] | None:
        """Judge again with Helm storage; None (and an alert) when it is not stuck after all."""
        with _tracer.start_as_current_span("storage-check") as span:
            view, verdict = await self._wait_for_helm(view)
            span.set_attribute("fluxwatch.verdict", str(verdict.kind))
        if verdict.kind is Kind.STUCK:
            return view, verdict
        _outcome("skipped")
        self.announcer.recovery_skipped(view, why=verdict.reason)
        return None

    def _announce(self, view: HRView) -> None:
        """StuckDetected, on the trace and to people."""
        ready = view.ready
        now = self.clock.now()
        age = now - (ready.last_transition or now) if ready else 0.0
        suspicion = self.standing.suspicion_of(_key(view))
        trace.get_current_span().add_event(
            "stuck detected",
            {"fluxwatch.stuck_for_seconds": age, "fluxwatch.suspect": bool(suspicion)},
        )
        self.announcer.stuck_detected(
            view,
            age=age,
            threshold=self.settings.threshold,
            suspicion=suspicion,
            blocks=self.standing.blocking(_key(view)),
        )

    async def _ladder(self, view: HRView, verdict: Verdict) -> _Climbed:
        """Each strategy in turn until one verifies, or one fails with no next step."""
        attempt = self.standing.attempt_of(_key(view))
        max_attempts = self.settings.guardrail.max_attempts
        ladder = self.options.ladder
        climbed = _Climbed(attempt)
        for index, strategy in enumerate(ladder):
            if not self.standing.is_leader():
                return climbed
            self.announcer.recovery_started(
                view, strategy=strategy, attempt=attempt, max_attempts=max_attempts
            )
            if climbed.first_write is None:
                climbed.first_write = self.clock.now()
                if self.metrics is not None and verdict.due_at is not None:
                    delay = climbed.first_write - verdict.due_at
                    self.metrics.on_detection_delay(max(0.0, delay))
            try:
                with _tracer.start_as_current_span(
                    strategy,
                    attributes={"fluxwatch.strategy": strategy, "fluxwatch.attempt": attempt},
                ) as span:
                    verified, view, error = await self._step(strategy, view)
                    if verified is None:
                        span.set_status(Status(StatusCode.ERROR, error))
            except KubeApiError as exc:
                verified, error = None, f"{exc.code} {exc.reason}: {exc.message}"
            if self.metrics is not None:
                self.metrics.on_recovery_step(strategy, "succeeded" if verified else "failed")
            climbed.strategy = strategy
            if verified is not None:
                climbed.verified = verified
                return climbed
            following = ladder[index + 1] if index + 1 < len(ladder) else None
            if following is not None:
                # Escalate only what is still stuck now: a person may have suspended the
                # release, or helm-controller moved it, while this step was verifying.
                now_verdict = decide(view, None, self.settings, self.clock.now(), None)
                halted = self.standing.halted(_key(view))
                if now_verdict.kind is not Kind.STUCK:
                    error = f"{error.rstrip('.')}; not escalating: {now_verdict.reason}"
                    following = None
                elif halted is not None:
                    # A trip freezes the incident's ladders at the step they reached.
                    error = f"{error.rstrip('.')}; not escalating: {halted}"
                    following = None
            self.announcer.recovery_failed(
                view,
                strategy=strategy,
                attempt=attempt,
                max_attempts=max_attempts,
                error=error,
                next_strategy=following,
            )
            if following is None:
                break
        return climbed

    def _outcome(self, climbed: _Climbed) -> None:
        """How the ladder ended: RecoverySucceeded, or the failure on the span and metrics."""
        if climbed.first_write is None:
            return  # not the leader any more before the first write
        took = self.clock.now() - climbed.first_write
        verified = climbed.verified
        if self.metrics is not None:
            result = "succeeded" if verified is not None else "failed"
            self.metrics.on_recovery_ended(result, took)
        if verified is None:
            _outcome("failed", f"no strategy of {', '.join(self.options.ladder)} verified")
            return
        _outcome("succeeded")
        self.announcer.recovery_succeeded(
            verified,
            strategy=climbed.strategy,
            attempt=climbed.attempt,
            max_attempts=self.settings.guardrail.max_attempts,
            took=took,
        )

    async def _step(self, strategy: str, view: HRView) -> tuple[HRView | None, HRView, str]:
        """Run one strategy with one retry after a 409; return (verified view, latest, error)."""
        for _ in range(2):
            try:
                written = await self._write(strategy, view)
            except KubeApiError as exc:
                if not exc.conflict:
                    raise
                view = await self._rejudge(view)
                continue
            with _tracer.start_as_current_span(
                "verify",
                attributes={
                    "fluxwatch.generation": written.generation,
                    "fluxwatch.verify_timeout_seconds": self.options.verify_timeout,
                },
            ) as span:
                ok, latest = await self.waiter.wait(
                    ready_at_generation(written.generation), self.options.verify_timeout, written
                )
                span.set_attribute("fluxwatch.verified", ok)
            if ok:
                return latest, latest, ""
            ready = latest.ready
            state = f"Ready={ready.status} ({ready.reason})" if ready else "no Ready condition"
            wait = f"{self.options.verify_timeout:.0f}s"
            return None, latest, f"not Ready=True within {wait} of the write; still {state}"
        return None, view, "the release kept changing under every write (409 Conflict twice)"

    async def _write(self, strategy: str, view: HRView) -> HRView:
        if not self.standing.is_leader():
            raise _Changed(Verdict(Kind.SKIPPED, "this replica is no longer the leader"))
        self.writes += 1
        if strategy == FORCE_RECONCILE:
            token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            return await self.writer.force_reconcile(view, token)
        if strategy == SUSPEND_TOGGLE:
            return await self._suspend_toggle(view)
        if strategy == STATUS_CORRECT:
            return await self.writer.correct_status(view, self.clock.now())
        raise ValueError(f"recovery.strategies: unknown strategy {strategy!r}")

    async def _suspend_toggle(self, view: HRView) -> HRView:
        marker = datetime.fromtimestamp(self.clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # One patch sets suspend and the marker: a crash after it leaves the marker behind.
        suspended = await self.writer.suspend(view, marker)
        resume = asyncio.ensure_future(self._resume_after_pause(suspended, marker))
        self._resumes.add(resume)
        resume.add_done_callback(self._resumes.discard)
        # Shielded: if this attempt is cancelled during the pause, the resume still runs.
        resumed = await asyncio.shield(resume)
        return resumed if resumed is not None else suspended

    async def _resume_after_pause(self, suspended: HRView, marker: str) -> HRView | None:
        await asyncio.sleep(self.options.suspend_pause)
        return await self._repay(suspended, marker, announce_success=False)

    async def _resume_interrupted(self, view: HRView) -> bool:
        # dry_run too: this undoes fluxwatch's own write, it is not a recovery.
        log.warning(
            "resuming a release left suspended by an interrupted suspend-toggle (%s)",
            view.suspended_at,
            extra={"namespace": view.namespace, "object": view.name},
        )
        return await self._repay(view, view.suspended_at or "", announce_success=True) is not None

    async def _repay(self, view: HRView, marker: str, *, announce_success: bool) -> HRView | None:
        """Resume a release fluxwatch suspended: a debt, paid as soon as the API allows.

        Retries with backoff for as long as this replica leads, whatever the attempts,
        budget or guardrail say; the first refusal is alerted ("suspended by fluxwatch
        until the API accepts the resume") and, when it finally goes through, so is the
        resume. Ends early when the release is gone or no longer carries the marker (a
        person took over). Every error ends up here, logged once per try; none escapes:
        the caller may be a cancelled attempt that would never look at it.
        Returns the resumed view, or None when there was nothing (more) to resume here.
        """
        delay = self.options.resume_backoff
        refused = False
        try:
            while True:
                if not self.standing.is_leader():
                    log.warning(
                        "not the leader any more: leaving the resume (marker %s) to the next",
                        marker,
                        extra={"namespace": view.namespace, "object": view.name},
                    )
                    return None
                try:
                    resumed = await self.writer.resume(view)
                except KubeError as exc:
                    if isinstance(exc, KubeApiError) and exc.not_found:
                        return None
                    if not (isinstance(exc, KubeApiError) and exc.conflict):
                        log.error(
                            "resume refused, retrying in %.1fs: %s",
                            delay,
                            exc,
                            extra={"namespace": view.namespace, "object": view.name},
                        )
                        if not refused:
                            refused = True
                            self.announcer.still_suspended(view, marker=marker, error=str(exc))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.options.resume_backoff_max)
                    try:
                        view = await self.writer.get(view.namespace, view.name)
                    except KubeApiError as get_exc:
                        if get_exc.not_found:
                            return None
                        continue  # the stale view: its resume answers 409 and we read again
                    except KubeError:
                        continue
                    if not view.suspend or view.suspended_at is None:
                        return view  # resumed already, or a person took over (marker gone)
                    continue
                self.writes += 1
                if refused or announce_success:
                    self.announcer.suspend_resumed(resumed, marker=marker)
                return resumed
        except Exception:
            log.exception(
                "resume failed; the marker (%s) stays for the next attempt",
                marker,
                extra={"namespace": view.namespace, "object": view.name},
            )
            return None

    # -- the reset strategy: a casualty of an incident -------------------------------------

    async def _reset(self, view: HRView, verdict: Verdict) -> None:
        """CasualtyDetected; then, opted in and not a dry run, one verified reset."""
        enabled = self.options.reset and not self.settings.guardrail.dry_run
        self._announce_casualty(view, verdict, enabled)
        if not self.options.reset:
            _outcome("not-enabled")
            return
        if self.settings.guardrail.dry_run:
            _outcome("dry-run")
            self.announcer.recovery_skipped(
                view, why="dry run: fluxwatch decides and alerts but never writes", state="failed"
            )
            return
        if not await self.standing.record():
            _outcome("not-recorded", "the guardrail's state could not be recorded")
            log.warning(
                "not resetting: the guardrail's state could not be recorded in the Lease",
                extra={"namespace": view.namespace, "object": view.name},
            )
            return
        if not self.standing.is_leader():
            return
        attempt = self.standing.attempt_of(_key(view))
        max_attempts = self.settings.guardrail.max_attempts
        self.announcer.recovery_started(
            view, strategy=RESET, attempt=attempt, max_attempts=max_attempts
        )
        started = self.clock.now()
        try:
            with _tracer.start_as_current_span(
                RESET, attributes={"fluxwatch.strategy": RESET, "fluxwatch.attempt": attempt}
            ) as span:
                verified, view, error = await self._reset_step(view)
                if verified is None:
                    span.set_status(Status(StatusCode.ERROR, error))
        except KubeApiError as exc:
            verified, error = None, f"{exc.code} {exc.reason}: {exc.message}"
        took = self.clock.now() - started
        result = "succeeded" if verified is not None else "failed"
        if self.metrics is not None:
            self.metrics.on_recovery_step(RESET, result)
            self.metrics.on_recovery_ended(result, took)
        if verified is None:
            _outcome("failed", error)
            self.announcer.recovery_failed(
                view,
                strategy=RESET,
                attempt=attempt,
                max_attempts=max_attempts,
                error=error,
                next_strategy=None,
            )
            return
        _outcome("succeeded")
        self.announcer.recovery_succeeded(
            verified, strategy=RESET, attempt=attempt, max_attempts=max_attempts, took=took
        )

    def _announce_casualty(self, view: HRView, verdict: Verdict, resetting: bool) -> None:
        now = self.clock.now()
        failed_for = max(0.0, now - verdict.failed_at) if verdict.failed_at is not None else 0.0
        stalled = view.stalled is not None and view.stalled.status == "True"
        trace.get_current_span().add_event(
            "casualty detected",
            {"fluxwatch.failed_for_seconds": failed_for, "fluxwatch.stalled": stalled},
        )
        self.announcer.casualty_detected(
            view, failed_for=failed_for, stalled=stalled, resetting=resetting
        )

    async def _reset_step(self, view: HRView) -> tuple[HRView | None, HRView, str]:
        """Write the reset with one retry after a 409; return (verified view, latest, error)."""
        for _ in range(2):
            if not self.standing.is_leader():
                raise _Changed(Verdict(Kind.SKIPPED, "this replica is no longer the leader"))
            token = _token()
            self.writes += 1
            try:
                written = await self.writer.reset(view, token)
            except KubeApiError as exc:
                if not exc.conflict:
                    raise
                view = await self._rejudge_casualty(view)
                continue
            with _tracer.start_as_current_span(
                "verify",
                attributes={"fluxwatch.verify_timeout_seconds": self.options.verify_timeout},
            ) as span:
                ok, latest = await self.waiter.wait(
                    reset_handled(token), self.options.verify_timeout, written
                )
                span.set_attribute("fluxwatch.verified", ok)
            if ok:
                return latest, latest, ""
            ready = latest.ready
            state = f"Ready={ready.status} ({ready.reason})" if ready else "no Ready condition"
            handled = (
                "helm-controller handled the reset"
                if latest.last_handled_reset_at == token
                else "helm-controller has not handled the reset"
            )
            wait = f"{self.options.verify_timeout:.0f}s"
            return None, latest, f"not Ready=True within {wait} of the reset; {handled}; {state}"
        return None, view, "the release kept changing under every write (409 Conflict twice)"

    async def _rejudge_casualty(self, view: HRView) -> HRView:
        """After a 409: still a resettable failure, or stop without writing (a person
        suspended it, helm-controller recovered it, ...)."""
        fresh = await self.writer.get(view.namespace, view.name)
        verdict = decide(fresh, None, self.settings, self.clock.now(), None)
        if verdict.skip is not Skip.FAILED or not verdict.resettable:
            raise _Changed(verdict)
        return fresh

    def abandon(self) -> None:
        """Stop the resumes in flight (a one-shot scan that cannot wait for the API to
        allow one); their markers stay, so the next run or the daemon resumes them."""
        for resume in self._resumes:
            resume.cancel()

    async def drain(self, timeout: float) -> None:
        """Wait for suspend-toggles in flight to resume (shutdown)."""
        pending = [t for t in self._resumes if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    # -- helpers -------------------------------------------------------------------------------

    async def _wait_for_helm(self, view: HRView) -> tuple[HRView, Verdict]:
        """Judge with Helm storage; while Helm itself is still at work (the newest Secret
        is ``pending-*``), wait and look again rather than alert: a long install past the
        threshold is not the stuck bug. Gives up after ``verify_timeout``."""
        verdict, pending = await self._judge_with_storage(view)
        interval = max(0.05, min(30.0, self.settings.threshold / 10))
        deadline = self.clock.now() + self.options.verify_timeout
        while pending and self.clock.now() < deadline:
            await asyncio.sleep(interval)
            latest = self.waiter.latest(view)
            if decide(latest, None, self.settings, self.clock.now()).kind is not Kind.STUCK:
                # Ready, suspended, deleted ...: this attempt has nothing left to do.
                return latest, decide(latest, None, self.settings, self.clock.now())
            view = latest
            verdict, pending = await self._judge_with_storage(view)
        return view, verdict

    async def _judge_with_storage(self, view: HRView) -> tuple[Verdict, bool]:
        """The verdict with Helm storage read, and whether Helm is still at work."""
        state: StorageState
        if self.storage is None:
            state = StorageState.unreadable("fluxwatch has no access to Helm storage")
        else:
            try:
                releases = await self.storage.releases(view.storage_namespace, view.release_name)
                state = StorageState.of(releases)
            except KubeApiError as exc:
                if self.settings.verify_storage is VerifyStorage.ALWAYS or not exc.forbidden:
                    state = StorageState.unreadable(f"{exc.code} {exc.reason}")
                else:
                    state = StorageState.unreadable("Secrets are not readable (403)")
        newest = state.newest
        trace.get_current_span().set_attributes(
            {
                "fluxwatch.storage.readable": state.readable,
                "fluxwatch.storage.status": newest.status if newest is not None else "",
            }
        )
        pending = newest is not None and newest.status.startswith("pending-")
        return decide(view, None, self.settings, self.clock.now(), state), pending

    async def _rejudge(self, view: HRView) -> HRView:
        fresh = await self.writer.get(view.namespace, view.name)
        verdict = decide(fresh, None, self.settings, self.clock.now(), None)
        if verdict.kind is not Kind.STUCK:
            raise _Changed(verdict)
        return fresh


def _outcome(outcome: str, error: str = "") -> None:
    """Record how the attempt ended on the current span (the attempt's root)."""
    span = trace.get_current_span()
    span.set_attribute("fluxwatch.outcome", outcome)
    if error:
        span.set_status(Status(StatusCode.ERROR, error))


def _key(view: HRView) -> Key:
    return (view.namespace, view.name)


__all__ = [
    "FORCE_RECONCILE",
    "RESET",
    "STATUS_CORRECT",
    "SUSPEND_TOGGLE",
    "Alone",
    "Announcer",
    "Recovery",
    "RecoveryObserver",
    "RecoveryOptions",
    "Standing",
    "StorageReader",
    "ViewWaiter",
    "Writer",
    "ready_at_generation",
    "reset_handled",
]
