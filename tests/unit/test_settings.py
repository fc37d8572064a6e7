"""Settings: sources and their order, Go durations, errors that name the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fluxwatch.durations import format_duration, parse_duration
from fluxwatch.engine.config import VerifyStorage
from fluxwatch.settings import SettingsError, engine_settings, load_settings

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
    assert "watch.verify_storage" in problems and "'sometimes'" in problems
    assert "guardrail.max_batch: expected an integer >= 1, got 0" in problems
    assert "notify.providers.0.type" in problems and "carrier-pigeon" in problems
    assert "telemetry.metrics_addr" in problems and "'localhost'" in problems
    assert len(caught.value.problems) == 5


def test_unknown_keys_are_errors_not_ignored(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("guardrail:\n  maxBatches: 3\n")
    with pytest.raises(SettingsError, match=r"guardrail\.max_batches"):
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
