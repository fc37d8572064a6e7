"""The README's permissions table is what ``config/rbac`` and ``config/components``
grant, rule for rule: a rule added, widened or dropped in a manifest (or in the table)
without the other fails here."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from tests.rbac_table import ROOT, Grant, readme_grants

CONFIG = ROOT / "config"


def _subject(binding: dict[str, Any]) -> tuple[str, str]:
    (subject,) = binding["subjects"]
    if subject["kind"] == "ServiceAccount":
        return "ServiceAccount", f"{subject['namespace']}/{subject['name']}"
    return subject["kind"], subject["name"]


def _resource(group: str, resource: str) -> str:
    """As kubectl prints it: plural.group/subresource."""
    plural, _, sub = resource.partition("/")
    name = f"{plural}.{group}" if group else plural
    return f"{name}/{sub}" if sub else name


def manifest_grants(folder: Path, source: str) -> set[Grant]:
    docs = [
        doc
        for path in sorted(folder.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    bindings = {
        (d["roleRef"]["kind"], d["roleRef"]["name"], d["metadata"].get("namespace")): d
        for d in docs
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
    }
    merged: dict[Grant, set[str]] = {}
    for role in (d for d in docs if d["kind"] in ("Role", "ClusterRole")):
        namespace = role["metadata"].get("namespace")
        binding = bindings[(role["kind"], role["metadata"]["name"], namespace)]
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    key = Grant(
                        source,
                        role["kind"],
                        role["metadata"]["name"],
                        namespace,
                        _subject(binding),
                        _resource(group, resource),
                        tuple(sorted(rule.get("resourceNames") or ())),
                        frozenset(),
                    )
                    merged.setdefault(key, set()).update(rule["verbs"])
    return {replace(k, verbs=frozenset(v)) for k, v in merged.items()}


def test_the_readme_table_is_every_rule_the_manifests_grant() -> None:
    shipped = manifest_grants(CONFIG / "rbac", "config/rbac")
    for component in sorted((CONFIG / "components").iterdir()):
        shipped |= manifest_grants(component, f"components/{component.name}")
    table = readme_grants()
    assert table - shipped == set(), "in the README, not in the manifests"
    assert shipped - table == set(), "in the manifests, not in the README"


def test_a_widened_rule_is_caught() -> None:
    """The comparison sees verbs: the README with one more verb differs."""
    text = (ROOT / "README.md").read_text()
    wider = text.replace("| list, watch | | the Flux controllers'", "| get, list, watch | | x", 1)
    assert wider != text
    assert readme_grants(wider) != readme_grants()
