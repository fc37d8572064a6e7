"""The machine's kubectl doing server-side apply against the emulator: create, a second
manager's conflict (exit 1, naming the owner and the field), ``--force-conflicts``
taking the field over, and both managers in ``--show-managed-fields``."""

from __future__ import annotations

import json
from pathlib import Path

from fluxwatch.sim.apiserver import ApiServer
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


async def test_server_side_apply_conflict_and_force(
    tls_apiserver: ApiServer, kubectl: Kubectl, tmp_path: Path
) -> None:
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
