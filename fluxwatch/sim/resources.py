"""The resources the embedded cluster serves: the built-in kinds in one table, and a
``Registry`` that CustomResourceDefinitions add to and remove from at run time.

Discovery, routing, RBAC, OpenAPI and storage all read the registry of their
server; ``BUILTIN`` is what a fresh cluster serves before any CRD is applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    singular: str = ""
    status_subresource: bool = False
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # Subresources besides status that the server answers (serviceaccounts/token).
    subresources: tuple[str, ...] = ()
    # True for a kind a CustomResourceDefinition defines.
    custom: bool = False
    # The storage table shared by every served version of one group and resource (a
    # CRD's versions, core/v1 and events.k8s.io/v1 Events): ``<plural>.<group>``.
    storage: str = ""
    # The version objects are stored at; other versions are converted on the way.
    storage_version: str = ""
    # additionalPrinterColumns of a CRD version, as written in the CRD.
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def key(self) -> str:
        """Unique across groups, e.g. ``helmreleases.helm.toolkit.fluxcd.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def table_key(self) -> str:
        """The storage table this version reads and writes."""
        return self.storage or self.key


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool,
    short_names: tuple[str, ...] = (),
    *,
    status: bool = False,
    categories: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
    subresources: tuple[str, ...] = (),
    storage: str = "",
) -> ResourceType:
    return ResourceType(
        group,
        version,
        plural,
        kind,
        namespaced,
        short_names,
        kind.lower(),
        status_subresource=status,
        categories=categories,
        verbs=verbs,
        subresources=subresources,
        storage=storage,
    )


_CREATE_ONLY = ("create",)
_ALL = ("all",)

BUILTIN: tuple[ResourceType, ...] = (
    _builtin("", "v1", "namespaces", "Namespace", False, ("ns",), status=True),
    _builtin("", "v1", "secrets", "Secret", True),
    _builtin("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",), subresources=("token",)),
    _builtin("", "v1", "events", "Event", True, ("ev",)),
    _builtin("", "v1", "services", "Service", True, ("svc",), status=True, categories=_ALL),
    _builtin("", "v1", "resourcequotas", "ResourceQuota", True, ("quota",), status=True),
    _builtin("events.k8s.io", "v1", "events", "Event", True, ("ev",), storage="events"),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease", True),
    _builtin(
        "apps", "v1", "deployments", "Deployment", True, ("deploy",), status=True, categories=_ALL
    ),
    _builtin(
        "policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), status=True
    ),
    _builtin("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    _builtin("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _builtin(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        verbs=_CREATE_ONLY,
    ),
    _builtin(
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        False,
        verbs=_CREATE_ONLY,
    ),
    _builtin(
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        False,
        verbs=_CREATE_ONLY,
    ),
    _builtin(
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        False,
        verbs=_CREATE_ONLY,
    ),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
        status=True,
        categories=("api-extensions",),
    ),
)

# Kinds that are never stored: a POST is answered and forgotten.
VIRTUAL: frozenset[str] = frozenset(
    {
        "selfsubjectaccessreviews.authorization.k8s.io",
        "selfsubjectrulesreviews.authorization.k8s.io",
        "subjectaccessreviews.authorization.k8s.io",
        "selfsubjectreviews.authentication.k8s.io",
    }
)


class Registry:
    """The served resources of one cluster; CRDs add and remove theirs while it runs.

    ``generation`` counts changes, so that discovery and OpenAPI documents built from
    the registry know when to build again.
    """

    def __init__(self, builtin: tuple[ResourceType, ...] = BUILTIN) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_key: dict[str, ResourceType] = {}
        self._listeners: list[Callable[[], None]] = []
        self.generation = 0
        for res in builtin:
            self.add(res)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_path.values()))

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def get(self, key: str) -> ResourceType | None:
        """By ``ResourceType.key`` (``<plural>.<group>`` at its first served version), or
        by ``<plural>.<version>.<group>`` for one version."""
        return self._by_key.get(key)

    def versions(self, group: str, plural: str) -> list[ResourceType]:
        return [r for r in self._by_path.values() if r.group == group and r.plural == plural]

    def add(self, res: ResourceType) -> None:
        self._by_path[(res.group, res.version, res.plural)] = res
        self._by_key.setdefault(res.key, res)
        self._by_key[f"{res.plural}.{res.version}.{res.group}"] = res
        self._changed()

    def remove(self, group: str, plural: str) -> None:
        gone = self.versions(group, plural)
        for res in gone:
            del self._by_path[(res.group, res.version, res.plural)]
            self._by_key.pop(f"{res.plural}.{res.version}.{res.group}", None)
            if self._by_key.get(res.key) is res:
                del self._by_key[res.key]
        remaining = self.versions(group, plural)
        if remaining:
            self._by_key.setdefault(remaining[0].key, remaining[0])
        if gone:
            self._changed()

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        self.generation += 1
        for listener in self._listeners:
            listener()


# Until the store serves CRDs from their definitions, HelmRelease v2 is listed here.
HELMRELEASE = ResourceType(
    "helm.toolkit.fluxcd.io",
    "v2",
    "helmreleases",
    "HelmRelease",
    True,
    ("hr",),
    "helmrelease",
    status_subresource=True,
    categories=("all", "flux"),
    custom=True,
)
RESOURCES: tuple[ResourceType, ...] = (HELMRELEASE, *BUILTIN)
BY_KEY: dict[str, ResourceType] = {r.key: r for r in RESOURCES if not r.storage}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """A built-in kind (CRD-defined kinds are in the server's ``Registry``)."""
    for r in RESOURCES:
        if r.group == group and r.version == version and r.plural == plural:
            return r
    return None
