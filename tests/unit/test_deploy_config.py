"""The settings files shipped in ``config/`` load: a typo there would stop every pod."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fluxwatch.settings import load_settings

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_the_manager_config_is_the_defaults_spelled_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUXWATCH_CONFIG", raising=False)
    shipped = load_settings(CONFIG / "manager" / "config.yaml")
    defaults = load_settings(None)
    assert shipped.model_dump(exclude={"leader"}) == defaults.model_dump(exclude={"leader"})
    assert shipped.leader.name == "fluxwatch-leader-election"


def test_the_sample_settings_load_with_their_providers_and_alerts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FLUXWATCH_CONFIG", raising=False)
    sample = load_settings(CONFIG / "samples" / "settings.yaml")
    types = {p.name: p.type for p in sample.notify.providers}
    assert types == {"slack": "slack", "audit": "generic-hmac", "alertmanager": "alertmanager"}
    refs = {p.name: p.secret_ref.name for p in sample.notify.providers if p.secret_ref}
    secrets = {
        doc["metadata"]["name"]: doc
        for doc in yaml.safe_load_all((CONFIG / "samples" / "secrets.yaml").read_text())
    }
    # Every secretRef has its template, in fluxwatch's namespace.
    for name in refs.values():
        assert secrets[name]["metadata"]["namespace"] == "fluxwatch-system"
    assert set(secrets["fluxwatch-audit-webhook"]["stringData"]) == {"address", "token"}
    assert {a.provider_ref.name for a in sample.notify.alerts} == set(types)
