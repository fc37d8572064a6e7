"""``fluxwatch check-config`` on Flux-shaped alerting: what it refuses, what it warns about.

Real subprocesses on real files, as a person runs it before a rollout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import fluxwatch

pytestmark = pytest.mark.e2e

FLUX_PROVIDER = """
notify:
  providers:
    - {name: flux, type: flux}
  alerts:
    - name: to-flux
      providerRef: {name: flux}
      eventSeverity: error
"""


async def test_a_route_that_would_lose_events_to_the_flux_provider_is_refused(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(FLUX_PROVIDER)
    code, out, err = await fluxwatch("check-config", str(config), cwd=tmp_path)
    assert code == 2, out
    assert "alert 'to-flux' routes to flux provider 'flux'" in err
    assert "Lease (LeaderFlapping, ControllerLeaderless, GuardrailTripped)" in err
    assert "Deployment (GuardrailTripped)" in err

    config.write_text(
        FLUX_PROVIDER + "      eventSources: [{kind: HelmRelease, name: '*', namespace: '*'}]\n"
    )
    code, out, err = await fluxwatch("check-config", str(config), cwd=tmp_path)
    assert code == 0, err
    assert json.loads(out)["notify"]["alerts"][0]["name"] == "to-flux"


async def test_deprecated_flux_fields_are_accepted_with_a_warning(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        """
notify:
  providers:
    - apiVersion: notification.toolkit.fluxcd.io/v1beta3
      kind: Provider
      metadata: {name: slack, namespace: flux-system}
      spec: {type: slack, interval: 10m, secretRef: {name: slack-url}}
"""
    )
    code, out, err = await fluxwatch("check-config", str(config), cwd=tmp_path)
    assert code == 0, err
    assert "warning: notify: provider 'slack': interval is deprecated" in err
    assert json.loads(out)["notify"]["providers"][0]["interval"] == "10m0s"
