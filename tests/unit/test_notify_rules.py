"""Alert rules and the dedup window: pure functions, no loop, no HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from fluxwatch.notify.config import AlertSpec
from fluxwatch.notify.dedup import Deduplicator
from fluxwatch.notify.event import Event, InvolvedObject
from fluxwatch.notify.rules import Rule, route


def rule(**spec: Any) -> Rule:
    spec.setdefault("name", "a")
    spec.setdefault("namespace", "apps")
    spec.setdefault("providerRef", {"name": "p"})
    return Rule.from_spec(AlertSpec.model_validate(spec))


def event(
    *,
    kind: str = "HelmRelease",
    namespace: str = "apps",
    name: str = "podinfo",
    severity: str = "error",
    message: str = "HelmRelease apps/podinfo has been stuck at Ready=Unknown for 6m0s.",
    labels: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
) -> Event:
    api = "helm.toolkit.fluxcd.io/v2" if kind == "HelmRelease" else "coordination.k8s.io/v1"
    return Event.new(
        InvolvedObject(kind, namespace, name, api_version=api),
        severity,
        "StuckDetected",
        message,
        labels=labels,
        metadata=metadata,
        instance="pod",
    )


def test_info_severity_selects_everything_error_only_errors() -> None:
    """FLUX-FACTS §6: eventSeverity info = all, error = errors only."""
    assert rule(eventSeverity="info").matches(event(severity="info"))
    assert rule(eventSeverity="info").matches(event(severity="error"))
    assert rule(eventSeverity="error").matches(event(severity="error"))
    assert not rule(eventSeverity="error").matches(event(severity="info"))


def test_no_sources_selects_every_event() -> None:
    assert rule().matches(event(kind="Lease", namespace="flux-system", name="x"))


@pytest.mark.parametrize(
    ("source", "selected"),
    [
        ({"kind": "HelmRelease", "name": "*"}, True),
        ({"kind": "HelmRelease", "name": "podinfo"}, True),
        ({"kind": "HelmRelease", "name": "pod*"}, True),
        ({"kind": "HelmRelease", "name": "other"}, False),
        ({"kind": "Kustomization", "name": "*"}, False),
        ({"kind": "*", "name": "*"}, True),
        ({"kind": "HelmRelease", "name": "*", "namespace": "apps"}, True),
        ({"kind": "HelmRelease", "name": "*", "namespace": "infra"}, False),
        ({"kind": "HelmRelease", "name": "*", "namespace": "*"}, True),
        ({"kind": "HelmRelease", "name": "*", "namespace": "ap*"}, True),
        ({"kind": "HelmRelease", "name": "*", "matchLabels": {"team": "payments"}}, True),
        ({"kind": "HelmRelease", "name": "*", "matchLabels": {"team": "search"}}, False),
        (
            {"kind": "HelmRelease", "name": "*", "matchLabels": {"team": "payments", "x": "y"}},
            False,
        ),
        (
            {"kind": "HelmRelease", "name": "*", "apiVersion": "helm.toolkit.fluxcd.io/v2"},
            True,
        ),
        (
            {"kind": "HelmRelease", "name": "*", "apiVersion": "helm.toolkit.fluxcd.io/v2beta1"},
            True,
        ),
    ],
)
def test_event_sources(source: dict[str, Any], selected: bool) -> None:
    hr = event(labels={"team": "payments", "tier": "web"})
    assert rule(eventSources=[source]).matches(hr) is selected


def test_a_source_without_namespace_means_the_alerts_own() -> None:
    """notification-controller: source.Namespace == "" becomes alert.Namespace."""
    source = {"kind": "HelmRelease", "name": "*"}
    assert rule(namespace="apps", eventSources=[source]).matches(event(namespace="apps"))
    assert not rule(namespace="flux-system", eventSources=[source]).matches(event())
    # The source's own namespace wins over the Alert's.
    other = {**source, "namespace": "apps"}
    assert rule(namespace="flux-system", eventSources=[other]).matches(event())


def test_api_version_is_not_compared_as_in_flux() -> None:
    """eventMatchesAlertSource compares namespace, kind and name; apiVersion only names the type."""
    source = {"kind": "HelmRelease", "name": "*", "apiVersion": "helm.toolkit.fluxcd.io/v2beta2"}
    assert rule(eventSources=[source]).matches(event())


def test_any_source_is_enough() -> None:
    sources = [
        {"kind": "HelmRelease", "name": "other"},
        {"kind": "Lease", "name": "*-leader-election", "namespace": "flux-system"},
    ]
    r = rule(eventSources=sources)
    assert r.matches(event(kind="Lease", namespace="flux-system", name="helm-leader-election"))
    assert not r.matches(event())


def test_inclusion_list_must_match_and_exclusion_list_must_not() -> None:
    """Flux: inclusionList regexes on the message select, exclusionList regexes drop."""
    stuck = event(message="HelmRelease apps/podinfo has been stuck")
    other = event(message="HelmRelease apps/podinfo is Ready again")
    included = rule(inclusionList=["stuck", "failed"])
    assert included.matches(stuck) and not included.matches(other)
    excluded = rule(exclusionList=[r"apps/pod\w+"])
    assert not excluded.matches(stuck)
    both = rule(inclusionList=["HelmRelease"], exclusionList=["Ready again"])
    assert both.matches(stuck) and not both.matches(other)


def test_event_metadata_and_summary_are_added_without_override() -> None:
    r = rule(eventMetadata={"cluster": "prod", "revision": "forged"}, summary="prod cluster")
    enhanced = r.enhance(event(metadata={"revision": "6.5.0"}))
    assert dict(enhanced.metadata) == {
        "cluster": "prod",
        "revision": "6.5.0",
        "summary": "prod cluster",
    }


def test_summary_wins_over_event_metadata_summary_and_the_event_wins_over_both() -> None:
    """combineEventMetadata (RFC 0008): eventMetadata < summary < the object's own keys."""
    r = rule(eventMetadata={"summary": "from eventMetadata"}, summary="from summary")
    assert r.enhance(event()).metadata["summary"] == "from summary"
    own = r.enhance(event(metadata={"summary": "the event's"}))
    assert own.metadata["summary"] == "the event's"
    only_metadata = rule(eventMetadata={"summary": "from eventMetadata"})
    assert only_metadata.enhance(event()).metadata["summary"] == "from eventMetadata"


def test_lists_are_go_regular_expressions() -> None:
    """RE2, as Go's regexp: Perl classes and flags work, look-around is refused."""
    assert rule(inclusionList=[r"(?i)STUCK at ready=\w+ FOR \d+m"]).matches(event())
    assert not rule(exclusionList=[r"\bpodinfo\b has"]).matches(event(message="x podinfo has"))
    with pytest.raises(ValidationError, match=r"(?s)inclusionList.*RE2"):
        rule(inclusionList=[r"stuck(?= at)"])
    with pytest.raises(ValidationError, match=r"(?s)exclusionList.*invalid"):
        rule(exclusionList=[r"(?P<w>a)(?P=w)"])


def test_route_gives_each_provider_the_event_once_first_rule_wins() -> None:
    rules = [
        rule(name="one", providerRef={"name": "slack"}, eventMetadata={"via": "one"}),
        rule(name="two", providerRef={"name": "slack"}, eventMetadata={"via": "two"}),
        rule(name="three", providerRef={"name": "am"}, eventSeverity="error"),
        rule(
            name="four",
            providerRef={"name": "teams"},
            eventSources=[{"kind": "Lease", "name": "*"}],
        ),
    ]
    targets = route(rules, event())
    assert sorted(targets) == ["am", "slack"]
    assert targets["slack"].metadata["via"] == "one"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_dedup_one_event_per_key_per_interval() -> None:
    """FLUX-FACTS §6: one event per key per 5 minutes."""
    clock = FakeClock()
    dedup = Deduplicator(300, clock)
    assert dedup.admit("k1")
    assert not dedup.admit("k1")
    assert dedup.admit("k2")
    clock.now += 299.9
    assert not dedup.admit("k1")
    clock.now += 0.1
    assert dedup.admit("k1")
    assert not dedup.admit("k1")
    # Expired keys are forgotten, so memory follows the window, not the history.
    clock.now += 301
    assert dedup.admit("k3")
    assert len(dedup) == 1


def test_dedup_interval_zero_admits_everything() -> None:
    dedup = Deduplicator(0, FakeClock())
    assert all(dedup.admit("k") for _ in range(3))
