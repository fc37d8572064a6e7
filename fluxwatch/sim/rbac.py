"""RBAC as kube-apiserver evaluates it, read from the cluster's own objects.

Roles, ClusterRoles, RoleBindings and ClusterRoleBindings are stored objects like
any other: the ``Authorizer`` indexes them from the ``Store`` and re-indexes when
one of those tables changes, so a binding created through the API takes effect on
the next request and deleting it revokes at once. A request is allowed when one
rule of one role bound to the user (by name, group or ServiceAccount) matches its
verb, API group, resource[/subresource] and name, or its path for non-resource
URLs; members of ``system:masters`` are allowed everything, as the real server's
privileged-group authorizer does before RBAC is asked.

``bootstrap`` creates the default roles a fresh cluster has (cluster-admin, admin,
edit, view, system:discovery, system:basic-user, system:public-info-viewer) and
their bindings. ``load_documents`` still reads the YAML fluxwatch ships (plain
files, or kustomize directories whose ``resources``, ``components`` and
``namespace`` are followed) so ``ApiServer(rbac_files=...)`` can create them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fluxwatch.sim.store import ApiError, Store, _Table

ADMIN_USER = "system:admin"
ADMIN_GROUP = "system:masters"
ANONYMOUS_USER = "system:anonymous"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
RBAC_GROUP = "rbac.authorization.k8s.io"
SA_PREFIX = "system:serviceaccount:"
_TABLES = (
    "roles.rbac.authorization.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
)


@dataclass(frozen=True, slots=True)
class User:
    name: str
    groups: tuple[str, ...] = (AUTHENTICATED,)
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups

    def info(self) -> dict[str, Any]:
        """authentication.k8s.io/v1 UserInfo, as SelfSubjectReview reports it."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra}
        return out


ANONYMOUS = User(ANONYMOUS_USER, (UNAUTHENTICATED,))


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of ``system:serviceaccount:<ns>:<name>``, else None."""
    if not username.startswith(SA_PREFIX):
        return None
    ns, sep, name = username[len(SA_PREFIX) :].partition(":")
    if not sep or not ns or not name or ":" in name:
        return None
    return ns, name


def user_for_subject(subject: str) -> User:
    """The user a token stands for: ``system:serviceaccount:<ns>:<name>`` or a plain user."""
    sa = split_service_account(subject)
    if sa is not None:
        return User(subject, (*service_account_groups(sa[0]), AUTHENTICATED))
    return User(subject)


def token_for_subject(subject: str) -> str:
    """A deterministic token per subject, so a kubeconfig written once stays valid."""
    return "sim-" + hashlib.sha256(f"fluxwatch-sim:{subject}".encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class Request:
    """The authorization attributes of one API request; ``path`` is set (and the
    resource fields empty) for a non-resource request such as ``GET /apis``."""

    user: User
    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return not self.path

    def forbidden_message(self, qualified_resource: str) -> str:
        """The message of the real server's 403, word for word."""
        if not self.is_resource:
            return f'forbidden: User "{self.user.name}" cannot {self.verb} path "{self.path}"'
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f'in the namespace "{self.namespace}"' if self.namespace else "at the cluster scope"
        reason = (
            f'User "{self.user.name}" cannot {self.verb} resource "{resource}" '
            f'in API group "{self.group}" {where}'
        )
        target = f'{qualified_resource} "{self.name}"' if self.name else qualified_resource
        return f"{target} is forbidden: {reason}"

    def forbidden(self) -> ApiError:
        """The 403 Status for this request (``Forbidden`` with the real details)."""
        qualified_resource = f"{self.resource}.{self.group}" if self.group else self.resource
        # StatusDetails omits empty fields: a non-resource 403 has no details at all.
        details = {
            k: v
            for k, v in (("name", self.name), ("group", self.group), ("kind", self.resource))
            if v
        }
        return ApiError(403, "Forbidden", self.forbidden_message(qualified_resource), details)


@dataclass(frozen=True, slots=True)
class Rule:
    """One PolicyRule; the tuples keep the order they were written in."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> Rule:
        if not isinstance(raw, dict):
            return cls(())

        def strings(key: str) -> tuple[str, ...]:
            value = raw.get(key) or ()
            return tuple(str(v) for v in value) if isinstance(value, list) else ()

        return cls(
            strings("verbs"),
            strings("apiGroups"),
            strings("resources"),
            strings("resourceNames"),
            strings("nonResourceURLs"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verbs": list(self.verbs)}
        if self.api_groups:
            out["apiGroups"] = list(self.api_groups)
        if self.resources:
            out["resources"] = list(self.resources)
        if self.resource_names:
            out["resourceNames"] = list(self.resource_names)
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        return out

    def compact(self) -> str:
        """rbacv1helpers.CompactString: how an escalation error lists a missing rule."""

        def q(values: tuple[str, ...]) -> str:
            return "[" + " ".join(f'"{v}"' for v in values) + "]"

        parts = []
        for label, values in (
            ("APIGroups", self.api_groups),
            ("Resources", self.resources),
            ("NonResourceURLs", self.non_resource_urls),
            ("ResourceNames", self.resource_names),
            ("Verbs", self.verbs),
        ):
            if values:
                parts.append(f"{label}:{q(values)}")
        return "{" + ", ".join(parts) + "}"

    def allows(self, req: Request) -> bool:
        if "*" not in self.verbs and req.verb not in self.verbs:
            return False
        if not req.is_resource:
            return any(_url_matches(url, req.path) for url in self.non_resource_urls)
        if "*" not in self.api_groups and req.group not in self.api_groups:
            return False
        if not self._resource_matches(req.resource, req.subresource):
            return False
        return not self.resource_names or req.name in self.resource_names

    def _resource_matches(self, resource: str, subresource: str) -> bool:
        combined = f"{resource}/{subresource}" if subresource else resource
        for ruled in self.resources:
            if ruled in ("*", combined):
                return True
            if subresource and ruled == f"*/{subresource}":
                return True
        return False


def _url_matches(ruled: str, path: str) -> bool:
    if ruled in ("*", path):
        return True
    return ruled.endswith("*") and path.startswith(ruled.rstrip("*"))


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str  # User | Group | ServiceAccount
    name: str
    namespace: str = ""

    def applies_to(self, user: User, binding_namespace: str) -> bool:
        if self.kind == "User":
            return user.name == self.name
        if self.kind == "Group":
            return self.name in user.groups
        if self.kind == "ServiceAccount":
            # An unqualified ServiceAccount is the one of the binding's namespace.
            ns = self.namespace or binding_namespace
            return bool(ns) and user.name == f"{SA_PREFIX}{ns}:{self.name}"
        return False

    def describe(self, binding_namespace: str) -> str:
        if self.kind == "ServiceAccount":
            return f'{self.kind} "{self.name}/{self.namespace or binding_namespace}"'
        return f'{self.kind} "{self.name}"'


@dataclass(frozen=True, slots=True)
class Binding:
    name: str
    namespace: str  # "" for a ClusterRoleBinding
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Binding:
        md = obj.get("metadata") or {}
        ref = obj.get("roleRef") or {}
        subjects = tuple(
            Subject(str(s.get("kind", "")), str(s.get("name", "")), str(s.get("namespace") or ""))
            for s in obj.get("subjects") or ()
            if isinstance(s, dict)
        )
        ns = str(md.get("namespace") or "") if obj.get("kind") == "RoleBinding" else ""
        return cls(
            str(md.get("name", "")),
            ns,
            str(ref.get("kind", "")),
            str(ref.get("name", "")),
            subjects,
        )

    def subject_for(self, user: User) -> Subject | None:
        return next((s for s in self.subjects if s.applies_to(user, self.namespace)), None)

    def describe(self, subject: Subject) -> str:
        """The source a rule came from, as the real ``reason`` of an allowed review names it."""
        if self.namespace:
            return (
                f'RoleBinding "{self.name}/{self.namespace}" of {self.role_kind} '
                f'"{self.role_name}" to {subject.describe(self.namespace)}'
            )
        return (
            f'ClusterRoleBinding "{self.name}" of {self.role_kind} "{self.role_name}" '
            f"to {subject.describe('')}"
        )


@dataclass
class _Index:
    cluster_roles: dict[str, list[Rule]] = field(default_factory=dict)
    roles: dict[tuple[str, str], list[Rule]] = field(default_factory=dict)
    cluster_bindings: list[Binding] = field(default_factory=list)
    bindings_by_ns: dict[str, list[Binding]] = field(default_factory=dict)


def _selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector against labels; an empty selector matches nothing here,
    as the aggregation controller ignores it."""
    if not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in expressions:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _aggregate(store: Store, cluster_roles: _Table) -> bool:
    """Set each aggregated ClusterRole's rules to the rules of the ClusterRoles its
    selectors match, in name order, without repeats. True when one was changed."""
    changed = False
    by_name = sorted(cluster_roles.objs.items())
    for name, obj in by_name:
        rule = obj.get("aggregationRule")
        if not isinstance(rule, dict):
            continue
        selectors = rule.get("clusterRoleSelectors") or []
        rules: list[Any] = []
        for other_name, other in by_name:
            if other_name == name:
                continue
            labels = other["metadata"].get("labels") or {}
            if any(_selector_matches(sel, labels) for sel in selectors):
                rules.extend(r for r in other.get("rules") or () if r not in rules)
        if rules != (obj.get("rules") or []):
            store.update(cluster_roles.res, {**obj, "rules": rules})
            changed = True
    return changed


def _signature(table: _Table) -> tuple[int, int]:
    """Changes whenever the table is written: the version of its last event and its size."""
    return (table.events[-1].rv if table.events else -1, len(table.objs))


class Authorizer:
    """The RBAC authorizer of one ``Store``: ``decide`` answers one request."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._seen: tuple[tuple[int, int], ...] = ()
        self._index = _Index()

    def _current(self) -> _Index:
        tables = [self.store.table(key) for key in _TABLES]
        seen = tuple(_signature(t) for t in tables)
        if seen != self._seen:
            # Aggregated ClusterRoles are brought up to date first, as the clusterrole-
            # aggregation controller would have done by the time a request is authorized.
            # Each pass may feed one more level of nesting; five are plenty.
            for _ in range(5):
                if not _aggregate(self.store, tables[1]):
                    break
            seen = tuple(_signature(t) for t in tables)
            self._index = self._build(*tables)
            self._seen = seen
        return self._index

    def sync(self) -> None:
        """Index the store now (and fill aggregated ClusterRoles' rules)."""
        self._current()

    @staticmethod
    def _build(roles: _Table, cluster_roles: _Table, rbs: _Table, crbs: _Table) -> _Index:
        index = _Index()
        for obj in cluster_roles.objs.values():
            rules = [Rule.parse(r) for r in obj.get("rules") or ()]
            index.cluster_roles[obj["metadata"]["name"]] = rules
        for obj in roles.objs.values():
            md = obj["metadata"]
            index.roles[(md["namespace"], md["name"])] = [
                Rule.parse(r) for r in obj.get("rules") or ()
            ]
        index.cluster_bindings = [Binding.parse(o) for o in crbs.objs.values()]
        for obj in rbs.objs.values():
            b = Binding.parse(obj)
            index.bindings_by_ns.setdefault(b.namespace, []).append(b)
        return index

    def visit(self, user: User, namespace: str) -> Iterator[tuple[Binding, Subject, Rule]]:
        """Every rule that applies to ``user`` in ``namespace`` ("" for cluster scope),
        with the binding and subject it came from: ClusterRoleBindings first, then the
        namespace's RoleBindings, as the real rule resolver visits them."""
        index = self._current()
        scoped = index.bindings_by_ns.get(namespace, []) if namespace else []
        for b in (*index.cluster_bindings, *scoped):
            subject = b.subject_for(user)
            if subject is None:
                continue
            if b.role_kind == "ClusterRole":
                rules = index.cluster_roles.get(b.role_name, [])
            elif b.role_kind == "Role" and b.namespace:
                rules = index.roles.get((b.namespace, b.role_name), [])
            else:
                rules = []
            for rule in rules:
                yield b, subject, rule

    def rules_for(self, user: User, namespace: str) -> list[Rule]:
        return [rule for _, _, rule in self.visit(user, namespace)]

    def decide(self, req: Request) -> tuple[bool, str]:
        """(allowed, reason): the reason names the binding that allowed, as RBAC's does;
        a member of system:masters is allowed with no reason, as by the privileged-group
        authorizer that runs before RBAC."""
        if req.user.is_admin:
            return True, ""
        for binding, subject, rule in self.visit(req.user, req.namespace):
            if rule.allows(req):
                return True, f"RBAC: allowed by {binding.describe(subject)}"
        return False, ""

    def allowed(self, req: Request) -> bool:
        return self.decide(req)[0]

    def role_rules(self, kind: str, name: str, namespace: str) -> list[Rule] | None:
        """The rules a roleRef points at; None when the role does not exist."""
        index = self._current()
        if kind == "ClusterRole":
            return index.cluster_roles.get(name)
        if kind == "Role":
            return index.roles.get((namespace, name))
        return None

    def missing_rules(self, user: User, namespace: str, wanted: Iterable[Rule]) -> list[Rule]:
        """The parts of ``wanted`` that ``user`` does not hold in ``namespace``, one
        verb, resource and name at a time (validation.Covers), merged back per
        group/resource/name for the message."""
        held = self.rules_for(user, namespace)
        missing: dict[tuple[str, str, str, str], list[str]] = {}
        for rule in wanted:
            for verb in rule.verbs:
                for req, key in _atoms(user, verb, rule):
                    if not any(_covers(h, req) for h in held):
                        missing.setdefault(key, [])
                        if verb not in missing[key]:
                            missing[key].append(verb)
        out = []
        for (group, resource, name, url), verbs in missing.items():
            if url:
                out.append(Rule(tuple(verbs), non_resource_urls=(url,)))
            else:
                out.append(Rule(tuple(verbs), (group,), (resource,), (name,) if name else ()))
        return out


def _atoms(
    user: User, verb: str, rule: Rule
) -> Iterator[tuple[Request, tuple[str, str, str, str]]]:
    for url in rule.non_resource_urls:
        yield Request(user, verb, path=url), ("", "", "", url)
    for group in rule.api_groups:
        for resource in rule.resources:
            for name in rule.resource_names or ("",):
                yield (
                    Request(user, verb, group, resource, name=name),
                    (group, resource, name, ""),
                )


def _covers(owner: Rule, atom: Request) -> bool:
    """Whether ``owner`` grants all of ``atom``, where the atom's fields may themselves
    be wildcards (a role granting ``*`` is covered only by ``*``)."""
    if "*" not in owner.verbs and atom.verb not in owner.verbs:
        return False
    if not atom.is_resource:
        return any(
            u == "*" or u == atom.path or (u.endswith("*") and atom.path.startswith(u.rstrip("*")))
            for u in owner.non_resource_urls
        )
    if "*" not in owner.api_groups and atom.group not in owner.api_groups:
        return False
    sub = atom.resource.partition("/")[2]
    if not any(r in ("*", atom.resource) or (sub and r == f"*/{sub}") for r in owner.resources):
        return False
    if owner.resource_names:
        return bool(atom.name) and atom.name in owner.resource_names
    return True


def escalation_error(
    user: User, missing: list[Rule], qualified_resource: str, name: str
) -> ApiError:
    """The 403 a create or update of a role or binding gets when it would grant more
    than its author holds."""
    lines = sorted(rule.compact() for rule in missing)
    groups = "[" + " ".join(f'"{g}"' for g in user.groups) + "]"
    message = (
        f'{qualified_resource} "{name}" is forbidden: user "{user.name}" (groups={groups}) '
        "is attempting to grant RBAC permissions not currently held:\n" + "\n".join(lines)
    )
    group = qualified_resource.partition(".")[2]
    kind = qualified_resource.partition(".")[0]
    return ApiError(403, "Forbidden", message, {"name": name, "group": group, "kind": kind})


def check_escalation(
    authorizer: Authorizer, user: User, table_key: str, obj: dict[str, Any], namespace: str
) -> None:
    """Refuse a role or binding that would grant ``user`` more than it holds, as the
    real RBAC storage does: a role needs its rules covered (or the ``escalate`` verb),
    a binding its role's rules covered (or the ``bind`` verb on that role)."""
    if user.is_admin or table_key not in _ESCALATION_CHECKED:
        return
    plural = table_key.partition(".")[0]
    name = str((obj.get("metadata") or {}).get("name") or "")
    scope = namespace if plural in ("roles", "rolebindings") else ""
    if plural in ("roles", "clusterroles"):
        if authorizer.allowed(Request(user, "escalate", RBAC_GROUP, plural, "", scope, name)):
            return
        wanted = [Rule.parse(r) for r in obj.get("rules") or ()]
    else:
        ref = obj.get("roleRef") or {}
        ref_kind, ref_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        ref_plural = "clusterroles" if ref_kind == "ClusterRole" else "roles"
        bind = Request(user, "bind", RBAC_GROUP, ref_plural, "", scope, ref_name)
        if authorizer.allowed(bind):
            return
        rules = authorizer.role_rules(ref_kind, ref_name, scope)
        if rules is None:
            raise ApiError(
                403,
                "Forbidden",
                f'{table_key} "{name}" is forbidden: {ref_plural}.{RBAC_GROUP} "{ref_name}" '
                "not found",
                {"name": name, "group": RBAC_GROUP, "kind": plural},
            )
        wanted = rules
    missing = authorizer.missing_rules(user, scope, wanted)
    if missing:
        raise escalation_error(user, missing, table_key, name)


_ESCALATION_CHECKED = frozenset(_TABLES)


# ---- the default roles and bindings of a fresh cluster ---------------------------------

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_VIEW_CORE = [
    "configmaps",
    "endpoints",
    "persistentvolumeclaims",
    "persistentvolumeclaims/status",
    "pods",
    "pods/log",
    "pods/status",
    "replicationcontrollers",
    "replicationcontrollers/scale",
    "replicationcontrollers/status",
    "resourcequotas",
    "resourcequotas/status",
    "serviceaccounts",
    "services",
    "services/status",
    "bindings",
    "events",
    "limitranges",
    "namespaces/status",
]
_VIEW_GROUPS: list[tuple[str, list[str]]] = [
    (
        "apps",
        [
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ],
    ),
    ("autoscaling", ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    ("batch", ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    ("policy", ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    ("networking.k8s.io", ["ingresses", "ingresses/status", "networkpolicies"]),
    ("discovery.k8s.io", ["endpointslices"]),
    ("coordination.k8s.io", ["leases"]),
    ("events.k8s.io", ["events"]),
]
_WRITE_CORE = [
    "configmaps",
    "endpoints",
    "persistentvolumeclaims",
    "pods",
    "replicationcontrollers",
    "replicationcontrollers/scale",
    "secrets",
    "serviceaccounts",
    "services",
]


def _view_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {"apiGroups": [""], "resources": sorted(_VIEW_CORE), "verbs": _READ},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": _READ},
    ]
    for group, resources in _VIEW_GROUPS:
        rules.append({"apiGroups": [group], "resources": resources, "verbs": _READ})
    return rules


def _edit_only_rules() -> list[dict[str, Any]]:
    """What edit adds to view (view reaches edit through its aggregate-to-edit label)."""
    rules: list[dict[str, Any]] = [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": _READ},
        {"apiGroups": [""], "resources": _WRITE_CORE, "verbs": _WRITE},
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
    ]
    for group, resources in _VIEW_GROUPS:
        writable = [r for r in resources if not r.endswith("/status")]
        rules.append({"apiGroups": [group], "resources": writable, "verbs": _WRITE})
    return rules


def _admin_only_rules() -> list[dict[str, Any]]:
    return [
        {
            "apiGroups": [RBAC_GROUP],
            "resources": ["rolebindings", "roles"],
            "verbs": _READ + _WRITE,
        },
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["localsubjectaccessreviews"],
            "verbs": ["create"],
        },
    ]


_DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]
_PUBLIC_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def bootstrap_objects() -> list[dict[str, Any]]:
    """The ClusterRoles and ClusterRoleBindings every fresh cluster has, as far as
    they matter here."""
    meta_labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    annotations = {"rbac.authorization.kubernetes.io/autoupdate": "true"}

    def role(
        name: str, rules: list[dict[str, Any]], *, to: str = "", of: str = ""
    ) -> dict[str, Any]:
        """``to``: the aggregated role this one feeds (its label); ``of``: the label
        this one aggregates, whose rules the aggregation controller fills in."""
        labels = {**meta_labels, **({f"{_AGGREGATE_TO}{to}": "true"} if to else {})}
        obj: dict[str, Any] = {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "rules": rules,
        }
        if of:
            selector = {"matchLabels": {f"{_AGGREGATE_TO}{of}": "true"}}
            obj["aggregationRule"] = {"clusterRoleSelectors": [selector]}
        return obj

    def binding(name: str, *groups: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": meta_labels, "annotations": annotations},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
        }

    return [
        role(
            "cluster-admin",
            [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ],
        ),
        role("admin", [], of="admin"),
        role("edit", [], to="admin", of="edit"),
        role("view", [], to="edit", of="view"),
        role("system:aggregate-to-admin", _admin_only_rules(), to="admin"),
        role("system:aggregate-to-edit", _edit_only_rules(), to="edit"),
        role("system:aggregate-to-view", _view_rules(), to="view"),
        role("system:discovery", [{"nonResourceURLs": _DISCOVERY_URLS, "verbs": ["get"]}]),
        role("system:public-info-viewer", [{"nonResourceURLs": _PUBLIC_URLS, "verbs": ["get"]}]),
        role(
            "system:basic-user",
            [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
            ],
        ),
        binding("cluster-admin", ADMIN_GROUP),
        binding("system:discovery", AUTHENTICATED),
        binding("system:basic-user", AUTHENTICATED),
        binding("system:public-info-viewer", AUTHENTICATED, UNAUTHENTICATED),
    ]


_AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"
_PLURALS = {
    "ClusterRole": "clusterroles.rbac.authorization.k8s.io",
    "Role": "roles.rbac.authorization.k8s.io",
    "ClusterRoleBinding": "clusterrolebindings.rbac.authorization.k8s.io",
    "RoleBinding": "rolebindings.rbac.authorization.k8s.io",
    "ServiceAccount": "serviceaccounts",
}


def bootstrap(store: Store) -> None:
    """Create the default roles and bindings that are missing (a store shared by two
    servers is bootstrapped once)."""
    for obj in bootstrap_objects():
        table = store.table(_PLURALS[obj["kind"]])
        if obj["metadata"]["name"] not in table.objs:
            store.create(table.res, obj)


def create_documents(store: Store, docs: Iterable[dict[str, Any]]) -> None:
    """Put RBAC documents (and ServiceAccounts) into the store, as ``kubectl apply``
    would: an object that exists already is replaced."""
    for doc in docs:
        key = _PLURALS.get(str(doc.get("kind")))
        if key is None:
            continue
        table = store.table(key)
        md = doc.get("metadata") or {}
        ns = (md.get("namespace") or "default") if table.res.namespaced else None
        try:
            store.create(table.res, doc, ns)
        except ApiError as err:
            if err.code != 409:
                raise
            current = store.get(table.res, ns, md["name"])
            replaced = {**doc, "metadata": {**md, "namespace": ns}}
            replaced["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            store.update(table.res, replaced)


def binding_subjects(docs: Iterable[dict[str, Any]]) -> list[str]:
    """The users and ServiceAccounts (``system:serviceaccount:<ns>:<name>``) the bindings
    among ``docs`` name, in order, once each: whom a sim user may want a token for."""
    found: dict[str, None] = {}
    for doc in docs:
        if doc.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        binding = Binding.parse(doc)
        for subject in binding.subjects:
            if subject.kind == "User":
                found[subject.name] = None
            elif subject.kind == "ServiceAccount":
                ns = subject.namespace or binding.namespace or "default"
                found[f"{SA_PREFIX}{ns}:{subject.name}"] = None
    return list(found)


def load_documents(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """RBAC documents and ServiceAccounts from files and kustomize directories."""
    docs: list[dict[str, Any]] = []
    for path in paths:
        docs.extend(_load(Path(path), namespace=None))
    return [d for d in docs if d.get("kind") in _PLURALS]


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
