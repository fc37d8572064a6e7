"""``fluxwatch rbac``: the RBAC a settings file needs, and the shipped manifests are its output.

What each Helm storage shape lets fluxwatch read is proven against the embedded
cluster in ``tests/e2e/test_deploy_rbac.py``; here the shapes are built and the
files in ``config/`` are held equal to what the generator prints for the
settings they go with, so neither can drift from the other.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxwatch.cli import main
from fluxwatch.rbac import HelmStorage, RbacError, approver_manifests, manifests
from fluxwatch.settings import Settings, load_settings

CONFIG = Path(__file__).resolve().parents[2] / "config"
Docs = dict[tuple[str, str, str], dict[str, Any]]


@pytest.fixture(autouse=True)
def _in_fluxwatch_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUXWATCH_CONFIG", raising=False)
    monkeypatch.setenv("POD_NAMESPACE", "fluxwatch-system")


def by_key(docs: list[dict[str, Any]]) -> Docs:
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs}


def shipped(*files: str) -> Docs:
    docs: list[dict[str, Any]] = []
    for name in files:
        docs += [d for d in yaml.safe_load_all((CONFIG / name).read_text()) if d]
    return by_key(docs)


def settings(path: str | None = None, **overrides: Any) -> Settings:
    return load_settings(CONFIG / path if path else None, overrides)


def test_config_rbac_is_what_the_shipped_settings_need() -> None:
    assert by_key(manifests(settings("manager/config.yaml"))) == shipped("rbac/role.yaml")


def test_the_own_lease_and_the_provider_secrets_are_named() -> None:
    docs = by_key(manifests(settings("samples/settings.yaml")))
    own = docs["Role", "fluxwatch-system", "fluxwatch-leader-election"]["rules"]
    assert own[0]["verbs"] == ["get", "update"]
    assert own[0]["resourceNames"] == ["fluxwatch-leader-election"]
    assert "resourceNames" not in own[1] and own[1]["verbs"] == ["create"]
    wanted = {k: v for k, v in docs.items() if k[2] == "fluxwatch-provider-secrets"}
    assert wanted == shipped("components/provider-secrets/role.yaml")
    secrets = [r for d in docs.values() for r in d.get("rules", ()) if "secrets" in r["resources"]]
    assert secrets == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get"],
            "resourceNames": ["fluxwatch-audit-webhook", "fluxwatch-slack"],
        }
    ]


def test_a_shard_names_its_own_lease() -> None:
    docs = by_key(manifests(settings(watch={"label_selector": "shard=a"})))
    own = docs["Role", "fluxwatch-system", "fluxwatch-leader-election"]["rules"][0]
    suffix = hashlib.sha256(b"shard=a").hexdigest()[:8]
    assert own["resourceNames"] == [f"fluxwatch-leader-election-{suffix}"]


def test_no_helm_storage_lists_no_secret_by_default() -> None:
    docs = manifests(settings())
    assert not [r for d in docs for r in d.get("rules", ()) if "secrets" in r["resources"]]


def test_cluster_storage_is_the_component() -> None:
    docs = by_key(manifests(settings(), helm_storage=HelmStorage.CLUSTER))
    storage = {k: v for k, v in docs.items() if k[2] == "fluxwatch-helm-storage"}
    assert storage == shipped("components/helm-storage/role.yaml")


def test_status_correct_is_the_component() -> None:
    docs = by_key(manifests(settings(recovery={"status_correct": True})))
    wanted = {k: v for k, v in docs.items() if k[2] == "fluxwatch-status-correct"}
    assert wanted == shipped("components/status-correct/role.yaml")


def test_namespaced_storage_is_one_role_per_namespace() -> None:
    named = manifests(settings(), helm_storage=HelmStorage.NAMESPACED, storage_in=["b", "a", "b"])
    watched = manifests(
        settings(watch={"namespaces": ["b", "a"]}), helm_storage=HelmStorage.NAMESPACED
    )
    for docs in (named, watched):
        storage = [d for d in docs if d["metadata"]["name"] == "fluxwatch-helm-storage"]
        assert [(d["kind"], d["metadata"]["namespace"]) for d in storage] == [
            ("Role", "a"),
            ("RoleBinding", "a"),
            ("Role", "b"),
            ("RoleBinding", "b"),
        ]
        assert storage[0]["rules"] == [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}
        ]
        assert storage[1]["subjects"] == [
            {"kind": "ServiceAccount", "name": "fluxwatch", "namespace": "fluxwatch-system"}
        ]
    with pytest.raises(RbacError, match="--storage-namespace"):
        manifests(settings(), helm_storage=HelmStorage.NAMESPACED)


def test_the_command_prints_yaml_and_says_what_is_exposed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rbac", "--helm-storage", "cluster"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# fluxwatch rbac --helm-storage cluster: Secrets readable: every")
    assert by_key(list(yaml.safe_load_all(out))) == by_key(
        manifests(settings(), helm_storage=HelmStorage.CLUSTER)
    )
    assert main(["rbac", "--helm-storage", "namespaced"]) == 2
    assert "name the namespaces that hold Helm storage" in capsys.readouterr().err


def test_always_without_storage_access_is_warned(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = CONFIG / "manager" / "config.yaml"
    assert main(["rbac", "--config", str(config)]) == 0
    assert "warning" not in capsys.readouterr().err
    always = tmp_path / "config.yaml"
    always.write_text(config.read_text().replace("verifyStorage: auto", "verifyStorage: always"))
    assert always.read_text() != config.read_text()
    assert main(["rbac", "--config", str(always)]) == 0
    assert "never acts" in capsys.readouterr().err


def test_the_approver_component_is_what_approve_needs_for_the_shipped_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`fluxwatch approve`: get and patch of the leader Lease by name, and who-am-I; the
    component is the generator's output for group fluxwatch-approvers (the integration test
    tests/integration/test_approve_cli.py runs the command on exactly these rules)."""
    docs = approver_manifests(settings("manager/config.yaml"), groups=["fluxwatch-approvers"])
    assert by_key(docs) == shipped("components/approver/role.yaml")
    config = str(CONFIG / "manager" / "config.yaml")
    argv = ["rbac", "--config", config, "--approver-group", "oncall", "--approver-user", "ann"]
    assert main(argv) == 0
    printed = by_key(list(yaml.safe_load_all(capsys.readouterr().out)))
    binding = printed["RoleBinding", "fluxwatch-system", "fluxwatch-approver"]
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [
        ("User", "ann"),
        ("Group", "oncall"),
    ]
    assert ("ClusterRoleBinding", "", "fluxwatch-approver") in printed
    assert ("ClusterRole", "", "fluxwatch") in printed, "fluxwatch's own RBAC is still printed"


def test_approvers_follow_the_shard_lease_and_need_leader_election() -> None:
    docs = by_key(approver_manifests(settings(watch={"label_selector": "shard=a"}), users=["u"]))
    rule = docs["Role", "fluxwatch-system", "fluxwatch-approver"]["rules"][0]
    suffix = hashlib.sha256(b"shard=a").hexdigest()[:8]
    assert rule["resourceNames"] == [f"fluxwatch-leader-election-{suffix}"]
    with pytest.raises(RbacError, match=r"leader\.enabled is false"):
        approver_manifests(settings(leader={"enabled": False}), users=["u"])
    with pytest.raises(RbacError, match="at least one user or group"):
        approver_manifests(settings())
