"""What a recovery hands its seams, argument by argument: the Announcer, the metrics, the
trace and the log.

``test_recovery.py`` checks the Events people read; these tests check what the engine
passes to build them (every attempt number, age, error and next step), the span tree an
operator reads in a tracing backend (names, attributes, outcome, status) and the log
lines, word for word. The Writer is ``Api`` from ``test_recovery`` under looptime; the
trace goes to an in-memory exporter through the module's tracer.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from engine_objects import T0, ready, stuck_obj
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from test_recovery import DUE, Api, Storage, conflict, refused, secret
from test_recovery_reset import failed_obj

from fluxwatch.engine import recovery as recovery_module
from fluxwatch.engine.clock import Clock
from fluxwatch.engine.config import EngineSettings, GuardrailSettings
from fluxwatch.engine.policy import Kind, Verdict, casualty, decide
from fluxwatch.engine.recovery import (
    FORCE_RECONCILE,
    RESET,
    STATUS_CORRECT,
    SUSPEND_TOGGLE,
    Recovery,
    RecoveryOptions,
    ViewWaiter,
)
from fluxwatch.kube.client import KubeApiError, KubeConnectionError
from fluxwatch.kube.helmrelease import (
    ANNOTATION_RESET_AT,
    ANNOTATION_SUSPENDED_AT,
    HRView,
    hr_view,
)

pytestmark = pytest.mark.looptime

KEY = ("flux-system", "bp-vpa")
LOGGER = "fluxwatch.engine.recovery"


@dataclass
class Call:
    name: str
    view: HRView
    kwargs: dict[str, Any]


@dataclass
class Recorder:
    """An Announcer that keeps each call with its arguments."""

    calls: list[Call] = field(default_factory=list)

    def _add(self, name: str, view: HRView, **kwargs: Any) -> None:
        self.calls.append(Call(name, view, kwargs))

    def stuck_detected(self, view: HRView, **kwargs: Any) -> None:
        self._add("stuck_detected", view, **kwargs)

    def recovery_started(self, view: HRView, **kwargs: Any) -> None:
        self._add("recovery_started", view, **kwargs)

    def recovery_failed(self, view: HRView, **kwargs: Any) -> None:
        self._add("recovery_failed", view, **kwargs)

    def recovery_stopped(self, view: HRView, **kwargs: Any) -> None:
        self._add("recovery_stopped", view, **kwargs)

    def recovery_succeeded(self, view: HRView, **kwargs: Any) -> None:
        self._add("recovery_succeeded", view, **kwargs)

    def recovery_skipped(self, view: HRView, **kwargs: Any) -> None:
        self._add("recovery_skipped", view, **kwargs)

    def casualty_detected(self, view: HRView, **kwargs: Any) -> None:
        self._add("casualty_detected", view, **kwargs)

    def suspend_resumed(self, view: HRView, **kwargs: Any) -> None:
        self._add("suspend_resumed", view, **kwargs)

    def still_suspended(self, view: HRView, **kwargs: Any) -> None:
        self._add("still_suspended", view, **kwargs)

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def __getitem__(self, name: str) -> Call:
        (call,) = [c for c in self.calls if c.name == name]
        return call


@dataclass
class Observer:
    """A RecoveryObserver that keeps each call."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def on_detection_delay(self, seconds: float) -> None:
        self.calls.append(("delay", seconds))

    def on_recovery_step(self, strategy: str, result: str) -> None:
        self.calls.append(("step", strategy, result))

    def on_recovery_ended(self, result: str, seconds: float) -> None:
        self.calls.append(("ended", result, seconds))


@dataclass
class Standing:
    """The guardrail's answers, each one distinct so that a mixed-up argument shows."""

    leading: bool = True
    recorded: bool = True
    attempt: int = 2
    suspicion: str | None = "its controller's Lease changed hands 4 times"
    halt: str | None = None
    blocks: tuple[tuple[str, str], ...] = (("apps", "web"),)
    asked: list[tuple[str, tuple[str, str]]] = field(default_factory=list)

    def is_leader(self) -> bool:
        return self.leading

    def attempt_of(self, key: tuple[str, str]) -> int:
        self.asked.append(("attempt_of", key))
        return self.attempt

    def suspicion_of(self, key: tuple[str, str]) -> str | None:
        self.asked.append(("suspicion_of", key))
        return self.suspicion

    def halted(self, key: tuple[str, str]) -> str | None:
        self.asked.append(("halted", key))
        return self.halt

    def blocking(self, key: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        self.asked.append(("blocking", key))
        return self.blocks

    async def record(self) -> bool:
        return self.recorded


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The module's spans, finished, in an in-memory exporter (no global provider set)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(recovery_module, "_tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is not UTC (the tests' machines run in UTC)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def utc_wall_time(token: str) -> float:
    """An RFC 3339 token with microseconds, as the flux CLI writes it, read as UTC."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", token), token
    return datetime.strptime(token, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


class Rig:
    def __init__(
        self,
        strategies: tuple[str, ...] = (FORCE_RECONCILE, SUSPEND_TOGGLE),
        *,
        obj: dict[str, Any] | None = None,
        dry_run: bool = False,
        reset: bool = False,
        storage: Storage | None = None,
        verify: str = "never",
        standing: Standing | None = None,
    ) -> None:
        self.settings = EngineSettings(
            guardrail=GuardrailSettings(dry_run=dry_run, max_attempts=5), verify_storage=verify
        )
        self.waiter = ViewWaiter()
        self.api = Api(self.waiter) if obj is None else Api(self.waiter, obj=obj)
        self.announcer = Recorder()
        self.observer = Observer()
        self.standing = standing or Standing()
        self.recovery = Recovery(
            self.api,
            self.waiter,
            self.settings,
            RecoveryOptions(
                strategies=strategies, status_correct=True, reset=reset, verify_timeout=60.0
            ),
            self.announcer,
            clock=Clock(epoch=DUE),
            storage=storage,
            standing=self.standing,
            metrics=self.observer,
        )

    async def run(self, verdict: Verdict | None = None) -> None:
        view = self.api.view
        await self.recovery(view, verdict or decide(view, None, self.settings, DUE))


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    finished = exporter.get_finished_spans()
    named = {s.name: s for s in finished}
    assert len(named) == len(finished), [s.name for s in finished]
    return named


def root_attributes(rig: Rig, verdict: str) -> dict[str, Any]:
    return {
        "k8s.namespace.name": "flux-system",
        "k8s.helmrelease.name": "bp-vpa",
        "fluxwatch.verdict": verdict,
        "fluxwatch.attempt": 2,
        "fluxwatch.max_attempts": 5,
        "fluxwatch.ladder": tuple(rig.recovery.options.ladder),
        "fluxwatch.dry_run": rig.settings.guardrail.dry_run,
    }


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, str, str]]:
    """(level, message, namespace, object) of the recovery's log records."""
    return [
        (r.levelno, r.getMessage(), getattr(r, "namespace", ""), getattr(r, "object", ""))
        for r in caplog.records
        if r.name == LOGGER
    ]


# -- the ladder -------------------------------------------------------------------------------


async def test_a_verified_step_hands_each_seam_its_numbers(
    spans: InMemorySpanExporter,
) -> None:
    rig = Rig()
    rig.api.heal[FORCE_RECONCILE] = 7.0
    await asyncio.sleep(3.0)  # on_due ran 3 s after the release fell due
    await rig.run()
    a = rig.announcer
    assert a.names() == ["stuck_detected", "recovery_started", "recovery_succeeded"]
    assert a["stuck_detected"].kwargs == {
        "age": DUE + 3.0 - T0,
        "threshold": 300.0,
        "suspicion": "its controller's Lease changed hands 4 times",
        "blocks": (("apps", "web"),),
    }
    assert a["recovery_started"].kwargs == {
        "strategy": FORCE_RECONCILE,
        "attempt": 2,
        "max_attempts": 5,
    }
    succeeded = a["recovery_succeeded"]
    assert succeeded.kwargs == {
        "strategy": FORCE_RECONCILE,
        "attempt": 2,
        "max_attempts": 5,
        "took": 7.0,
    }
    assert succeeded.view.ready is not None and succeeded.view.ready.status == "True"
    assert rig.standing.asked == [
        ("attempt_of", KEY),
        ("suspicion_of", KEY),
        ("blocking", KEY),
        ("attempt_of", KEY),
    ]
    assert rig.observer.calls == [
        ("delay", 3.0),
        ("step", FORCE_RECONCILE, "succeeded"),
        ("ended", "succeeded", 7.0),
    ]
    named = by_name(spans)
    root = named["recover helmrelease"]
    assert dict(root.attributes or {}) == {
        **root_attributes(rig, "stuck"),
        "fluxwatch.outcome": "succeeded",
    }
    assert root.status.status_code is StatusCode.UNSET
    assert [(e.name, dict(e.attributes or {})) for e in root.events] == [
        (
            "stuck detected",
            {"fluxwatch.stuck_for_seconds": DUE + 3.0 - T0, "fluxwatch.suspect": True},
        )
    ]
    step = named[FORCE_RECONCILE]
    assert dict(step.attributes or {}) == {
        "fluxwatch.strategy": FORCE_RECONCILE,
        "fluxwatch.attempt": 2,
    }
    assert step.parent is not None and step.parent.span_id == root.context.span_id
    assert step.status.status_code is StatusCode.UNSET
    verify = named["verify"]
    assert dict(verify.attributes or {}) == {
        "fluxwatch.generation": 1,
        "fluxwatch.verify_timeout_seconds": 60.0,
        "fluxwatch.verified": True,
    }
    assert verify.parent is not None and verify.parent.span_id == step.context.span_id


async def test_a_release_not_suspected_and_blocking_nothing_is_announced_so() -> None:
    rig = Rig(standing=Standing(suspicion=None, blocks=()))
    rig.api.heal[FORCE_RECONCILE] = 1.0
    await rig.run()
    assert rig.announcer["stuck_detected"].kwargs == {
        "age": DUE - T0,
        "threshold": 300.0,
        "suspicion": None,
        "blocks": (),
    }


async def test_a_ladder_that_never_verifies_names_each_failure_and_the_next_step(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig()
    await rig.run()
    a = rig.announcer
    assert a.names() == [
        "stuck_detected",
        "recovery_started",
        "recovery_failed",
        "recovery_started",
        "recovery_failed",
    ]
    first, second = [c for c in a.calls if c.name == "recovery_failed"]
    assert first.kwargs == {
        "strategy": FORCE_RECONCILE,
        "attempt": 2,
        "max_attempts": 5,
        "error": "not Ready=True within 60s of the write; still Ready=Unknown (Progressing)",
        "next_strategy": SUSPEND_TOGGLE,
    }
    assert second.kwargs == {
        "strategy": SUSPEND_TOGGLE,
        "attempt": 2,
        "max_attempts": 5,
        "error": "not Ready=True within 60s of the write; still Ready=Unknown (Progressing)",
        "next_strategy": None,
    }
    # the view after the resume: generation 3 (suspend and resume each bumped it)
    assert second.view.generation == 3
    assert rig.observer.calls == [
        ("delay", 0.0),
        ("step", FORCE_RECONCILE, "failed"),
        ("step", SUSPEND_TOGGLE, "failed"),
        ("ended", "failed", 60.0 + 5.0 + 60.0),
    ]
    named = {s.name: s for s in spans.get_finished_spans() if s.name != "verify"}
    root = named["recover helmrelease"]
    assert root.attributes is not None and root.attributes["fluxwatch.outcome"] == "failed"
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description == "no strategy of force-reconcile, suspend-toggle verified"
    for strategy in (FORCE_RECONCILE, SUSPEND_TOGGLE):
        assert named[strategy].status.status_code is StatusCode.ERROR
        assert named[strategy].status.description == first.kwargs["error"]
    verifies = [s for s in spans.get_finished_spans() if s.name == "verify"]
    assert [dict(s.attributes or {}) for s in verifies] == [
        {
            "fluxwatch.generation": 1,
            "fluxwatch.verify_timeout_seconds": 60.0,
            "fluxwatch.verified": False,
        },
        {
            "fluxwatch.generation": 3,
            "fluxwatch.verify_timeout_seconds": 60.0,
            "fluxwatch.verified": False,
        },
    ]
    assert lines(caplog) == []


async def test_a_step_that_ends_without_a_ready_condition_says_so() -> None:
    rig = Rig((FORCE_RECONCILE,))
    rig.api.obj["status"]["conditions"] = [
        c for c in rig.api.obj["status"]["conditions"] if c["type"] != "Ready"
    ]
    verdict = Verdict(Kind.STUCK, "stuck", due_at=DUE)
    await rig.run(verdict)
    assert rig.announcer["stuck_detected"].kwargs["age"] == 0.0
    assert rig.announcer["recovery_failed"].kwargs["error"] == (
        "not Ready=True within 60s of the write; still no Ready condition"
    )


async def test_a_step_not_escalated_because_the_release_moved_says_why() -> None:
    """While force-reconcile verified, a person suspended the release: the failure names
    the verdict and there is no next step; the trailing period of the step's error goes."""
    rig = Rig()

    async def person_suspends() -> None:
        await asyncio.sleep(30)
        rig.api.obj["spec"]["suspend"] = True
        rig.waiter.notify(rig.api.view)

    helper = asyncio.create_task(person_suspends())
    await rig.run()
    await helper
    failed = rig.announcer["recovery_failed"]
    verdict = decide(rig.api.view, None, rig.settings, DUE + 60)
    assert failed.kwargs["error"] == (
        "not Ready=True within 60s of the write; still Ready=Unknown (Progressing)"
        f"; not escalating: {verdict.reason}"
    )
    assert failed.kwargs["next_strategy"] is None
    assert rig.api.verbs() == ["force-reconcile"]


async def test_a_halt_is_asked_for_the_release_and_freezes_its_ladder() -> None:
    rig = Rig(standing=Standing(halt="incident inc-1 tripped the batch guard."))
    await rig.run()
    failed = rig.announcer["recovery_failed"]
    assert failed.kwargs["error"] == (
        "not Ready=True within 60s of the write; still Ready=Unknown (Progressing)"
        "; not escalating: incident inc-1 tripped the batch guard."
    )
    assert failed.kwargs["next_strategy"] is None
    assert ("halted", KEY) in rig.standing.asked


async def test_each_failed_step_names_the_one_after_it() -> None:
    rig = Rig((FORCE_RECONCILE, SUSPEND_TOGGLE, STATUS_CORRECT))
    await rig.run()
    failed = [c.kwargs for c in rig.announcer.calls if c.name == "recovery_failed"]
    assert [(f["strategy"], f["next_strategy"]) for f in failed] == [
        (FORCE_RECONCILE, SUSPEND_TOGGLE),
        (SUSPEND_TOGGLE, STATUS_CORRECT),
        (STATUS_CORRECT, None),
    ]


async def test_a_halt_drops_only_the_final_periods_of_the_error() -> None:
    """The step's error and why it is not escalated are joined by "; ": a sentence's final
    period goes, anything else of the API's message stays as it came. (A release that moved
    is judged on the view of a step that verified nothing, whose error ends in ")".)"""
    rig = Rig(standing=Standing(halt="incident inc-1 tripped"))
    rig.api.fail["force-reconcile"] = [
        KubeApiError(500, "InternalError", ".webhook denied the request: code X..")
    ]
    await rig.run()
    assert rig.announcer["recovery_failed"].kwargs["error"] == (
        "500 InternalError: .webhook denied the request: code X; "
        "not escalating: incident inc-1 tripped"
    )


async def test_a_refused_step_names_the_status_error_and_escalates(
    spans: InMemorySpanExporter,
) -> None:
    rig = Rig()
    rig.api.fail["force-reconcile"] = [refused()]
    rig.api.heal[SUSPEND_TOGGLE] = 1.0
    await rig.run()
    failed = rig.announcer["recovery_failed"]
    assert failed.kwargs["error"] == "500 InternalError: failed calling webhook"
    assert failed.kwargs["next_strategy"] == SUSPEND_TOGGLE
    assert rig.observer.calls[:2] == [("delay", 0.0), ("step", FORCE_RECONCILE, "failed")]
    assert rig.announcer.calls[-1].name == "recovery_succeeded"
    assert rig.announcer.calls[-1].kwargs["strategy"] == SUSPEND_TOGGLE


async def test_the_step_after_two_conflicts_is_named_and_timed() -> None:
    rig = Rig()
    rig.api.fail["force-reconcile"] = [conflict(), conflict()]
    rig.api.heal[SUSPEND_TOGGLE] = 2.0
    await rig.run()
    failed = rig.announcer["recovery_failed"]
    assert failed.kwargs["error"] == (
        "the release kept changing under every write (409 Conflict twice)"
    )
    succeeded = rig.announcer["recovery_succeeded"]
    assert succeeded.kwargs == {
        "strategy": SUSPEND_TOGGLE,
        "attempt": 2,
        "max_attempts": 5,
        "took": 7.0,
    }
    assert rig.recovery.writes == 4  # two refused force-reconciles, suspend, resume


async def test_the_first_write_is_timed_once_per_attempt() -> None:
    """The ladder's duration counts from its first step, not from the last one."""
    rig = Rig()
    rig.api.heal[SUSPEND_TOGGLE] = 2.0
    await rig.run()
    assert rig.observer.calls[-1] == ("ended", "succeeded", 60.0 + 5.0 + 2.0)
    assert rig.announcer["recovery_succeeded"].kwargs["took"] == 67.0


async def test_a_verdict_without_a_due_time_reports_no_detection_delay() -> None:
    rig = Rig()
    rig.api.heal[FORCE_RECONCILE] = 1.0
    await rig.run(Verdict(Kind.STUCK, "stuck"))
    assert rig.observer.calls == [
        ("step", FORCE_RECONCILE, "succeeded"),
        ("ended", "succeeded", 1.0),
    ]


async def test_a_detection_delay_is_never_negative() -> None:
    rig = Rig()
    rig.api.heal[FORCE_RECONCILE] = 1.0
    await rig.run(Verdict(Kind.STUCK, "stuck", due_at=DUE + 10))
    assert rig.observer.calls[0] == ("delay", 0.0)


async def test_status_correct_writes_at_the_clock_time() -> None:
    seen: list[float] = []
    rig = Rig((STATUS_CORRECT,))
    original = rig.api.correct_status

    async def correct_status(view: HRView, now: float) -> HRView:
        seen.append(now)
        return await original(view, now)

    rig.api.correct_status = correct_status  # type: ignore[method-assign]
    rig.api.heal[STATUS_CORRECT] = 1.0
    await asyncio.sleep(4.0)
    await rig.run()
    assert seen == [DUE + 4.0]


async def test_an_unknown_strategy_is_a_clear_error() -> None:
    rig = Rig(("rollback",))
    with pytest.raises(ValueError, match=r"^recovery.strategies: unknown strategy 'rollback'$"):
        await rig.run()


async def test_a_leader_lost_before_the_first_step_ends_the_attempt_quietly(
    spans: InMemorySpanExporter,
) -> None:
    rig = Rig()

    async def record() -> bool:
        rig.standing.leading = False
        return True

    rig.standing.record = record  # type: ignore[method-assign]
    await rig.run()
    assert rig.announcer.names() == ["stuck_detected"]
    assert rig.observer.calls == []
    assert rig.api.calls == []
    root = by_name(spans)["recover helmrelease"]
    assert "fluxwatch.outcome" not in (root.attributes or {})


async def test_a_leader_lost_between_steps_takes_no_next_step() -> None:
    rig = Rig()

    async def lose() -> None:
        await asyncio.sleep(30)
        rig.standing.leading = False

    helper = asyncio.create_task(lose())
    await rig.run()
    await helper
    assert rig.api.verbs() == ["force-reconcile"]
    assert rig.announcer.names() == ["stuck_detected", "recovery_started", "recovery_failed"]
    assert rig.observer.calls[-1] == ("ended", "failed", 60.0)


async def test_a_leader_lost_before_a_write_stops_without_writing(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    rig = Rig()
    rig.api.fail["force-reconcile"] = [conflict()]
    original = rig.api.get

    async def get(namespace: str, name: str) -> HRView:
        rig.standing.leading = False
        return await original(namespace, name)

    rig.api.get = get  # type: ignore[method-assign]
    await rig.run()
    assert rig.api.verbs() == ["force-reconcile", "get"]
    assert rig.recovery.writes == 1
    assert lines(caplog) == [
        (
            logging.INFO,
            "no longer stuck before any write: this replica is no longer the leader",
            "flux-system",
            "bp-vpa",
        )
    ]
    assert by_name(spans)["recover helmrelease"].attributes["fluxwatch.outcome"] == "changed"  # type: ignore[index]


# -- before the ladder: dry run, write-ahead, storage ------------------------------------------


async def test_a_dry_run_is_skipped_as_stuck_on_the_trace(spans: InMemorySpanExporter) -> None:
    rig = Rig(dry_run=True)
    await rig.run()
    assert rig.announcer.names() == ["stuck_detected", "recovery_skipped"]
    assert rig.announcer["recovery_skipped"].kwargs == {
        "why": "dry run: fluxwatch decides and alerts but never writes"
    }
    root = by_name(spans)["recover helmrelease"]
    assert dict(root.attributes or {}) == {
        **root_attributes(rig, "stuck"),
        "fluxwatch.outcome": "dry-run",
    }
    assert root.status.status_code is StatusCode.UNSET


async def test_an_unrecorded_guardrail_state_is_logged_and_on_the_trace(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(standing=Standing(recorded=False))
    await rig.run()
    assert lines(caplog) == [
        (
            logging.WARNING,
            "not recovering: the guardrail's state could not be recorded in the Lease",
            "flux-system",
            "bp-vpa",
        )
    ]
    root = by_name(spans)["recover helmrelease"]
    assert root.attributes is not None and root.attributes["fluxwatch.outcome"] == "not-recorded"
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description == "the guardrail's state could not be recorded"


async def test_storage_that_says_not_stuck_skips_with_its_reason(
    spans: InMemorySpanExporter,
) -> None:
    """history[0] says deployed v1, the Secrets say v2 failed: not the stuck bug."""
    storage = Storage([[secret(1, "superseded"), secret(2, "failed")]])
    rig = Rig(storage=storage, verify="auto")
    await rig.run()
    skipped = rig.announcer["recovery_skipped"]
    verdict = decide(
        rig.api.view,
        None,
        rig.settings,
        DUE,
        recovery_module.StorageState.of([secret(1, "superseded"), secret(2, "failed")]),
    )
    assert verdict.kind is not Kind.STUCK
    assert skipped.kwargs == {"why": verdict.reason}
    assert rig.announcer.names() == ["recovery_skipped"]
    named = by_name(spans)
    assert named["recover helmrelease"].attributes["fluxwatch.outcome"] == "skipped"  # type: ignore[index]
    check = named["storage-check"]
    assert dict(check.attributes or {}) == {
        "fluxwatch.storage.readable": True,
        "fluxwatch.storage.status": "failed",
        "fluxwatch.verdict": str(verdict.kind),
    }


async def test_storage_that_confirms_it_is_stuck_goes_on_with_the_ladder(
    spans: InMemorySpanExporter,
) -> None:
    storage = Storage([[secret(1, "deployed")]])
    rig = Rig(storage=storage, verify="auto")
    rig.api.heal[FORCE_RECONCILE] = 1.0
    await rig.run()
    assert storage.reads == [0.0]
    assert rig.announcer.names() == ["stuck_detected", "recovery_started", "recovery_succeeded"]
    check = by_name(spans)["storage-check"]
    assert dict(check.attributes or {}) == {
        "fluxwatch.storage.readable": True,
        "fluxwatch.storage.status": "deployed",
        "fluxwatch.verdict": "stuck",
    }


async def test_storage_is_read_for_the_release_in_its_storage_namespace() -> None:
    asked: list[tuple[str, str]] = []

    @dataclass
    class Asked:
        async def releases(self, namespace: str, release: str) -> list[Any]:
            asked.append((namespace, release))
            return [secret(1, "deployed")]

    rig = Rig(storage=Storage([[]]), verify="auto")
    rig.recovery.storage = Asked()
    rig.api.heal[FORCE_RECONCILE] = 1.0
    await rig.run()
    view = rig.api.view
    assert asked == [(view.storage_namespace, view.release_name)]


async def test_no_storage_reader_leaves_the_secrets_unread(spans: InMemorySpanExporter) -> None:
    """Without a reader (no RBAC for Secrets), ``auto`` trusts status.history."""
    rig = Rig(verify="auto")
    rig.api.heal[FORCE_RECONCILE] = 1.0
    await rig.run()
    assert rig.announcer.names()[-1] == "recovery_succeeded"
    check = by_name(spans)["storage-check"]
    assert dict(check.attributes or {}) == {
        "fluxwatch.storage.readable": False,
        "fluxwatch.storage.status": "",
        "fluxwatch.verdict": "stuck",
    }


@pytest.mark.parametrize(
    ("verify", "error", "why"),
    [
        ("always", KubeApiError(403, "Forbidden", "no"), "403 Forbidden"),
        ("always", KubeApiError(500, "InternalError", "no"), "500 InternalError"),
    ],
)
async def test_unreadable_storage_names_the_status_when_it_must_be_read(
    verify: str, error: KubeApiError, why: str
) -> None:
    @dataclass
    class Failing:
        async def releases(self, namespace: str, release: str) -> list[Any]:
            raise error

    rig = Rig(storage=Storage([[]]), verify=verify)
    rig.recovery.storage = Failing()
    await rig.run()
    (skipped,) = rig.announcer.calls
    assert skipped.name == "recovery_skipped"
    assert why in skipped.kwargs["why"]


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (KubeApiError(403, "Forbidden", "no"), "Secrets are not readable (403)"),
        (KubeApiError(500, "InternalError", "no"), "500 InternalError"),
    ],
)
async def test_unreadable_storage_under_auto_is_named_by_why_it_failed(
    error: KubeApiError, problem: str
) -> None:
    """Without status.history, auto has nothing to trust: the skip names the failure, a
    403 as the missing RBAC it is."""

    @dataclass
    class Failing:
        async def releases(self, namespace: str, release: str) -> list[Any]:
            raise error

    rig = Rig(storage=Storage([[]]), verify="auto")
    rig.api.obj["status"].pop("history")
    rig.recovery.storage = Failing()
    await rig.run(Verdict(Kind.STUCK, "stuck", due_at=DUE, needs_storage=True))
    assert rig.announcer.names() == ["recovery_skipped"]
    assert rig.announcer.calls[0].kwargs == {
        "why": f"no status.history and Helm storage unreadable ({problem})"
    }


async def test_no_storage_reader_and_no_history_is_skipped_saying_so() -> None:
    rig = Rig(verify="auto")
    rig.api.obj["status"].pop("history")
    await rig.run(Verdict(Kind.STUCK, "stuck", due_at=DUE, needs_storage=True))
    assert rig.announcer.calls[0].kwargs == {
        "why": "no status.history and Helm storage unreadable "
        "(fluxwatch has no access to Helm storage)"
    }


async def test_the_pending_wait_ends_when_helm_controller_starts_over() -> None:
    """While Helm was at work, the release went Ready=Unknown afresh: judged at the
    clock's time, it is not stuck (yet), so this attempt ends with that verdict."""
    storage = Storage([[secret(1, "deployed"), secret(2, "pending-upgrade")]])
    rig = Rig(storage=storage, verify="auto")
    rig.api.obj["status"]["history"][0]["version"] = 2
    afresh = stuck_obj(since=DUE + 20)
    afresh["status"]["history"][0]["version"] = 2
    rig.recovery.waiter = ViewWaiter(lambda key: hr_view(afresh))
    await rig.run()
    assert storage.reads == [0.0]
    verdict = decide(hr_view(afresh), None, rig.settings, DUE + 30)
    assert verdict.kind is not Kind.STUCK
    assert rig.announcer.calls[0].kwargs == {"why": verdict.reason}
    assert rig.api.calls == []


async def test_the_pending_wait_reads_every_tenth_of_the_threshold() -> None:
    storage = Storage(
        [[secret(1, "deployed"), secret(2, "pending-upgrade")], [secret(2, "deployed")]]
    )
    rig = Rig(storage=storage, verify="auto")
    rig.settings = EngineSettings(
        guardrail=rig.settings.guardrail, verify_storage="auto", threshold=200.0
    )
    rig.recovery.settings = rig.settings
    rig.api.obj["status"]["history"][0]["version"] = 2
    rig.api.heal[FORCE_RECONCILE] = 1.0
    await rig.run()
    assert storage.reads == [0.0, 20.0]


@pytest.mark.parametrize(("threshold", "interval"), [(0.1, 0.05), (600.0, 30.0)])
async def test_the_pending_wait_is_bounded(threshold: float, interval: float) -> None:
    storage = Storage([[secret(1, "deployed"), secret(2, "pending-upgrade")]])
    rig = Rig(storage=storage, verify="auto")
    rig.settings = EngineSettings(
        guardrail=rig.settings.guardrail, verify_storage="auto", threshold=threshold
    )
    rig.recovery.settings = rig.settings
    rig.recovery.clock = Clock(epoch=T0 + 1000)  # past either threshold
    rig.api.obj["status"]["history"][0]["version"] = 2
    await rig.run(Verdict(Kind.STUCK, "stuck", due_at=DUE, needs_storage=True))
    assert storage.reads[:3] == [0.0, interval, 2 * interval]
    assert storage.reads[-1] == pytest.approx(60.0)


async def test_the_pending_wait_ends_when_the_release_moves_on() -> None:
    """Helm at work, and meanwhile the release became Ready: skipped with that verdict,
    no further read, no write."""
    storage = Storage([[secret(1, "deployed"), secret(2, "pending-upgrade")]])
    rig = Rig(storage=storage, verify="auto")
    rig.api.obj["status"]["history"][0]["version"] = 2
    rig.waiter = ViewWaiter(lambda key: ready_view if key == KEY else None)
    rig.recovery.waiter = rig.waiter
    ready_view = ready(rig.api.obj)
    await rig.run()
    assert storage.reads == [0.0]
    verdict = decide(ready_view, None, rig.settings, DUE + 30)
    assert rig.announcer.names() == ["recovery_skipped"]
    assert rig.announcer.calls[0].kwargs == {"why": verdict.reason}
    assert rig.announcer.calls[0].view is ready_view
    assert rig.api.calls == []


async def test_the_pending_wait_judges_the_cached_view() -> None:
    """Each look after the first reads the cache's latest view, not the one it started with."""
    storage = Storage(
        [[secret(1, "deployed"), secret(2, "pending-upgrade")], [secret(2, "deployed")]]
    )
    rig = Rig(storage=storage, verify="auto")
    rig.api.obj["status"]["history"][0]["version"] = 2
    rig.waiter = ViewWaiter(lambda key: rig.api.view)
    rig.recovery.waiter = rig.waiter
    rig.api.heal[FORCE_RECONCILE] = 1.0
    rig.api.obj["metadata"]["resourceVersion"] = "1848390"
    view = rig.api.view
    rig.api.obj["metadata"]["resourceVersion"] = "1848395"  # an event the tracker did not see
    await rig.recovery(view, decide(view, None, rig.settings, DUE))
    assert rig.api.calls[0] == (30.0, "force-reconcile")
    assert rig.announcer["stuck_detected"].view.resource_version == "1848395"


# -- what stops an attempt --------------------------------------------------------------------


async def test_an_api_error_outside_a_step_stops_the_attempt_with_every_seam_told(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """A 409 whose re-read fails (connection reset) is outside any step's handling."""
    rig = Rig()
    rig.api.fail["force-reconcile"] = [conflict()]
    rig.api.fail["get"] = [KubeConnectionError("connection reset")]
    await rig.run()
    stopped = rig.announcer.calls[-1]
    assert stopped.name == "recovery_stopped"
    assert stopped.kwargs == {
        "attempt": 2,
        "max_attempts": 5,
        "error": "connection reset",
    }
    assert lines(caplog) == [
        (
            logging.ERROR,
            "recovery stopped by an API error: connection reset",
            "flux-system",
            "bp-vpa",
        )
    ]
    root = by_name(spans)["recover helmrelease"]
    assert root.attributes is not None and root.attributes["fluxwatch.outcome"] == "api-error"
    assert root.status.status_code is StatusCode.ERROR
    assert root.status.description == "connection reset"
    assert [e.name for e in root.events] == ["stuck detected", "exception"]
    raised = dict(root.events[1].attributes or {})
    assert (raised["exception.type"], raised["exception.message"]) == (
        "fluxwatch.kube.errors.KubeConnectionError",
        "connection reset",
    )
    # the attempt number for the span, for the ladder and for RecoveryStopped
    assert [k for q, k in rig.standing.asked if q == "attempt_of"] == [KEY] * 3


async def test_a_follower_opens_no_trace(spans: InMemorySpanExporter) -> None:
    rig = Rig(standing=Standing(leading=False))
    await rig.run()
    assert spans.get_finished_spans() == ()
    assert rig.announcer.calls == []


# -- the resume --------------------------------------------------------------------------------


def interrupted(rig: Rig, marker: str = "2026-05-05T07:50:00Z") -> None:
    rig.api.obj["spec"]["suspend"] = True
    rig.api.obj["metadata"].setdefault("annotations", {})[ANNOTATION_SUSPENDED_AT] = marker


async def test_an_interrupted_suspend_is_resumed_logged_and_announced(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig()
    interrupted(rig)
    await rig.run()
    assert rig.announcer.names() == ["suspend_resumed"]
    resumed = rig.announcer.calls[0]
    assert resumed.kwargs == {"marker": "2026-05-05T07:50:00Z"}
    assert resumed.view.suspend is False
    assert rig.recovery.writes == 1
    assert lines(caplog) == [
        (
            logging.WARNING,
            "resuming a release left suspended by an interrupted suspend-toggle "
            "(2026-05-05T07:50:00Z)",
            "flux-system",
            "bp-vpa",
        )
    ]
    root = by_name(spans)["recover helmrelease"]
    assert dict(root.attributes or {}) == {
        **root_attributes(rig, "resume-pending"),
        "fluxwatch.outcome": "resumed",
    }


async def test_an_interrupted_suspend_that_is_gone_is_not_resumed(
    spans: InMemorySpanExporter,
) -> None:
    rig = Rig()
    interrupted(rig)
    rig.api.fail["resume"] = [KubeApiError(404, "NotFound", "gone")]
    await rig.run()
    assert rig.announcer.calls == []
    assert rig.recovery.writes == 0
    root = by_name(spans)["recover helmrelease"]
    assert root.attributes is not None and root.attributes["fluxwatch.outcome"] == "not-resumed"


async def test_a_refused_resume_is_alerted_once_and_logged_each_try(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    interrupted(rig)
    rig.api.fail["resume"] = [refused(), refused()]
    await rig.run()
    assert rig.announcer.names() == ["still_suspended", "suspend_resumed"]
    still = rig.announcer.calls[0]
    assert still.kwargs == {
        "marker": "2026-05-05T07:50:00Z",
        "error": "500 InternalError: failed calling webhook",
    }
    assert [line for line in lines(caplog) if line[0] == logging.ERROR] == [
        (
            logging.ERROR,
            f"resume refused, retrying in {delay}s: 500 InternalError: failed calling webhook",
            "flux-system",
            "bp-vpa",
        )
        for delay in ("1.0", "2.0")
    ]
    assert [t for t, v in rig.api.calls if v == "resume"] == [0.0, 1.0, 3.0]


async def test_the_resume_backoff_stops_doubling_at_its_maximum() -> None:
    rig = Rig()
    interrupted(rig)
    rig.api.fail["resume"] = [refused()] * 8
    await rig.run()
    # 1, 2, 4, 8, 16, then 30 s: the max
    assert [t for t, v in rig.api.calls if v == "resume"] == [
        0.0,
        1.0,
        3.0,
        7.0,
        15.0,
        31.0,
        61.0,
        91.0,
        121.0,
    ]


async def test_a_resume_conflict_rereads_without_an_alert(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    interrupted(rig)
    rig.api.fail["resume"] = [conflict()]
    await rig.run()
    assert rig.announcer.names() == ["suspend_resumed"]
    assert [line for line in lines(caplog) if line[0] == logging.ERROR] == []
    assert rig.api.calls == [(0.0, "resume"), (1.0, "get"), (1.0, "resume")]


async def test_a_resume_whose_reread_finds_it_gone_ends(
    spans: InMemorySpanExporter,
) -> None:
    rig = Rig()
    interrupted(rig)
    rig.api.fail["resume"] = [refused()]
    rig.api.fail["get"] = [KubeApiError(404, "NotFound", "gone")]
    await rig.run()
    assert rig.api.verbs() == ["resume", "get"]
    assert rig.announcer.names() == ["still_suspended"]
    root = by_name(spans)["recover helmrelease"]
    assert root.attributes is not None and root.attributes["fluxwatch.outcome"] == "not-resumed"


@pytest.mark.parametrize(
    "error", [KubeApiError(500, "InternalError", "x"), KubeConnectionError("reset")]
)
async def test_a_resume_whose_reread_fails_tries_the_stale_view_again(
    error: Exception,
) -> None:
    rig = Rig()
    interrupted(rig)
    rig.api.fail["resume"] = [refused()]
    rig.api.fail["get"] = [error]  # type: ignore[list-item]
    await rig.run()
    assert rig.api.calls == [(0.0, "resume"), (1.0, "get"), (1.0, "resume")]
    assert rig.announcer.names() == ["still_suspended", "suspend_resumed"]


async def test_a_resume_that_a_person_did_first_returns_their_view() -> None:
    rig = Rig()
    interrupted(rig)
    rig.api.fail["resume"] = [refused()]
    person = copy.deepcopy(rig.api.obj)
    person["spec"]["suspend"] = False
    rig.api.elsewhere = hr_view(person)
    await rig.run()
    assert rig.api.verbs() == ["resume", "get"]
    assert rig.announcer.names() == ["still_suspended"]


async def test_a_resume_whose_marker_a_person_removed_stops() -> None:
    rig = Rig()
    interrupted(rig)
    rig.api.fail["resume"] = [refused()]
    person = copy.deepcopy(rig.api.obj)
    del person["metadata"]["annotations"][ANNOTATION_SUSPENDED_AT]
    rig.api.elsewhere = hr_view(person)
    await rig.run()
    assert rig.api.verbs() == ["resume", "get"]


async def test_a_resume_lost_with_leadership_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    interrupted(rig)
    rig.api.fail["resume"] = [refused()]
    original = rig.api.get

    async def get(namespace: str, name: str) -> HRView:
        rig.standing.leading = False
        return await original(namespace, name)

    rig.api.get = get  # type: ignore[method-assign]
    await rig.run()
    assert lines(caplog)[-1] == (
        logging.WARNING,
        "not the leader any more: leaving the resume (marker 2026-05-05T07:50:00Z) to the next",
        "flux-system",
        "bp-vpa",
    )


async def test_a_resume_that_breaks_unexpectedly_is_logged_and_swallowed(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig()
    interrupted(rig)
    rig.api.fail["resume"] = [RuntimeError("boom")]  # type: ignore[list-item]
    await rig.run()
    last = [r for r in caplog.records if r.name == LOGGER][-1]
    assert last.levelno == logging.ERROR
    assert (
        last.getMessage()
        == "resume failed; the marker (2026-05-05T07:50:00Z) stays for the next attempt"
    )
    assert (getattr(last, "namespace", ""), getattr(last, "object", "")) == KEY
    assert last.exc_info is not None
    root = by_name(spans)["recover helmrelease"]
    assert root.attributes is not None and root.attributes["fluxwatch.outcome"] == "not-resumed"


async def test_the_suspend_toggle_marks_the_suspend_with_the_clock_time_in_utc(
    new_york: None,
) -> None:
    markers: list[str] = []
    rig = Rig((SUSPEND_TOGGLE,))
    original = rig.api.suspend

    async def suspend(view: HRView, marker: str) -> HRView:
        markers.append(marker)
        return await original(view, marker)

    rig.api.suspend = suspend  # type: ignore[method-assign]
    rig.api.heal[SUSPEND_TOGGLE] = 1.0
    await rig.run()
    assert markers == ["2026-05-05T07:49:58Z"]  # DUE: T0 + 300 s
    assert not rig.recovery._resumes  # a resume that ended is not kept for drain()
    # the resume the ladder ran is not announced on its own: RecoverySucceeded says it
    assert rig.announcer.names() == ["stuck_detected", "recovery_started", "recovery_succeeded"]


async def test_a_refused_resume_after_the_pause_names_the_suspend_marker() -> None:
    rig = Rig((SUSPEND_TOGGLE,))
    rig.api.fail["resume"] = [refused()]
    rig.api.heal[SUSPEND_TOGGLE] = 1.0
    await rig.run()
    assert rig.announcer.names() == [
        "stuck_detected",
        "recovery_started",
        "still_suspended",
        "suspend_resumed",
        "recovery_succeeded",
    ]
    assert rig.announcer["still_suspended"].kwargs == {
        "marker": "2026-05-05T07:49:58Z",
        "error": "500 InternalError: failed calling webhook",
    }
    assert rig.announcer["suspend_resumed"].kwargs == {"marker": "2026-05-05T07:49:58Z"}
    assert rig.announcer["suspend_resumed"].view.suspend is False


async def test_an_interrupted_suspend_with_an_empty_marker_is_resumed_as_such() -> None:
    rig = Rig()
    interrupted(rig, marker="")
    await rig.run()
    assert rig.announcer.calls[0].kwargs == {"marker": ""}


async def test_a_suspend_toggle_whose_resume_fails_verifies_the_suspended_view() -> None:
    """The resume went nowhere (the release is gone): the step verifies against what the
    suspend wrote, generation 2."""
    rig = Rig((SUSPEND_TOGGLE,))
    rig.api.fail["resume"] = [KubeApiError(404, "NotFound", "gone")]
    await rig.run()
    failed = rig.announcer["recovery_failed"]
    assert failed.view.generation == 2 and failed.view.suspend is True


async def test_the_force_reconcile_token_is_the_utc_wall_time(new_york: None) -> None:
    tokens: list[str] = []
    rig = Rig((FORCE_RECONCILE,))
    original = rig.api.force_reconcile

    async def force_reconcile(view: HRView, token: str) -> HRView:
        tokens.append(token)
        return await original(view, token)

    rig.api.force_reconcile = force_reconcile  # type: ignore[method-assign]
    rig.api.heal[FORCE_RECONCILE] = 1.0
    await rig.run()
    (token,) = tokens
    assert abs(utc_wall_time(token) - time.time()) < 60


# -- the reset ---------------------------------------------------------------------------------


class ResetRig(Rig):
    def __init__(self, *, reset: bool = True, dry_run: bool = False, **kwargs: Any) -> None:
        super().__init__(obj=failed_obj(), reset=reset, dry_run=dry_run, **kwargs)

    def verdict(self) -> Verdict:
        view = self.api.view
        return casualty(view, decide(view, None, self.settings, DUE), DUE)

    async def run(self, verdict: Verdict | None = None) -> None:
        await self.recovery(self.api.view, verdict or self.verdict())


async def test_a_verified_reset_hands_each_seam_its_numbers(spans: InMemorySpanExporter) -> None:
    rig = ResetRig()
    rig.api.heal[RESET] = 9.0
    await asyncio.sleep(2.0)
    await rig.run()
    a = rig.announcer
    assert a.names() == ["casualty_detected", "recovery_started", "recovery_succeeded"]
    assert a["casualty_detected"].kwargs == {
        "failed_for": DUE + 2.0 - (T0 + 10),
        "stalled": True,
        "resetting": True,
    }
    assert a["recovery_started"].kwargs == {"strategy": RESET, "attempt": 2, "max_attempts": 5}
    succeeded = a["recovery_succeeded"]
    assert succeeded.kwargs == {"strategy": RESET, "attempt": 2, "max_attempts": 5, "took": 9.0}
    assert succeeded.view.last_handled_reset_at is not None
    assert abs(utc_wall_time(succeeded.view.last_handled_reset_at) - time.time()) < 60
    assert rig.observer.calls == [("step", RESET, "succeeded"), ("ended", "succeeded", 9.0)]
    assert rig.recovery.writes == 1
    assert rig.standing.asked == [("attempt_of", KEY), ("attempt_of", KEY)]
    named = by_name(spans)
    root = named["recover helmrelease"]
    assert dict(root.attributes or {}) == {
        **root_attributes(rig, "casualty"),
        "fluxwatch.outcome": "succeeded",
    }
    assert [(e.name, dict(e.attributes or {})) for e in root.events] == [
        (
            "casualty detected",
            {"fluxwatch.failed_for_seconds": DUE + 2.0 - (T0 + 10), "fluxwatch.stalled": True},
        )
    ]
    step = named[RESET]
    assert dict(step.attributes or {}) == {"fluxwatch.strategy": RESET, "fluxwatch.attempt": 2}
    assert step.status.status_code is StatusCode.UNSET
    verify = named["verify"]
    assert dict(verify.attributes or {}) == {
        "fluxwatch.verify_timeout_seconds": 60.0,
        "fluxwatch.verified": True,
    }
    assert verify.parent is not None and verify.parent.span_id == step.context.span_id


async def test_a_reset_that_does_not_verify_fails_on_every_seam(
    spans: InMemorySpanExporter,
) -> None:
    rig = ResetRig()
    await rig.run()
    failed = rig.announcer["recovery_failed"]
    error = (
        "not Ready=True within 60s of the reset; helm-controller has not handled the reset; "
        "Ready=False (UpgradeFailed)"
    )
    assert failed.kwargs == {
        "strategy": RESET,
        "attempt": 2,
        "max_attempts": 5,
        "error": error,
        "next_strategy": None,
    }
    assert rig.observer.calls == [("step", RESET, "failed"), ("ended", "failed", 60.0)]
    named = by_name(spans)
    assert named[RESET].status.status_code is StatusCode.ERROR
    assert named[RESET].status.description == error
    root = named["recover helmrelease"]
    assert root.attributes is not None and root.attributes["fluxwatch.outcome"] == "failed"
    assert root.status.description == error


async def test_a_reset_handled_but_not_ready_says_helm_controller_handled_it() -> None:
    rig = ResetRig()
    rig.api.heal[RESET] = 5.0

    def handled_but_failing() -> None:
        token = rig.api.obj["metadata"]["annotations"][ANNOTATION_RESET_AT]
        rig.api.obj["status"]["lastHandledResetAt"] = token
        rig.waiter.notify(rig.api.view)

    rig.api._ready = handled_but_failing  # type: ignore[method-assign]
    await rig.run()
    assert rig.announcer["recovery_failed"].kwargs["error"] == (
        "not Ready=True within 60s of the reset; helm-controller handled the reset; "
        "Ready=False (UpgradeFailed)"
    )


async def test_a_reset_with_no_ready_condition_left_says_so() -> None:
    rig = ResetRig()
    rig.api.heal[RESET] = 5.0

    def no_conditions() -> None:
        rig.api.obj["status"]["conditions"] = []
        rig.waiter.notify(rig.api.view)

    rig.api._ready = no_conditions  # type: ignore[method-assign]
    await rig.run()
    assert rig.announcer["recovery_failed"].kwargs["error"] == (
        "not Ready=True within 60s of the reset; helm-controller has not handled the reset; "
        "no Ready condition"
    )


async def test_a_refused_reset_names_the_status_error(spans: InMemorySpanExporter) -> None:
    rig = ResetRig()
    rig.api.fail["reset"] = [refused()]
    await rig.run()
    failed = rig.announcer["recovery_failed"]
    assert failed.kwargs["error"] == "500 InternalError: failed calling webhook"
    assert rig.observer.calls == [("step", RESET, "failed"), ("ended", "failed", 0.0)]
    assert rig.recovery.writes == 1


async def test_a_reset_conflicting_twice_fails_the_step() -> None:
    rig = ResetRig()
    rig.api.fail["reset"] = [conflict(), conflict()]
    await rig.run()
    assert rig.api.verbs() == ["reset", "get", "reset", "get"]
    assert rig.announcer["recovery_failed"].kwargs["error"] == (
        "the release kept changing under every write (409 Conflict twice)"
    )
    assert rig.recovery.writes == 2


async def test_a_reset_leader_lost_after_a_conflict_writes_no_more(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    rig = ResetRig()
    rig.api.fail["reset"] = [conflict()]
    original = rig.api.get

    async def get(namespace: str, name: str) -> HRView:
        rig.standing.leading = False
        return await original(namespace, name)

    rig.api.get = get  # type: ignore[method-assign]
    await rig.run()
    assert rig.api.verbs() == ["reset", "get"]
    assert rig.announcer.names() == ["casualty_detected", "recovery_started"]
    assert lines(caplog) == [
        (
            logging.INFO,
            "no longer stuck before any write: this replica is no longer the leader",
            "flux-system",
            "bp-vpa",
        )
    ]


async def test_a_reset_after_a_conflict_on_a_release_retrying_again_stops() -> None:
    """The 409's re-read finds helm-controller at it again (Ready=Unknown): no reset."""
    rig = ResetRig()
    rig.api.fail["reset"] = [conflict()]
    rig.api.elsewhere = hr_view(stuck_obj(since=DUE - 10))
    await rig.run()
    assert rig.api.verbs() == ["reset", "get"]
    assert rig.announcer.names() == ["casualty_detected", "recovery_started"]


async def test_a_reset_after_a_conflict_on_a_release_no_longer_resettable_stops() -> None:
    """The 409's re-read finds it Ready=False for another reason (not a resettable failure)."""
    rig = ResetRig()
    rig.api.fail["reset"] = [conflict()]
    other = failed_obj()
    other["status"]["conditions"] = [
        dict(other["status"]["conditions"][0], reason="ArtifactFailed")
    ]
    rig.api.elsewhere = hr_view(other)
    await rig.run()
    assert rig.api.verbs() == ["reset", "get"]
    assert rig.announcer.names() == ["casualty_detected", "recovery_started"]


async def test_a_reset_after_a_conflict_on_a_release_ready_again_stops() -> None:
    rig = ResetRig()
    rig.api.fail["reset"] = [conflict()]
    rig.api.elsewhere = ready(failed_obj())
    await rig.run()
    assert rig.api.verbs() == ["reset", "get"]


async def test_a_reset_not_enabled_is_announced_without_a_write(
    spans: InMemorySpanExporter,
) -> None:
    rig = ResetRig(reset=False)
    await rig.run()
    assert rig.announcer.names() == ["casualty_detected"]
    assert rig.announcer.calls[0].kwargs["resetting"] is False
    root = by_name(spans)["recover helmrelease"]
    assert root.attributes is not None and root.attributes["fluxwatch.outcome"] == "not-enabled"


async def test_a_reset_in_a_dry_run_is_skipped_as_failed(spans: InMemorySpanExporter) -> None:
    rig = ResetRig(dry_run=True)
    await rig.run()
    assert rig.announcer.names() == ["casualty_detected", "recovery_skipped"]
    assert rig.announcer.calls[0].kwargs["resetting"] is False
    assert rig.announcer.calls[1].kwargs == {
        "why": "dry run: fluxwatch decides and alerts but never writes",
        "state": "failed",
    }
    root = by_name(spans)["recover helmrelease"]
    assert root.attributes is not None and root.attributes["fluxwatch.outcome"] == "dry-run"


async def test_a_reset_not_recorded_is_logged_and_not_written(
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    rig = ResetRig(standing=Standing(recorded=False))
    await rig.run()
    assert rig.api.calls == []
    assert rig.announcer.names() == ["casualty_detected"]
    assert lines(caplog) == [
        (
            logging.WARNING,
            "not resetting: the guardrail's state could not be recorded in the Lease",
            "flux-system",
            "bp-vpa",
        )
    ]
    root = by_name(spans)["recover helmrelease"]
    assert root.attributes is not None and root.attributes["fluxwatch.outcome"] == "not-recorded"
    assert root.status.description == "the guardrail's state could not be recorded"


async def test_a_reset_leader_lost_while_recording_writes_nothing() -> None:
    rig = ResetRig()

    async def record() -> bool:
        rig.standing.leading = False
        return True

    rig.standing.record = record  # type: ignore[method-assign]
    await rig.run()
    assert rig.api.calls == []
    assert rig.announcer.names() == ["casualty_detected"]


async def test_a_casualty_without_a_failure_time_has_failed_for_nothing() -> None:
    rig = ResetRig(reset=False)
    await rig.run(Verdict(Kind.CASUALTY, "failed"))
    assert rig.announcer.calls[0].kwargs == {
        "failed_for": 0.0,
        "stalled": True,
        "resetting": False,
    }


async def test_a_casualty_failing_in_the_future_has_failed_for_nothing() -> None:
    """A clock skew between helm-controller and fluxwatch: never a negative duration."""
    rig = ResetRig(reset=False)
    await rig.run(Verdict(Kind.CASUALTY, "failed", failed_at=DUE + 50))
    assert rig.announcer.calls[0].kwargs["failed_for"] == 0.0


@pytest.mark.parametrize(("stalled", "expected"), [("False", False), (None, False)])
async def test_a_casualty_not_stalled_is_announced_so(stalled: str | None, expected: bool) -> None:
    obj = failed_obj()
    if stalled is None:
        obj["status"]["conditions"] = obj["status"]["conditions"][:1]
    else:
        obj["status"]["conditions"][1]["status"] = stalled
    rig = Rig(obj=obj, reset=False)
    await rig.run(Verdict(Kind.CASUALTY, "failed", failed_at=T0 + 10))
    assert rig.announcer.calls[0].kwargs["stalled"] is expected


# -- the watch seam, the predicates, the tokens -----------------------------------------------


def with_ready(status: str, *, observed: int | None, top: int = 0, generation: int = 3) -> HRView:
    obj = failed_obj()
    obj["metadata"]["generation"] = generation
    obj["status"]["observedGeneration"] = top
    condition: dict[str, Any] = {
        "type": "Ready",
        "status": status,
        "reason": "UpgradeSucceeded",
        "message": "Helm upgrade succeeded",
        "lastTransitionTime": "2026-05-05T08:00:00Z",
    }
    if observed is not None:
        condition["observedGeneration"] = observed
    obj["status"]["conditions"] = [condition]
    return hr_view(obj)


@pytest.mark.parametrize(
    ("view", "verified"),
    [
        (with_ready("True", observed=3), True),
        (with_ready("True", observed=4), True),
        (with_ready("True", observed=2, top=3), False),  # the condition's own count wins
        (with_ready("True", observed=None, top=3), True),  # else status.observedGeneration
        (with_ready("True", observed=None, top=2), False),
        (with_ready("Unknown", observed=3), False),
        (hr_view(failed_obj() | {"status": {"observedGeneration": 3}}), False),  # no Ready
    ],
)
def test_ready_at_generation_needs_ready_true_observed_at_the_written_generation(
    view: HRView, verified: bool
) -> None:
    assert recovery_module.ready_at_generation(3)(view) is verified


def test_reset_handled_needs_the_token_and_ready_true() -> None:
    token = "2026-05-05T08:00:00.000000Z"

    def view(status: str | None, handled: str | None) -> HRView:
        obj = failed_obj()
        obj["status"]["conditions"] = (
            [] if status is None else [dict(obj["status"]["conditions"][0], status=status)]
        )
        if handled is not None:
            obj["status"]["lastHandledResetAt"] = handled
        return hr_view(obj)

    check = recovery_module.reset_handled(token)
    assert check(view("True", token)) is True
    assert check(view("True", "2026-05-05T07:00:00.000000Z")) is False
    assert check(view("True", None)) is False
    assert check(view("False", token)) is False
    assert check(view(None, token)) is False


async def test_a_wait_answers_at_once_from_the_view_written_or_the_cache() -> None:
    written = with_ready("True", observed=3)
    behind = with_ready("Unknown", observed=3)
    assert await ViewWaiter().wait(lambda v: v.ready.status == "True", 10, written) == (  # type: ignore[union-attr]
        True,
        written,
    )
    waiter = ViewWaiter(lambda key: written if key == KEY else None)
    assert await waiter.wait(lambda v: v.ready.status == "True", 10, behind) == (True, written)  # type: ignore[union-attr]
    assert asyncio.get_running_loop().time() == 0


async def test_a_wait_ends_with_the_last_view_the_watch_showed() -> None:
    waiter = ViewWaiter(lambda key: None)
    behind = with_ready("Unknown", observed=1)
    later = with_ready("False", observed=2)

    async def watch() -> None:
        await asyncio.sleep(2)
        waiter.notify(with_ready("Unknown", observed=2))
        waiter.notify(later)

    helper = asyncio.create_task(watch())
    ok, latest = await waiter.wait(recovery_module.ready_at_generation(3), 10, behind)
    await helper
    assert (ok, latest) == (False, later)
    assert asyncio.get_running_loop().time() == 10
    assert waiter._waiting == {}  # nothing left behind for a key nobody waits for


async def test_two_waits_on_one_release_are_each_answered_once() -> None:
    """A second matching event before the waiters ran must not answer a future twice."""
    waiter = ViewWaiter()
    behind = with_ready("Unknown", observed=1)
    done = with_ready("True", observed=3)
    first = asyncio.create_task(waiter.wait(recovery_module.ready_at_generation(3), 10, behind))
    second = asyncio.create_task(waiter.wait(recovery_module.ready_at_generation(2), 10, behind))
    await asyncio.sleep(1)
    waiter.notify(done)
    waiter.notify(done)
    assert await first == (True, done)
    assert await second == (True, done)
    assert waiter._waiting == {}
    waiter.notify(done)  # nobody waits: nothing happens


async def test_a_wait_leaves_the_other_waits_on_its_release_in_place() -> None:
    waiter = ViewWaiter()
    behind = with_ready("Unknown", observed=1)
    short = asyncio.create_task(waiter.wait(recovery_module.ready_at_generation(3), 1, behind))
    long = asyncio.create_task(waiter.wait(recovery_module.ready_at_generation(3), 10, behind))
    assert await short == (False, behind)
    waiter.notify(with_ready("True", observed=3))
    assert (await long)[0] is True


def test_a_token_is_the_utc_wall_time_with_microseconds(new_york: None) -> None:
    """Whatever the machine's time zone: the flux CLI writes UTC."""
    assert abs(utc_wall_time(recovery_module._token()) - time.time()) < 60


async def test_alone_always_leads_records_and_counts_one_attempt() -> None:
    """``fluxwatch scan --recover``: no Standing given."""
    rig = Rig()
    rig.recovery.standing = recovery_module.Alone()
    rig.api.heal[FORCE_RECONCILE] = 1.0
    await rig.run()
    a = rig.announcer
    assert a["stuck_detected"].kwargs == {
        "age": DUE - T0,
        "threshold": 300.0,
        "suspicion": None,
        "blocks": (),
    }
    assert a["recovery_succeeded"].kwargs["attempt"] == 1
    default = Recovery(
        rig.api, rig.waiter, rig.settings, RecoveryOptions(), rig.announcer, clock=Clock()
    )
    assert isinstance(default.standing, recovery_module.Alone)
    assert default.standing.halted(KEY) is None


async def test_drain_returns_at_once_with_nothing_in_flight() -> None:
    rig = Rig()
    await rig.recovery.drain(timeout=60)
    assert asyncio.get_running_loop().time() == 0


async def test_drain_gives_up_on_a_resume_after_its_timeout() -> None:
    rig = Rig((SUSPEND_TOGGLE,))
    rig.api.fail["resume"] = [refused()] * 1000
    attempt = asyncio.create_task(rig.run())
    await asyncio.sleep(1.0)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    await rig.recovery.drain(timeout=60)
    assert asyncio.get_running_loop().time() == 61.0
    rig.standing.leading = False  # let the retry loop end
    await rig.recovery.drain(timeout=100)
