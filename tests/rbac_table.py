"""The README's table of permissions ("Permissions"), read as rows to compare with the
manifests and with ``kubectl auth can-i --list``.

A row with an empty cell continues the row above it (same source, role, subject and
resource), as a person reads the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "| from | role (namespace) | to | resource | verbs | names | used by |"
SERVICE_ACCOUNT = ("ServiceAccount", "fluxwatch-system/fluxwatch")


@dataclass(frozen=True, slots=True)
class Grant:
    """One rule: ``verbs`` on ``resource`` (plural.group[/subresource], as kubectl names
    it) limited to ``names`` (empty: any), by a role bound to ``subject``."""

    source: str  # config/rbac, components/doctor, ...
    kind: str  # Role or ClusterRole
    role: str
    namespace: str | None  # None for a ClusterRole
    subject: tuple[str, str]  # (kind, name): ServiceAccount ns/name, Group name
    resource: str
    names: tuple[str, ...]
    verbs: frozenset[str]


def _ticks(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def readme_grants(text: str | None = None) -> set[Grant]:
    """Every row of the README's permissions table, verbs of one key merged."""
    text = (ROOT / "README.md").read_text() if text is None else text
    lines = text.splitlines()
    start = lines.index(HEADER) + 2
    merged: dict[Grant, set[str]] = {}
    last = [""] * 6
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        source, role, to, resource, verbs, names = (
            cell or (last[i] if i < 4 else "") for i, cell in enumerate(cells[:6])
        )
        last = [source, role, to, resource, verbs, names]
        kind = role.split()[0]
        role_name, *where = _ticks(role)
        subject = SERVICE_ACCOUNT if to == "SA" else ("Group", _ticks(to)[0])
        key = Grant(
            _ticks(source)[0],
            kind,
            role_name,
            where[0] if where else None,
            subject,
            _ticks(resource)[0],
            tuple(sorted(_ticks(names))),
            frozenset(),
        )
        merged.setdefault(key, set()).update(v.strip() for v in verbs.split(","))
    return {replace(key, verbs=frozenset(verbs)) for key, verbs in merged.items()}
