"""Listen addresses as Go (and so Flux) spells them; a bad one is a settings error that
names the field, the value and the reason, before anything binds."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxwatch.cli import main
from fluxwatch.settings import SettingsError, load_settings
from fluxwatch.telemetry.listen import ListenAddr, parse_listen_addr


@pytest.mark.parametrize(
    ("value", "host", "port"),
    [
        (":8080", "", 8080),
        ("[::]:8080", "", 8080),
        ("0.0.0.0:8080", "0.0.0.0", 8080),
        ("127.0.0.1:0", "127.0.0.1", 0),
        ("[::1]:9440", "::1", 9440),
        ("[fd00::2]:65535", "fd00::2", 65535),
        ("localhost:8080", "localhost", 8080),
        ("fluxwatch.example.com.:80", "fluxwatch.example.com.", 80),
    ],
)
def test_addresses_parse(value: str, host: str, port: int) -> None:
    addr = parse_listen_addr(value)
    assert addr == ListenAddr(host, port)
    # ":8080" and "[::]:8080" are the same listener: both families.
    assert addr.wildcard is (host == "")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("8080", "no port"),
        ("localhost", "no port"),
        ("::1:8080", "an IPv6 address goes in brackets, like '[::1]:8080'"),
        ("[::1]8080", "no ']:' after the IPv6 address"),
        ("[::1", "no ']:' after the IPv6 address"),
        ("[127.0.0.1]:80", "'127.0.0.1' in brackets is not an IPv6 address"),
        ("256.1.1.1:80", "'256.1.1.1' is not an IPv4 address or name"),
        ("bad_host:80", "'bad_host' is not an IPv4 address or name"),
        (":99999", "the port must be 0 to 65535"),
        (":http", "the port must be 0 to 65535"),
        ("[::]:", "the port must be 0 to 65535"),
    ],
)
def test_bad_addresses_say_why(value: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_listen_addr(value)
    assert str(caught.value).endswith(f"got {value!r}: {reason}")


def test_settings_refuse_a_bad_address_with_field_and_value(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("telemetry:\n  metricsAddr: '::1:8080'\n  healthAddr: '[::]:9440'\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    assert len(caught.value.problems) == 1
    (problem,) = caught.value.problems
    assert problem.startswith("telemetry.metricsAddr:")  # as the YAML spells it
    assert "'::1:8080'" in problem and "[::1]:8080" in problem


def test_check_config_exits_2_on_a_bad_flag_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("telemetry:\n  healthAddr: '[::1]9440'\n")
    assert main(["check-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "telemetry.healthAddr" in err and "no ']:' after the IPv6 address" in err


def test_ipv6_addresses_load(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("telemetry:\n  metricsAddr: '[::]:8080'\n  healthAddr: '[::1]:9440'\n")
    settings = load_settings(config)
    assert settings.telemetry.metrics_addr == "[::]:8080"
    assert str(parse_listen_addr(settings.telemetry.health_addr)) == "[::1]:9440"
