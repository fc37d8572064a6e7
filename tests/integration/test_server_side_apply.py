"""The machine's kubectl doing server-side apply against the emulator: create, a second
manager's conflict (exit 1, naming the owner and the field), ``--force-conflicts``
taking the field over, and both managers in ``--show-managed-fields``.

Skipped while the emulator answers 415 to ``application/apply-patch+yaml`` (the store
does not call fluxwatch.sim.managedfields yet)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from fluxwatch.sim.apiserver import APPLY_PATCH, ApiServer
from fluxwatch.sim.kubectl import Kubectl

CM_YAML = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: default
data:
  key: first
  keep: mine
"""

OTHER_YAML = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: default
data:
  key: second
"""


async def require_server_side_apply(api: ApiServer) -> None:
    """Skip unless the server takes apply patches (a body without a kind is refused
    with 400 by a server that does, and changes nothing)."""
    async with (
        aiohttp.ClientSession(
            base_url=api.url, headers={"Authorization": f"Bearer {api.admin_token}"}
        ) as http,
        http.patch(
            "/api/v1/namespaces/default/configmaps/ssa-probe?fieldManager=probe",
            data=b"{}",
            headers={"Content-Type": APPLY_PATCH},
            ssl=api.client_ssl_context() or False,
        ) as resp,
    ):
        if resp.status == 415:
            pytest.skip("server-side apply not wired")


async def test_server_side_apply_conflict_and_force(
    tls_apiserver: ApiServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    await require_server_side_apply(tls_apiserver)
    first, other = tmp_path / "cm.yaml", tmp_path / "other.yaml"
    first.write_text(CM_YAML)
    other.write_text(OTHER_YAML)

    created = (await kubectl("apply", "--server-side", "-f", str(first))).check()
    assert created.stdout.strip() == "configmap/settings serverside-applied"

    refused = await kubectl("apply", "--server-side", "--field-manager=other", "-f", str(other))
    assert refused.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .data.key' in refused.stderr
    got = json.loads((await kubectl("get", "cm", "settings", "-n", "default", "-o", "json")).stdout)
    assert got["data"] == {"key": "first", "keep": "mine"}

    forced = await kubectl(
        "apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", str(other)
    )
    forced.check()
    shown = (
        await kubectl(
            "get", "cm", "settings", "-n", "default", "-o", "json", "--show-managed-fields"
        )
    ).check()
    obj = json.loads(shown.stdout)
    assert obj["data"] == {"key": "second", "keep": "mine"}
    owners = {e["manager"]: e for e in obj["metadata"]["managedFields"]}
    assert set(owners) == {"kubectl", "other"}
    assert owners["kubectl"]["operation"] == "Apply"
    assert owners["kubectl"]["fieldsV1"] == {"f:data": {"f:keep": {}}}
    assert owners["other"]["fieldsV1"] == {"f:data": {"f:key": {}}}

    # Without --show-managed-fields kubectl hides them, as against a real cluster.
    plain = (await kubectl("get", "cm", "settings", "-n", "default", "-o", "yaml")).check()
    assert "managedFields" not in plain.stdout
