"""RBAC as kube-apiserver evaluates it: a bearer token names a user, bindings give
users (and their groups) roles, and a request is allowed when one rule of one
bound role matches its verb, API group, resource[/subresource], name and namespace.

Roles come from the YAML files fluxwatch ships (``config/rbac``, components):
plain multi-document files, or a kustomize directory whose ``resources``,
``components`` and ``namespace`` are followed, enough for those shapes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ADMIN_USER = "system:admin"
ADMIN_GROUP = "system:masters"
RBAC_KINDS = frozenset({"ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding"})
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    groups: tuple[str, ...] = ("system:authenticated",)

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups


def user_for_subject(subject: str) -> User:
    """The user a token stands for: ``system:serviceaccount:<ns>:<name>`` or a plain user."""
    if subject.startswith(SA_PREFIX):
        ns = subject[len(SA_PREFIX) :].split(":", 1)[0]
        return User(
            subject,
            ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"),
        )
    return User(subject)


def token_for_subject(subject: str) -> str:
    """A deterministic token per subject, so a kubeconfig written once stays valid."""
    return "sim-" + hashlib.sha256(f"fluxwatch-sim:{subject}".encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class Rule:
    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Rule:
        return cls(
            frozenset(raw.get("verbs") or ()),
            frozenset(raw.get("apiGroups") or ()),
            frozenset(raw.get("resources") or ()),
            frozenset(raw.get("resourceNames") or ()),
        )

    def allows(self, req: Request) -> bool:
        if "*" not in self.verbs and req.verb not in self.verbs:
            return False
        if "*" not in self.api_groups and req.group not in self.api_groups:
            return False
        if not self._resource_matches(req):
            return False
        return not self.resource_names or req.name in self.resource_names

    def _resource_matches(self, req: Request) -> bool:
        if "*" in self.resources:
            return True
        combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
        if combined in self.resources:
            return True
        return bool(req.subresource) and f"*/{req.subresource}" in self.resources


@dataclass(frozen=True, slots=True)
class Request:
    """The authorization attributes of one API request."""

    user: User
    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    def forbidden_message(self, qualified_resource: str) -> str:
        """The message of the real server's 403, word for word."""
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f'in the namespace "{self.namespace}"' if self.namespace else "at the cluster scope"
        reason = (
            f'User "{self.user.name}" cannot {self.verb} resource "{resource}" '
            f'in API group "{self.group}" {where}'
        )
        target = f'{qualified_resource} "{self.name}"' if self.name else qualified_resource
        return f"{target} is forbidden: {reason}"


@dataclass(slots=True)
class _Binding:
    namespace: str  # "" for a ClusterRoleBinding
    role_kind: str
    role_name: str
    subjects: list[tuple[str, str]]  # ("user" | "group", name)


@dataclass
class Authorizer:
    """Rules from RBAC documents; ``allowed`` answers one request."""

    cluster_roles: dict[str, list[Rule]] = field(default_factory=dict)
    roles: dict[tuple[str, str], list[Rule]] = field(default_factory=dict)
    bindings: list[_Binding] = field(default_factory=list)

    @classmethod
    def from_documents(cls, docs: Iterable[dict[str, Any]]) -> Authorizer:
        auth = cls()
        for doc in docs:
            kind = doc.get("kind")
            md = doc.get("metadata") or {}
            name, ns = md.get("name", ""), md.get("namespace", "")
            if kind == "ClusterRole":
                auth.cluster_roles[name] = [Rule.parse(r) for r in doc.get("rules") or ()]
            elif kind == "Role":
                rules = [Rule.parse(r) for r in doc.get("rules") or ()]
                auth.roles[(ns or "default", name)] = rules
            elif kind in ("ClusterRoleBinding", "RoleBinding"):
                ref = doc.get("roleRef") or {}
                bound_ns = (ns or "default") if kind == "RoleBinding" else ""
                subjects = []
                for s in doc.get("subjects") or ():
                    if s.get("kind") == "ServiceAccount":
                        sa_ns = s.get("namespace") or bound_ns or "default"
                        subjects.append(("user", f"{SA_PREFIX}{sa_ns}:{s.get('name')}"))
                    elif s.get("kind") == "User":
                        subjects.append(("user", str(s.get("name"))))
                    elif s.get("kind") == "Group":
                        subjects.append(("group", str(s.get("name"))))
                auth.bindings.append(
                    _Binding(bound_ns, ref.get("kind", ""), ref.get("name", ""), subjects)
                )
        return auth

    @classmethod
    def from_paths(cls, paths: Sequence[Path]) -> Authorizer:
        return cls.from_documents(load_documents(paths))

    def subjects(self) -> list[str]:
        """Every user (ServiceAccount or User) named in a binding."""
        seen: dict[str, None] = {}
        for b in self.bindings:
            for kind, name in b.subjects:
                if kind == "user":
                    seen[name] = None
        return list(seen)

    def allowed(self, req: Request) -> bool:
        if req.user.is_admin:
            return True
        for b in self.bindings:
            if b.namespace and b.namespace != req.namespace:
                continue
            if not any(
                (kind == "user" and name == req.user.name)
                or (kind == "group" and name in req.user.groups)
                for kind, name in b.subjects
            ):
                continue
            if b.role_kind == "ClusterRole":
                rules = self.cluster_roles.get(b.role_name, [])
            else:
                rules = self.roles.get((b.namespace, b.role_name), [])
            if any(rule.allows(req) for rule in rules):
                return True
        return False


def load_documents(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """RBAC documents from files and kustomize directories."""
    docs: list[dict[str, Any]] = []
    for path in paths:
        docs.extend(_load(Path(path), namespace=None))
    return [d for d in docs if d.get("kind") in RBAC_KINDS]


def _read_yaml(path: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(path.read_text()):
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "List":
            docs.extend(d for d in doc.get("items") or () if isinstance(d, dict))
        else:
            docs.append(doc)
    return docs


def _load(path: Path, namespace: str | None) -> list[dict[str, Any]]:
    if path.is_file():
        docs = _read_yaml(path)
    else:
        kustomization = next(
            (
                path / n
                for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")
                if (path / n).is_file()
            ),
            None,
        )
        if kustomization is None:
            docs = [d for f in sorted(path.glob("*.y*ml")) for d in _read_yaml(f)]
        else:
            spec = yaml.safe_load(kustomization.read_text()) or {}
            namespace = spec.get("namespace") or namespace
            docs = []
            for entry in [*(spec.get("resources") or ()), *(spec.get("components") or ())]:
                docs.extend(_load(path / entry, namespace))
    if namespace:
        docs = [_set_namespace(d, namespace) for d in docs]
    return docs


def _set_namespace(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    """What kustomize's ``namespace:`` does to RBAC objects: namespaced objects move,
    and ServiceAccount subjects follow."""
    doc = dict(doc)
    if doc.get("kind") in ("Role", "RoleBinding", "ServiceAccount"):
        doc["metadata"] = {**(doc.get("metadata") or {}), "namespace": namespace}
    if doc.get("kind") in ("RoleBinding", "ClusterRoleBinding"):
        doc["subjects"] = [
            {**s, "namespace": namespace} if s.get("kind") == "ServiceAccount" else s
            for s in doc.get("subjects") or ()
        ]
    return doc
