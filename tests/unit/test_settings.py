"""Settings: sources and their order, Go durations, errors that name the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fluxwatch.durations import format_duration, parse_duration
from fluxwatch.engine.config import VerifyStorage
from fluxwatch.settings import SettingsError, engine_settings, load_settings, recovery_options

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        (12, 12),
        ("12", 12),
        ("2h0m0s", 7200),
    ],
)
def test_go_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5x", "", "m5", "-1s", True, None, "5m junk"])
def test_bad_durations_say_what_was_expected(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_duration_spelling_is_gos() -> None:
    assert [format_duration(s) for s in (300, 5400, 0.5, 7)] == ["5m0s", "1h30m0s", "500ms", "7s"]


def test_flags_beat_env_beat_file_beat_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "watch:\n  threshold: 2m\n  verifyStorage: never\n"
        "guardrail:\n  maxBatch: 4\n  maxRecoveries: 6\n  window: 1h\n"
    )
    monkeypatch.setenv("FLUXWATCH_GUARDRAIL__MAX_BATCH", "7")
    monkeypatch.setenv("FLUXWATCH_GUARDRAIL__MAX_RECOVERIES", "8")
    settings = load_settings(config, {"guardrail": {"max_recoveries": 9}})
    assert settings.watch.threshold == 120  # file
    assert settings.guardrail.max_batch == 7  # env over file
    assert settings.guardrail.max_recoveries == 9  # flag over env
    assert settings.guardrail.window == 3600  # file, a Go duration
    assert settings.guardrail.max_attempts == 3  # default
    engine = engine_settings(settings)
    assert engine.verify_storage is VerifyStorage.NEVER
    assert engine.guardrail is settings.guardrail


def test_every_problem_names_its_field_and_value(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "watch:\n  threshold: 5x\n  verifyStorage: sometimes\n"
        "guardrail:\n  maxBatch: 0\n"
        "notify:\n  providers:\n    - {name: x, type: carrier-pigeon}\n"
        "telemetry:\n  metricsAddr: localhost\n"
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    problems = "\n".join(caught.value.problems)
    assert "watch.threshold" in problems and "'5x'" in problems
    assert "watch.verifyStorage" in problems and "'sometimes'" in problems
    assert "guardrail.maxBatch: expected an integer >= 1, got 0" in problems
    assert "notify.providers.0.type" in problems and "carrier-pigeon" in problems
    assert "telemetry.metricsAddr" in problems and "'localhost'" in problems
    assert len(caught.value.problems) == 5


def test_unknown_keys_are_errors_not_ignored(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("guardrail:\n  maxBatches: 3\n")
    with pytest.raises(
        SettingsError, match=r"guardrail\.maxBatches: unknown field; expected one of maxBatch, "
    ):
        load_settings(config)


def test_unreadable_or_non_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(SettingsError, match="expected a mapping"):
        load_settings(listy)


def test_the_readme_example_is_valid(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", readme, re.S)
    assert example is not None
    path = tmp_path / "readme.yaml"
    path.write_text(example.group(1))
    settings = load_settings(path)
    assert settings.notify.providers[0].type == "slack"
    assert settings.leases.flap_threshold == 3


def test_a_shard_elects_its_own_leader_with_fluxs_suffix() -> None:
    """FLUX-FACTS §5: with --watch-label-selector the Lease name gets -<8 hex of
    sha256(selector)>, so two shards never share one leader."""
    import hashlib

    from fluxwatch.settings import leader_lease_name

    assert leader_lease_name(load_settings(None)) == "fluxwatch-leader-election"
    shard = load_settings(None, {"watch": {"label_selector": "sharding.fluxcd.io/key=shard1"}})
    digest = hashlib.sha256(b"sharding.fluxcd.io/key=shard1").hexdigest()[:8]
    assert leader_lease_name(shard) == f"fluxwatch-leader-election-{digest}"


HOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"


def problems_of(tmp_path: Path, text: str) -> list[str]:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    return caught.value.problems


@pytest.mark.parametrize(
    ("text", "field"),
    [
        # A mistyped key: its value is likely the credential it was meant to hold.
        (
            f"notify:\n  providers:\n    - {{name: s, type: slack, adress: '{HOOK}'}}\n",
            "notify.providers.0.adress: unknown field; expected one of name, namespace, type, "
            "address",
        ),
        # secretRef given the URL instead of {name: ...}.
        (
            f"notify:\n  providers:\n    - {{name: s, type: slack, secretRef: '{HOOK}'}}\n",
            "notify.providers.0.secretRef: ",
        ),
        (f"webhook: '{HOOK}'\n", "webhook: unknown field; expected one of kubeconfig, "),
        (f"guardrail:\n  maxBatchSize: '{HOOK}'\n", "guardrail.maxBatchSize: unknown field"),
    ],
)
def test_no_error_echoes_a_value_that_could_be_a_secret(
    tmp_path: Path, text: str, field: str
) -> None:
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1 and problems[0].startswith(field), problems
    assert "SECRET" not in problems[0] and "hooks.slack.com" not in problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("watch:\n  labelSelector: 'app in (a,'\n", "watch.labelSelector: label selector "),
        ("watch:\n  label_selector: '=x'\n", "watch.label_selector: label selector "),
        (
            "watch:\n  watchTimeout: 500ms\n",
            "watch.watchTimeout: Input should be greater than or equal to 1 (got 0.5)",
        ),
        (
            "watch:\n  labelSelector: 'shard=a_'\n",
            "watch.labelSelector: label selector 'shard=a_': value 'a_' of 'shard' is not a label",
        ),
        ("telemetry:\n  metricsAddr: '999.1.1.1:8080'\n", "telemetry.metricsAddr: expected"),
        ("telemetry:\n  healthAddr: 'nosuch.invalid:9440'\n", "telemetry.healthAddr: expected"),
        ("watch:\n  threshold: 1e400\n", "watch.threshold: expected a duration of at most "),
        ("watch:\n  threshold: 300000000000\n", "watch.threshold: expected a duration of at "),
        ("guardrail:\n  maxBatch: true\n", "guardrail.maxBatch: expected a number, got true"),
        ("guardrail:\n  window: false\n", "guardrail.window: expected a number, got false"),
        ("watch:\n  pageSize: true\n", "watch.pageSize: expected a number, got true"),
        ("leases:\n  flapThreshold: yes\n", "leases.flapThreshold: expected a number, got true"),
    ],
)
def test_what_run_would_refuse_is_refused_at_load_naming_the_key_as_written(
    tmp_path: Path, text: str, expected: str
) -> None:
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_listen_addresses_of_this_machine_are_taken(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("telemetry:\n  metricsAddr: '127.0.0.1:0'\n  healthAddr: 'localhost:9440'\n")
    settings = load_settings(config)
    assert settings.telemetry.health_addr == "localhost:9440"


def test_an_environment_variable_is_named_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLUXWATCH_GUARDRAIL__MAX_BATCH", "many")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems[0].startswith("FLUXWATCH_GUARDRAIL__MAX_BATCH: ")


def test_malformed_json_in_the_environment_is_one_line_without_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "FLUXWATCH_NOTIFY__PROVIDERS", f'[{{"name": "s", "type": "slack", "address": "{HOOK}"'
    )
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems == [
        "FLUXWATCH_NOTIFY__PROVIDERS: expected JSON (a list or an object), "
        "Expecting ',' delimiter at line 1 column 103"
    ]


def test_a_provider_from_the_environment_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "FLUXWATCH_NOTIFY__PROVIDERS", f'[{{"name": "s", "type": "slack", "adress": "{HOOK}"}}]'
    )
    with pytest.raises(SettingsError) as caught:
        load_settings()
    (problem,) = caught.value.problems
    assert problem.startswith("FLUXWATCH_NOTIFY__PROVIDERS[0].adress: unknown field")
    assert "SECRET" not in problem


def test_the_reset_strategy_is_opt_in_and_a_boolean(tmp_path: Path) -> None:
    """recovery.reset: off unless set; a value that is not a boolean is named as written."""
    assert recovery_options(load_settings()).reset is False
    config = tmp_path / "config.yaml"
    config.write_text("recovery:\n  reset: true\n")
    assert recovery_options(load_settings(config)).reset is True
    assert problems_of(tmp_path, "recovery:\n  reset: maybe\n") == [
        "recovery.reset: expected true or false (got 'maybe')"
    ]
