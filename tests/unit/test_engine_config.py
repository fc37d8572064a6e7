"""The engine's settings refuse every bad value with the field, the value and what was
expected, and take every good one down to the lowest legal value.

These are the words a person reads from ``fluxwatch check-config`` and at startup, so
the messages are pinned whole; the boundaries are tested on both sides.
"""

from __future__ import annotations

from typing import Any

import pytest

from fluxwatch.engine.config import (
    EngineSettings,
    GuardrailSettings,
    LabelSelector,
    LeaseSettings,
    Requirement,
    VerifyStorage,
)

Settings = type[GuardrailSettings] | type[LeaseSettings] | type[EngineSettings]


@pytest.mark.parametrize(
    ("cls", "field", "value", "message"),
    [
        (GuardrailSettings, "max_batch", 0, "guardrail.max_batch: expected an integer >= 1, got 0"),
        (
            GuardrailSettings,
            "max_batch",
            True,
            "guardrail.max_batch: expected an integer >= 1, got True",
        ),
        (
            GuardrailSettings,
            "max_recoveries",
            2.5,
            "guardrail.max_recoveries: expected an integer >= 1, got 2.5",
        ),
        (
            GuardrailSettings,
            "max_attempts",
            -1,
            "guardrail.max_attempts: expected an integer >= 1, got -1",
        ),
        (GuardrailSettings, "window", 0.0, "guardrail.window: expected a positive number, got 0.0"),
        (
            GuardrailSettings,
            "window",
            float("nan"),
            "guardrail.window: expected a positive number, got nan",
        ),
        (
            GuardrailSettings,
            "batch_window",
            -1.0,
            "guardrail.batch_window: expected a duration >= 0, got -1.0",
        ),
        (
            GuardrailSettings,
            "incident_window",
            -1.0,
            "guardrail.incident_window: expected a duration >= 0, got -1.0",
        ),
        (
            GuardrailSettings,
            "backoff_base",
            0.0,
            "guardrail.backoff_base: expected a positive number, got 0.0",
        ),
        (
            GuardrailSettings,
            "backoff_max",
            -3.0,
            "guardrail.backoff_max: expected a positive number, got -3.0",
        ),
        (
            GuardrailSettings,
            "backoff_factor",
            0.5,
            "guardrail.backoff_factor: expected a number >= 1, got 0.5",
        ),
        (LeaseSettings, "namespace", "", "leases.namespace: expected a namespace, got ''"),
        (LeaseSettings, "names", (), "leases.names: expected Lease names, got ()"),
        (LeaseSettings, "names", ("a", ""), "leases.names: expected Lease names, got ('a', '')"),
        (
            LeaseSettings,
            "flap_threshold",
            0,
            "leases.flap_threshold: expected an integer >= 1, got 0",
        ),
        (
            LeaseSettings,
            "flap_window",
            0.0,
            "leases.flap_window: expected a positive number, got 0.0",
        ),
        (
            LeaseSettings,
            "suspect_ttl",
            -5.0,
            "leases.suspect_ttl: expected a positive number, got -5.0",
        ),
        (LeaseSettings, "grace", -0.5, "leases.grace: expected a number >= 0, got -0.5"),
        (EngineSettings, "threshold", 0.0, "engine.threshold: expected a positive number, got 0.0"),
    ],
)
def test_a_bad_value_is_refused_naming_field_value_and_expectation(
    cls: Settings, field: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        cls(**{field: value})
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (
            GuardrailSettings,
            {
                "max_batch": 1,
                "max_recoveries": 1,
                "max_attempts": 1,
                "window": 0.5,
                "batch_window": 0.0,
                "incident_window": 0.0,
                "backoff_base": 0.5,
                "backoff_max": 0.5,
                "backoff_factor": 1.0,
            },
        ),
        (
            LeaseSettings,
            {"flap_threshold": 1, "flap_window": 0.5, "suspect_ttl": 0.5, "grace": 0.0},
        ),
        (EngineSettings, {"threshold": 0.5}),
    ],
)
def test_the_lowest_legal_values_are_taken(cls: Settings, values: dict[str, Any]) -> None:
    settings = cls(**values)
    assert {name: getattr(settings, name) for name in values} == values


def test_verify_storage_takes_its_text_and_refuses_others() -> None:
    assert EngineSettings(verify_storage="always").verify_storage is VerifyStorage.ALWAYS  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'sometimes' is not a valid VerifyStorage"):
        EngineSettings(verify_storage="sometimes")  # type: ignore[arg-type]


def test_a_namespace_is_watched_or_excluded_not_both() -> None:
    with pytest.raises(ValueError) as refused:
        EngineSettings(
            watch_namespaces=frozenset({"apps", "web"}),
            exclude_namespaces=frozenset({"web", "apps", "db"}),
        )
    assert str(refused.value) == (
        "engine.exclude_namespaces: ['apps', 'web'] are also in watch_namespaces; "
        "a namespace is either watched or excluded"
    )


@pytest.mark.parametrize(
    ("settings", "namespace", "labels", "in_scope"),
    [
        (EngineSettings(), "apps", {}, True),
        (EngineSettings(watch_namespaces=frozenset({"apps"})), "apps", {}, True),
        (EngineSettings(watch_namespaces=frozenset({"apps"})), "web", {}, False),
        (EngineSettings(exclude_namespaces=frozenset({"apps"})), "apps", {}, False),
        (EngineSettings(exclude_namespaces=frozenset({"apps"})), "web", {}, True),
        (EngineSettings(label_selector=LabelSelector.parse("team=a")), "x", {"team": "a"}, True),
        (EngineSettings(label_selector=LabelSelector.parse("team=a")), "x", {"team": "b"}, False),
    ],
)
def test_scope_is_namespaces_then_labels(
    settings: EngineSettings, namespace: str, labels: dict[str, str], in_scope: bool
) -> None:
    assert settings.in_scope(namespace, labels) is in_scope


@pytest.mark.parametrize(
    ("op", "values", "labels", "matches"),
    [
        ("exists", (), {"app": ""}, True),
        ("exists", (), {}, False),
        ("!", (), {}, True),
        ("!", (), {"app": "web"}, False),
        ("=", ("web",), {"app": "web"}, True),
        ("=", ("web",), {"app": "api"}, False),
        ("=", ("web",), {}, False),
        ("in", ("web", "api"), {"app": "api"}, True),
        ("in", ("web", "api"), {}, False),
        ("!=", ("web",), {"app": "api"}, True),
        ("!=", ("web",), {"app": "web"}, False),
        ("!=", ("web",), {}, True),
        ("notin", ("web", "api"), {"app": "db"}, True),
        ("notin", ("web", "api"), {"app": "web"}, False),
        ("notin", ("web", "api"), {}, True),
    ],
)
def test_a_requirement_matches_like_kubernetes(
    op: str, values: tuple[str, ...], labels: dict[str, str], matches: bool
) -> None:
    assert Requirement("app", op, frozenset(values)).matches(labels) is matches


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        ("app", (Requirement("app", "exists"),)),
        ("! app", (Requirement("app", "!"),)),
        ("app==web", (Requirement("app", "=", frozenset({"web"})),)),
        ("app=", (Requirement("app", "=", frozenset({""})),)),
        ("app != web", (Requirement("app", "!=", frozenset({"web"})),)),
        ("tier in ( web , api ,)", (Requirement("tier", "in", frozenset({"web", "api", ""})),)),
        ("tier notin (db)", (Requirement("tier", "notin", frozenset({"db"})),)),
        (
            " a , !b ",
            (Requirement("a", "exists"), Requirement("b", "!")),
        ),
    ],
)
def test_a_selector_parses_into_its_requirements(
    text: str, requirements: tuple[Requirement, ...]
) -> None:
    assert LabelSelector.parse(text).requirements == requirements


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "app=web,,b",
            "label selector 'app=web,,b': cannot read the term at ',b'; expected key, !key, "
            "key=value, key!=value, key in (a,b) or key notin (a,b)",
        ),
        ("app=web,", "label selector 'app=web,': ends with a comma"),
    ],
)
def test_a_bad_selector_names_the_text_and_the_part(text: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        LabelSelector.parse(text)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("tier in ()", {""}),
        ("tier in ( , )", {""}),
        ("tier in (web,)", {"", "web"}),
        ("tier notin (,web)", {"", "web"}),
    ],
)
def test_an_empty_element_of_a_set_is_the_empty_value(text: str, values: set[str]) -> None:
    """apimachinery reads "()" and each empty element of a set as the empty value."""
    (req,) = LabelSelector.parse(text).requirements
    assert req.values == values
    assert LabelSelector.parse(str(LabelSelector.parse(text))).requirements == (req,)


def test_an_empty_selector_matches_everything_and_is_false() -> None:
    empty = LabelSelector.parse("  ")
    assert not empty
    assert str(empty) == ""
    assert empty.matches({"any": "thing"})
    assert LabelSelector.parse("app")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "shard=a_",
            "label selector 'shard=a_': value 'a_' of 'shard' is not a label value: a value must "
            "be empty or at most 63 alphanumeric characters, '-', '_' or '.', starting and "
            "ending with an alphanumeric character",
        ),
        (
            "tier in (web, a b)",
            "label selector 'tier in (web, a b)': value 'a b' of 'tier' is not a label value: a "
            "value must be empty or at most 63 alphanumeric characters, '-', '_' or '.', "
            "starting and ending with an alphanumeric character",
        ),
        (
            "Shard_",
            "label selector 'Shard_': key 'Shard_' is not a label key: the name must be at most "
            "63 alphanumeric characters, '-', '_' or '.', starting and ending with an "
            "alphanumeric character",
        ),
        (
            "Sharding.fluxcd.io/key=a",
            "label selector 'Sharding.fluxcd.io/key=a': key 'Sharding.fluxcd.io/key' is not a "
            "label key: the prefix before '/' must be a lowercase DNS subdomain of at most 253 "
            "characters",
        ),
        (
            "!" + "k" * 64,
            f"label selector '!{'k' * 64}': key '{'k' * 64}' is not a label key: the "
            "name must be at most 63 alphanumeric characters, '-', '_' or '.', starting and ending "
            "with an alphanumeric character",
        ),
    ],
)
def test_a_key_or_value_the_api_server_refuses_is_refused_here(text: str, message: str) -> None:
    """labels.Parse checks every key and value; a selector it refuses would pass the
    settings and then make every list of the daemon a 400."""
    with pytest.raises(ValueError) as refused:
        LabelSelector.parse(text)
    assert str(refused.value) == message


SELECTORS = [
    "app",
    "!app",
    "app=web",
    "app==web",
    "app=",
    "app!=web",
    "tier in (web,api)",
    "tier notin (db)",
    "sharding.fluxcd.io/key=shard1",
    "a,!b,c in (x,y),d!=z",
    "app=web_",
    "Bad_",
    "a/b/c",
    "tier in (a b)",
    "tier in ()",
    "tier in (web,)",
    "tier notin (,web)",
    "tier in (,)",
]
LABEL_SETS: list[dict[str, str]] = [
    {},
    {"app": "web"},
    {"app": ""},
    {"app": "api", "tier": "web", "a": "1", "c": "x"},
    {"tier": "db", "sharding.fluxcd.io/key": "shard1"},
    {"a": "1", "b": "2", "c": "y", "d": "z"},
    {"a": "", "c": "x"},
    {"tier": ""},
]


@pytest.mark.parametrize("text", SELECTORS)
def test_the_selector_sent_is_one_the_api_server_parses_and_applies_the_same_way(
    text: str,
) -> None:
    """What fluxwatch accepts, it sends as ``str(selector)``: the embedded cluster's
    parser (apimachinery's grammar and checks) must accept that text and select the same
    objects as the policy filter does."""
    from fluxwatch.sim.selectors import SelectorError, parse_label_selector

    try:
        ours = LabelSelector.parse(text)
    except ValueError:
        with pytest.raises(SelectorError):
            parse_label_selector(text)
        return
    theirs = parse_label_selector(str(ours))
    assert theirs is not None
    assert [theirs(labels) for labels in LABEL_SETS] == [ours.matches(x) for x in LABEL_SETS]


_PREFIX_253 = ".".join(("a" * 63, "b" * 63, "c" * 63, "d" * 61))


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        (f"{_PREFIX_253}/app=web", True),
        (f"{_PREFIX_253}e/app=web", False),  # a prefix of 254
        (f"{'n' * 63}=web", True),
        (f"{'n' * 64}=web", False),
        (f"app={'v' * 63}", True),
        (f"app={'v' * 64}", False),
        (f"app in ({'v' * 63})", True),
        (f"app notin ({'v' * 64})", False),
    ],
)
def test_label_keys_and_values_are_held_to_the_api_server_s_lengths(
    text: str, accepted: bool
) -> None:
    """IsQualifiedName and IsValidLabelValue: a prefix of at most 253 characters, a name
    and a value of at most 63; one character more is refused, naming the part."""
    if accepted:
        assert LabelSelector.parse(text).requirements
    else:
        with pytest.raises(ValueError, match="is not a label"):
            LabelSelector.parse(text)
