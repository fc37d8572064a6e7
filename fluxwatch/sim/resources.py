"""The resources the embedded cluster serves, declared in one table.

Adding a resource is one line in ``RESOURCES``; discovery, routing, RBAC and
storage all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass


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


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(
        "helm.toolkit.fluxcd.io",
        "v2",
        "helmreleases",
        "HelmRelease",
        True,
        ("hr",),
        "helmrelease",
        status_subresource=True,
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, (), "lease"),
    ResourceType("", "v1", "secrets", "Secret", True, (), "secret"),
    ResourceType("", "v1", "events", "Event", True, ("ev",), "event"),
    ResourceType(
        "", "v1", "namespaces", "Namespace", False, ("ns",), "namespace", status_subresource=True
    ),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",), "configmap"),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, ("ev",), "event"),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        ("deploy",),
        "deployment",
        status_subresource=True,
    ),
)

BY_KEY: dict[str, ResourceType] = {r.key: r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    for r in RESOURCES:
        if r.group == group and r.version == version and r.plural == plural:
            return r
    return None
