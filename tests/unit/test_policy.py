"""The pure policy: one verdict with a reason per HelmRelease, no event loop, no I/O."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from engine_objects import (
    INSTALL_MESSAGE,
    LONG_RELEASE,
    T0,
    deleting,
    ignored,
    long_named,
    pending_upgrade,
    ready,
    stuck,
    stuck_obj,
    suspended_by_fluxwatch,
    suspended_by_person,
)
from msgspec.structs import replace

from fluxwatch.engine.config import EngineSettings, LabelSelector, VerifyStorage
from fluxwatch.engine.policy import Kind, Skip, StorageState, Suspicion, Verdict, decide
from fluxwatch.kube.helmrelease import HRView, hr_view
from fluxwatch.kube.helmstorage import StoredRelease

DEFAULT = EngineSettings()
DUE = T0 + 300


def judge(
    view: HRView,
    now: float = DUE,
    settings: EngineSettings = DEFAULT,
    storage: StorageState | None = None,
) -> Verdict:
    return decide(view, None, settings, now, storage)


def secrets(*revisions: tuple[int, str], name: str = "vpa-bp-vpa") -> StorageState:
    return StorageState.of(StoredRelease(name, "flux-system", v, st) for v, st in revisions)


@pytest.fixture
def obj() -> dict[str, Any]:
    return stuck_obj()


# -- the stuck shape and its clock ---------------------------------------------------------


def test_upstream_stuck_shape_is_progressing_until_the_threshold_then_stuck() -> None:
    """FLUX-FACTS §1: single condition Ready=Unknown/Progressing "Running 'install' action
    with timeout of 5m0s", history[0] deployed, is stuck once 5 minutes have passed."""
    view = stuck()
    before = judge(view, now=DUE - 1)
    assert before.kind is Kind.PROGRESSING
    assert before.due_at == DUE
    at = judge(view, now=DUE)
    assert at.kind is Kind.STUCK
    assert at.due_at == DUE
    assert INSTALL_MESSAGE in at.reason
    assert "2026-05-05T07:44:58Z" in at.reason
    assert "revision 1 is deployed" in at.reason


def test_clock_is_the_condition_not_the_first_sighting() -> None:
    """FLUX-FACTS §1 and §2: lastTransitionTime, not when fluxwatch first saw the release,
    starts the clock, so a restart of fluxwatch does not reset it."""
    verdict = decide(stuck(), None, DEFAULT, T0 + 3600)
    assert verdict.kind is Kind.STUCK
    assert verdict.due_at == DUE
    assert "3600s" in verdict.reason


def test_threshold_is_a_setting() -> None:
    settings = EngineSettings(threshold=60)
    assert judge(stuck(), now=T0 + 59, settings=settings).kind is Kind.PROGRESSING
    assert judge(stuck(), now=T0 + 60, settings=settings).kind is Kind.STUCK


def test_ready_release(obj: dict[str, Any]) -> None:
    verdict = judge(ready(obj))
    assert verdict.kind is Kind.READY
    assert verdict.due_at is None


def test_ready_false_is_a_failure_helm_controller_owns(obj: dict[str, Any]) -> None:
    """FLUX-FACTS §2: Ready False is a reported failure, not the Unknown of the stuck bug."""
    obj["status"]["conditions"][0].update(status="False", reason="InstallFailed")
    verdict = judge(hr_view(obj))
    assert (verdict.kind, verdict.skip) == (Kind.SKIPPED, Skip.FAILED)
    assert "InstallFailed" in verdict.reason


@pytest.mark.parametrize(
    ("reason", "message", "says"),
    [
        (
            "DependencyNotReady",
            "dependency 'flux-system/bp-cert-manager' is not ready",
            "waiting for the releases it dependsOn",
        ),
        (
            "SourceNotReady",
            "HelmChart 'flux-system/flux-system-bp-vpa' is not ready",
            "waiting for its chart source",
        ),
    ],
)
def test_ready_false_for_a_normal_wait_is_waiting_not_failed(
    obj: dict[str, Any], reason: str, message: str, says: str
) -> None:
    """FLUX-FACTS §7: Ready=False with reason DependencyNotReady is a normal wait that
    helm-controller reports as a Normal event (SourceNotReady likewise, without one)."""
    obj["status"]["conditions"][0].update(status="False", reason=reason, message=message)
    verdict = judge(hr_view(obj))
    assert (verdict.kind, verdict.skip) == (Kind.SKIPPED, Skip.WAITING)
    assert verdict.label == "waiting"
    assert f"Ready=False ({reason}: {message})" in verdict.reason
    assert says in verdict.reason and "not a failure" in verdict.reason


def test_a_normal_wait_without_a_message_says_so_in_one_sentence(obj: dict[str, Any]) -> None:
    obj["status"]["conditions"][0].update(status="False", reason="SourceNotReady", message="")
    assert judge(hr_view(obj)).reason == (
        "Ready=False (SourceNotReady): helm-controller is waiting for its chart source to "
        "have an artifact, a normal wait, not a failure"
    )


def test_a_wait_reason_on_ready_unknown_is_still_judged_for_stuck(obj: dict[str, Any]) -> None:
    """Only Ready=False is a wait: the reason alone does not make an Unknown release wait."""
    obj["status"]["conditions"][0].update(reason="DependencyNotReady")
    assert judge(hr_view(obj)).kind is Kind.STUCK


def test_no_ready_condition_yet(obj: dict[str, Any]) -> None:
    obj["status"] = {"observedGeneration": -1}
    assert judge(hr_view(obj)).skip is Skip.UNRECONCILED


# -- never stuck ---------------------------------------------------------------------------


def test_suspended_by_a_person_is_left_alone(obj: dict[str, Any]) -> None:
    """FLUX-FACTS §1 (seed defect): the CronJob would resume a release a person suspended."""
    verdict = judge(suspended_by_person(obj), now=T0 + 3600)
    assert (verdict.kind, verdict.skip) == (Kind.SKIPPED, Skip.SUSPENDED)
    assert verdict.due_at is None


def test_interrupted_suspend_toggle_is_resume_pending_at_once(obj: dict[str, Any]) -> None:
    """FLUX-FACTS §1 (seed defect: killed between its two patches, the HR stays suspended);
    DESIGN: an HR with fluxwatch.io/suspended-at and suspend true is resumed first."""
    verdict = judge(suspended_by_fluxwatch(obj), now=T0 + 10)
    assert verdict.kind is Kind.RESUME_PENDING
    assert verdict.due_at == T0 + 10
    assert "2026-05-05T07:50:02Z" in verdict.reason


def test_resume_pending_beats_ignored(obj: dict[str, Any]) -> None:
    """Our own suspend is undone even on an opted-out release: it restores the owner's state."""
    marked = suspended_by_fluxwatch(obj)
    both = replace(marked, ignored=True)
    assert judge(both).kind is Kind.RESUME_PENDING


def test_stale_marker_without_suspend_is_judged_normally(obj: dict[str, Any]) -> None:
    """The resume patch clears both; a marker left alone on a running HR changes nothing."""
    view = replace(stuck(), suspended_at="2026-05-05T07:50:02Z")
    assert judge(view).kind is Kind.STUCK


def test_deleting(obj: dict[str, Any]) -> None:
    """FLUX-FACTS §2: a set metadata.deletionTimestamp means the HR is being deleted."""
    verdict = judge(deleting(obj), now=T0 + 3600)
    assert (verdict.kind, verdict.skip) == (Kind.SKIPPED, Skip.DELETING)


def test_fluxwatch_s_own_suspend_is_resumed_even_on_a_release_being_deleted(
    obj: dict[str, Any],
) -> None:
    """helm-controller lets a suspended HelmRelease go without a Helm uninstall: left
    suspended, the owner's delete would orphan the release; the API takes the resume."""
    marked = suspended_by_fluxwatch(obj)
    both = replace(marked, deleting=deleting(obj).deleting)
    assert both.deleting
    assert judge(both, now=T0 + 10).kind is Kind.RESUME_PENDING
    person = replace(suspended_by_person(obj), deleting=True)
    assert (judge(person).kind, judge(person).skip) == (Kind.SKIPPED, Skip.DELETING)


def test_ignore_annotation(obj: dict[str, Any]) -> None:
    verdict = judge(ignored(obj), now=T0 + 3600)
    assert (verdict.kind, verdict.skip) == (Kind.SKIPPED, Skip.IGNORED)
    assert "fluxwatch.io/ignore" in verdict.reason


def test_newer_pending_upgrade_is_helm_at_work(obj: dict[str, Any]) -> None:
    """FLUX-FACTS §2 and §4: history[0] pending-upgrade is a newer revision in flight."""
    verdict = judge(pending_upgrade(obj), now=T0 + 3600)
    assert (verdict.kind, verdict.skip) == (Kind.SKIPPED, Skip.NEWER_PENDING)
    assert "revision 2 pending-upgrade" in verdict.reason


def test_failed_history_is_not_deployed(obj: dict[str, Any]) -> None:
    obj["status"]["history"][0]["status"] = "failed"
    verdict = judge(hr_view(obj), now=T0 + 3600)
    assert (verdict.kind, verdict.skip) == (Kind.SKIPPED, Skip.NOT_DEPLOYED)


def test_malformed_object_is_skipped_with_the_field(obj: dict[str, Any]) -> None:
    obj["status"]["conditions"][0]["lastTransitionTime"] = "5 minutes ago"
    verdict = judge(hr_view(obj))
    assert (verdict.kind, verdict.skip) == (Kind.SKIPPED, Skip.MALFORMED)
    assert "lastTransitionTime" in verdict.reason


def test_ready_unknown_without_transition_time_is_malformed(obj: dict[str, Any]) -> None:
    del obj["status"]["conditions"][0]["lastTransitionTime"]
    assert judge(hr_view(obj)).skip is Skip.MALFORMED


# -- scope ----------------------------------------------------------------------------------


def selecting(text: str) -> EngineSettings:
    return EngineSettings(label_selector=LabelSelector.parse(text))


@pytest.mark.parametrize(
    ("settings", "in_scope"),
    [
        (EngineSettings(watch_namespaces=frozenset({"flux-system"})), True),
        (EngineSettings(watch_namespaces=frozenset({"apps"})), False),
        (EngineSettings(exclude_namespaces=frozenset({"flux-system"})), False),
        (selecting("kustomize.toolkit.fluxcd.io/name"), True),
        (selecting("kustomize.toolkit.fluxcd.io/name=apps"), False),
        (selecting("!kustomize.toolkit.fluxcd.io/name"), False),
        (selecting("team notin (a,b)"), True),
    ],
)
def test_scope(settings: EngineSettings, in_scope: bool) -> None:
    verdict = judge(stuck(), settings=settings)
    assert (verdict.skip is not Skip.OUT_OF_SCOPE) is in_scope


# -- Helm storage -------------------------------------------------------------------------


def test_view_alone_asks_for_storage_before_acting() -> None:
    """DESIGN: with readable Secrets the newest must be deployed too; the tracker decides on
    the view alone, so its stuck verdict says the Secrets are still to be read."""
    assert judge(stuck()).needs_storage is True
    never = EngineSettings(verify_storage=VerifyStorage.NEVER)
    assert judge(stuck(), settings=never).needs_storage is False


def test_storage_newest_by_version_label_not_by_name() -> None:
    """FLUX-FACTS §1 (seed defect: names sorted on "v" make v9 beat v10) and §4: the
    `version` label, compared as a number, picks the newest Secret."""
    obj = stuck_obj()
    obj["status"]["history"][0]["version"] = 10
    view = hr_view(obj)
    verdict = judge(view, storage=secrets((9, "superseded"), (10, "deployed")))
    assert verdict.kind is Kind.STUCK
    assert verdict.needs_storage is False
    assert "Helm revision 10 of flux-system/vpa-bp-vpa is deployed" in verdict.reason

    pending = judge(view, storage=secrets((10, "superseded"), (11, "pending-upgrade")))
    assert pending.skip is Skip.NEWER_PENDING
    assert "revision 11" in pending.reason


def test_storage_must_agree_with_history() -> None:
    """DESIGN: the newest Secret must be deployed *with the same version* as history[0]."""
    verdict = judge(stuck(), storage=secrets((1, "superseded"), (2, "deployed")))
    assert verdict.skip is Skip.NOT_DEPLOYED
    assert "is 2, history[0] says 1" in verdict.reason
    failed = judge(stuck(), storage=secrets((1, "failed")))
    assert failed.skip is Skip.NOT_DEPLOYED


def test_no_secret_at_all_is_not_deployed() -> None:
    verdict = judge(stuck(), storage=secrets())
    assert verdict.skip is Skip.NOT_DEPLOYED
    assert "no Helm release Secret for flux-system/vpa-bp-vpa" in verdict.reason


def test_unreadable_storage_auto_trusts_history_always_refuses() -> None:
    """verifyStorage auto uses the Secrets when readable; always refuses without them."""
    forbidden = StorageState.unreadable("secrets is forbidden")
    auto = judge(stuck(), storage=forbidden)
    assert auto.kind is Kind.STUCK
    assert auto.needs_storage is False
    assert "forbidden" in auto.reason
    always = EngineSettings(verify_storage=VerifyStorage.ALWAYS)
    assert judge(stuck(), settings=always, storage=forbidden).skip is Skip.NOT_DEPLOYED


def _remote(obj: dict[str, Any]) -> HRView:
    obj["spec"]["kubeConfig"] = {"secretRef": {"name": "prod-kubeconfig", "key": "value"}}
    view = hr_view(obj)
    assert view.remote
    return view


def test_remote_release_never_takes_local_secrets_as_evidence(obj: dict[str, Any]) -> None:
    """FLUX-FACTS §7: with spec.kubeConfig the Helm storage lives on the remote cluster.
    Local Secrets decide nothing: none at all, a local failed release of the same name,
    or a deployed one; the verdict rests on history[0] and says why."""
    view = _remote(obj)
    for local in (secrets(), secrets((1, "failed")), secrets((3, "deployed")), None):
        verdict = judge(view, storage=local)
        assert verdict.kind is Kind.STUCK, verdict
        assert verdict.needs_storage is False
        assert "revision 1 is deployed" in verdict.reason
        assert "spec.kubeConfig" in verdict.reason and "no evidence" in verdict.reason
    always = EngineSettings(verify_storage=VerifyStorage.ALWAYS)
    refused = judge(view, settings=always, storage=secrets((1, "deployed")))
    assert refused.skip is Skip.NOT_DEPLOYED
    assert "spec.kubeConfig" in refused.reason


def test_remote_release_without_history_is_not_deployed(obj: dict[str, Any]) -> None:
    del obj["status"]["history"]
    verdict = judge(_remote(obj), storage=secrets((1, "deployed")))
    assert verdict.skip is Skip.NOT_DEPLOYED
    assert "no status.history" in verdict.reason and "spec.kubeConfig" in verdict.reason


def test_local_release_still_uses_local_secrets(obj: dict[str, Any]) -> None:
    view = hr_view(obj)
    assert not view.remote
    assert judge(view, storage=secrets((1, "failed"))).skip is Skip.NOT_DEPLOYED


def test_never_ignores_storage() -> None:
    never = EngineSettings(verify_storage="never")  # type: ignore[arg-type]
    assert never.verify_storage is VerifyStorage.NEVER
    verdict = judge(stuck(), settings=never, storage=secrets((1, "failed")))
    assert verdict.kind is Kind.STUCK


def test_no_history_falls_back_to_storage(obj: dict[str, Any]) -> None:
    """FLUX-FACTS §2 (v2beta1 has no history): a release without history is judged by
    its Secrets alone."""
    del obj["status"]["history"]
    view = hr_view(obj)
    assert view.last_release is None
    assert judge(view).needs_storage is True
    assert judge(view, storage=secrets((1, "deployed"))).kind is Kind.STUCK
    assert judge(view, storage=secrets((1, "pending-install"))).skip is Skip.NEWER_PENDING
    unreadable = StorageState.unreadable("timeout")
    assert judge(view, storage=unreadable).skip is Skip.NOT_DEPLOYED
    never = EngineSettings(verify_storage=VerifyStorage.NEVER)
    assert judge(view, settings=never).skip is Skip.NOT_DEPLOYED


def test_long_name_with_target_namespace_is_looked_up_by_its_helm_name() -> None:
    """FLUX-FACTS §1 (seed defect: guessed name) and §2: `<targetNamespace>-<name>`,
    over 53 characters, becomes 40 characters, "-" and 12 hex of its SHA-256."""
    view = long_named()
    assert view.release_name == LONG_RELEASE
    verdict = judge(view, storage=secrets((1, "deployed"), name=LONG_RELEASE))
    assert verdict.kind is Kind.STUCK
    assert f"flux-system/{LONG_RELEASE}" in verdict.reason  # status.storageNamespace


# -- what the tracker remembers -----------------------------------------------------------


class Remembered:
    def __init__(self, verdict: Verdict, suspicion: Suspicion | None = None) -> None:
        self.verdict = verdict
        self.suspicion = suspicion


def test_suspicion_is_named_while_it_lasts() -> None:
    suspicion = Suspicion("helm-controller changed leader at 07:45:41", until=DUE + 60)
    remembered = Remembered(judge(stuck(), now=T0), suspicion)
    assert (
        "suspect: helm-controller changed leader"
        in decide(stuck(), remembered, DEFAULT, DUE).reason
    )
    assert "suspect" not in decide(stuck(), remembered, DEFAULT, DUE + 60).reason


def test_verdicts_are_not_rebuilt_per_event(obj: dict[str, Any]) -> None:
    """Watch events arrive by the tens of thousands: fixed verdicts are shared objects, and
    a progressing verdict whose deadline did not move is kept."""
    assert judge(ready(obj)) is judge(ready(copy.deepcopy(obj)))
    assert judge(suspended_by_person(obj)) is judge(suspended_by_person(obj))
    first = judge(stuck(), now=T0 + 1)
    assert decide(stuck(), Remembered(first), DEFAULT, T0 + 2, None) is first
    moved = decide(stuck(since=T0 + 5), Remembered(first), DEFAULT, T0 + 6, None)
    assert moved.due_at == DUE + 5
    assert "stuck at 2026-05-05T07:50:03Z" in moved.reason


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("app", "app"),
        ("!app", "!app"),
        ("app=web", "app=web"),
        ("app==web", "app=web"),
        ("app != web", "app!=web"),
        ("tier in (web, api),env notin (dev)", "tier in (api,web),env notin (dev)"),
        ("app.kubernetes.io/part-of=flux,  !legacy", "app.kubernetes.io/part-of=flux,!legacy"),
    ],
)
def test_label_selector_round_trip(text: str, canonical: str) -> None:
    assert str(LabelSelector.parse(text)) == canonical


def test_label_selector_matches_like_kubernetes() -> None:
    sel = LabelSelector.parse("tier in (web,api),env!=dev,!legacy")
    assert sel.matches({"tier": "web", "env": "prod"})
    assert sel.matches({"tier": "api"})  # != matches a missing label
    assert not sel.matches({"tier": "db"})
    assert not sel.matches({"tier": "web", "env": "dev"})
    assert not sel.matches({"tier": "web", "legacy": "yes"})


@pytest.mark.parametrize("text", ["app=web,", "a,,b", "tier in (a b)", "=web", "tier in (a"])
def test_label_selector_errors_name_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="label selector"):
        LabelSelector.parse(text)


def test_settings_defaults_and_validation() -> None:
    s = EngineSettings()
    assert (s.threshold, s.verify_storage) == (300.0, VerifyStorage.AUTO)
    g = s.guardrail
    assert (g.max_batch, g.max_recoveries, g.window, g.max_attempts) == (10, 10, 600.0, 3)
    assert (s.leases.namespace, s.leases.flap_threshold, s.leases.flap_window) == (
        "flux-system",
        3,
        600.0,
    )
    assert "helm-controller-leader-election" in s.leases.names
    with pytest.raises(ValueError, match=r"engine\.threshold"):
        EngineSettings(threshold=0)
    with pytest.raises(ValueError, match="'apps'"):
        EngineSettings(watch_namespaces=frozenset({"apps"}), exclude_namespaces=frozenset({"apps"}))
    with pytest.raises(ValueError):
        EngineSettings(verify_storage="sometimes")  # type: ignore[arg-type]


def test_a_pending_secret_at_the_version_history_says_deployed_is_not_newer() -> None:
    """Mutation survivor: ``>`` read as ``>=`` labelled this ``newer-pending``. A pending
    Secret at history[0]'s own version is no newer revision in flight: Helm storage and the
    status disagree about that revision, so it is not deployed."""
    verdict = judge(stuck(), storage=secrets((1, "pending-upgrade")))
    assert verdict.skip is Skip.NOT_DEPLOYED
    assert "newest Helm revision 1 of flux-system/vpa-bp-vpa is pending-upgrade" in verdict.reason


# -- the reasons, word for word (what a person reads in scan, alerts and logs) ------------


def _no_history() -> HRView:
    obj = stuck_obj()
    del obj["status"]["history"]
    return hr_view(obj)


def _no_transition() -> HRView:
    obj = stuck_obj()
    del obj["status"]["conditions"][0]["lastTransitionTime"]
    return hr_view(obj)


def _failed_history() -> HRView:
    obj = stuck_obj()
    obj["status"]["history"][0]["status"] = "failed"
    return hr_view(obj)


NEVER = EngineSettings(verify_storage=VerifyStorage.NEVER)
SINCE = "Ready=Unknown (Progressing: Running 'install' action with timeout of 5m0s) since"


@pytest.mark.parametrize(
    ("view", "settings", "storage", "reason"),
    [
        (
            lambda: suspended_by_fluxwatch(stuck_obj()),
            DEFAULT,
            None,
            "suspended by fluxwatch (fluxwatch.io/suspended-at: 2026-05-05T07:50:02Z) and never "
            "resumed: an interrupted suspend-toggle, to be resumed first",
        ),
        (_no_transition, DEFAULT, None, "Ready=Unknown has no lastTransitionTime to count from"),
        (_failed_history, DEFAULT, None, "history[0] is revision 1 failed"),
        (
            _no_history,
            NEVER,
            None,
            "no status.history, and verifyStorage is never: nothing says it is deployed",
        ),
        (
            _no_history,
            DEFAULT,
            StorageState.unreadable("403 Forbidden"),
            "no status.history and Helm storage unreadable (403 Forbidden)",
        ),
        (
            _no_history,
            DEFAULT,
            None,
            f"{SINCE} 2026-05-05T07:44:58Z, 300s, past the 300s threshold, although Helm "
            "storage is to confirm a deployed release (Helm storage not checked yet)",
        ),
        (
            stuck,
            DEFAULT,
            None,
            f"{SINCE} 2026-05-05T07:44:58Z, 300s, past the 300s threshold, although "
            "history[0] says revision 1 is deployed (Helm storage not checked yet)",
        ),
    ],
)
def test_reasons_word_for_word(
    view: Any, settings: EngineSettings, storage: StorageState | None, reason: str
) -> None:
    assert judge(view(), settings=settings, storage=storage).reason == reason


def test_a_suspect_reason_keeps_the_whole_sentence() -> None:
    suspicion = Suspicion("helm-controller changed leader", until=DUE + 60)
    remembered = Remembered(judge(stuck(), now=T0), suspicion)
    alone = judge(stuck(), settings=NEVER).reason
    assert decide(stuck(), remembered, NEVER, DUE).reason == (
        f"{alone}; suspect: helm-controller changed leader"
    )


def test_unreadable_storage_is_not_readable() -> None:
    state = StorageState.unreadable("timeout")
    assert state.readable is False
    assert state.problem == "timeout"
