"""Provider and Alert settings: Flux's spelling, durations, errors that name the field, no leaks."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from fluxwatch.durations import parse_duration
from fluxwatch.notify import NotifyConfigError, known_types, provider_class
from fluxwatch.notify.config import NotifySettings

SECRET_URL = "https://hooks.slack.com/services/T000/B000/XXXXsupersecretXXXX"

FLUX_YAML = """
providers:
  - name: slack
    type: slack
    channel: flux-alerts
    username: fluxwatch
    timeout: 30s
    secretRef:
      name: slack-webhook
  - name: am
    type: alertmanager
    address: http://alertmanager.monitoring:9093
    proxy: http://proxy.internal:3128
  - name: mounted
    type: generic-hmac
    address: https://hooks.example.com/flux
    secretPath: /etc/fluxwatch/hmac
alerts:
  - name: everything
    providerRef:
      name: slack
    eventSeverity: info
    eventSources:
      - kind: HelmRelease
        name: "*"
        namespace: apps
        matchLabels:
          team: payments
    inclusionList: ["stuck"]
    exclusionList: ["^test-"]
    eventMetadata:
      cluster: prod-eu
    summary: fluxwatch in prod-eu
  - name: errors
    providerRef:
      name: am
    eventSeverity: error
rateLimitInterval: 10m
"""


def test_flux_style_yaml_is_accepted() -> None:
    """FLUX-FACTS §6: Provider and Alert spec fields, spelled as in Flux's YAML."""
    settings = NotifySettings.model_validate(yaml.safe_load(FLUX_YAML))
    slack, am, mounted = settings.providers
    assert slack.timeout == 30.0
    assert slack.secret_ref is not None and slack.secret_ref.name == "slack-webhook"
    assert am.timeout == 15.0
    assert am.address is not None
    assert am.address.get_secret_value() == "http://alertmanager.monitoring:9093"
    assert str(mounted.secret_path) == "/etc/fluxwatch/hmac"
    everything, errors = settings.alerts
    assert everything.event_sources[0].match_labels == {"team": "payments"}
    assert everything.event_metadata == {"cluster": "prod-eu"}
    assert errors.event_severity == "error"
    assert settings.rate_limit_interval == 600.0
    assert settings.queue_size == 100
    assert (settings.max_retries, settings.retry_wait_min, settings.retry_wait_max) == (4, 2, 30)


def test_snake_case_names_work_too() -> None:
    settings = NotifySettings(
        providers=[{"name": "g", "type": "generic", "secret_path": "/x"}],  # type: ignore[list-item]
        alerts=[{"name": "a", "provider_ref": {"name": "g"}}],  # type: ignore[list-item]
    )
    assert settings.alerts[0].provider_ref.name == "g"


def test_durations_dump_back_as_go_strings() -> None:
    settings = NotifySettings.model_validate(yaml.safe_load(FLUX_YAML))
    dumped = settings.model_dump(by_alias=True, mode="json")
    assert dumped["rateLimitInterval"] == "10m0s"
    exact = NotifySettings(retry_wait_min=1.5).model_dump(by_alias=True, mode="json")
    assert exact["retryWaitMin"] == "1.5s"
    assert parse_duration(exact["retryWaitMin"]) == 1.5
    assert dumped["providers"][0]["timeout"] == "30s"
    assert dumped["providers"][1]["address"] == "**********"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), ("1.5s", 1.5), (20, 20.0)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["15x", "", "s", "5m garbage", "-1s", True])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def _error(data: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as info:
        NotifySettings.model_validate(data)
    return str(info.value)


def test_bad_duration_error_names_the_field() -> None:
    text = _error({"providers": [{"name": "g", "type": "generic", "timeout": "15x"}]})
    assert "providers.0.timeout" in text
    assert "expected a duration like '90s'" in text and "'15x'" in text


def test_unknown_type_lists_the_known_ones() -> None:
    text = _error({"providers": [{"name": "g", "type": "hipchat"}]})
    assert "providers.0.type" in text
    assert "unknown provider type 'hipchat'" in text
    assert "generic-hmac" in text and "kubernetes-event" in text and "nats" in text


def test_unknown_field_is_named() -> None:
    text = _error({"providers": [{"name": "g", "type": "generic", "adress": "http://x"}]})
    assert "providers.0.adress" in text
    assert "Extra inputs are not permitted" in text


def test_alert_must_reference_a_provider() -> None:
    text = _error(
        {
            "providers": [{"name": "slack", "type": "slack"}],
            "alerts": [{"name": "a", "providerRef": {"name": "teams"}}],
        }
    )
    assert "alert 'a': providerRef.name 'teams' is not a provider (providers: slack)" in text


def test_bad_regex_is_named() -> None:
    text = _error(
        {
            "providers": [{"name": "g", "type": "generic"}],
            "alerts": [{"name": "a", "providerRef": {"name": "g"}, "exclusionList": ["("]}],
        }
    )
    assert "alerts.0.exclusionList" in text
    assert "invalid regular expression '('" in text


def test_event_severity_is_info_or_error() -> None:
    text = _error(
        {
            "providers": [{"name": "g", "type": "generic"}],
            "alerts": [{"name": "a", "providerRef": {"name": "g"}, "eventSeverity": "warning"}],
        }
    )
    assert "alerts.0.eventSeverity" in text


def test_secret_ref_and_secret_path_exclude_each_other() -> None:
    text = _error(
        {
            "providers": [
                {"name": "g", "type": "generic", "secretRef": {"name": "s"}, "secretPath": "/s"}
            ]
        }
    )
    assert "set secretRef or secretPath, not both" in text


def test_duplicate_names_are_rejected() -> None:
    text = _error({"providers": [{"name": "g", "type": "generic"}] * 2})
    assert "duplicate provider names g" in text


def test_errors_and_repr_never_show_an_inline_secret_address() -> None:
    provider = {"name": "s", "type": "slack", "address": SECRET_URL, "proxy": SECRET_URL}
    cases: list[dict[str, object]] = [
        {"providers": [provider, provider]},
        {"providers": [provider], "alerts": [{"name": "a", "providerRef": {"name": "x"}}]},
        {"providers": [{**provider, "timeout": "soon"}]},
        {"providers": [{**provider, "secretRef": {"name": "a"}, "secretPath": "/a"}]},
    ]
    for data in cases:
        assert "supersecret" not in _error(data)
    settings = NotifySettings.model_validate({"providers": [provider]})
    assert "supersecret" not in repr(settings)
    assert "supersecret" not in str(settings.model_dump())


def test_registry_knows_every_required_type() -> None:
    assert set(known_types()) == {
        "generic",
        "generic-hmac",
        "slack",
        "discord",
        "rocket",
        "msteams",
        "googlechat",
        "webex",
        "telegram",
        "matrix",
        "opsgenie",
        "pagerduty",
        "alertmanager",
        "grafana",
        "nats",
        "datadog",
        "sentry",
        "lark",
        "zulip",
        "kubernetes-event",
        "flux",
    }
    for name in known_types():
        assert provider_class(name).type == name


def test_unknown_type_in_the_registry_is_a_config_error() -> None:
    with pytest.raises(NotifyConfigError, match=r"unknown provider type 'x'; known types: .*slack"):
        provider_class("x")
