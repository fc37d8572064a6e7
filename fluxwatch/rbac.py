"""The RBAC a settings file needs, and no more: ``fluxwatch rbac`` prints it as YAML.

Kubernetes cannot grant "Secret metadata only": ``list`` on Secrets returns
every listed Secret with its data, whatever the client asks for. So the one
question is where fluxwatch may list Secrets, and the answer is a choice of
shape (``HelmStorage``) the README explains:

- ``none``: no Secret is listed; ``status.history`` alone says "deployed"
  (``watch.verifyStorage: auto`` falls back to it, ``never`` does not ask);
- ``namespaced``: a Role per namespace that holds Helm storage; fluxwatch can
  read every Secret in those namespaces, and nowhere else;
- ``cluster``: a ClusterRole; fluxwatch can read every Secret in the cluster.

Everything else is named where RBAC can name it: fluxwatch's own Lease
(``get``/``update``) and the providers' ``secretRef`` Secrets (``get``) carry
``resourceNames``. ``create`` cannot (the object has no name yet when it is
authorized), and ``list``/``watch`` of the Flux Leases and HelmReleases are
what the informers do. ``config/rbac`` and ``config/components`` are this
module's output for the shipped settings (a unit test holds them equal).

The people who may approve a refused incident (``fluxwatch approve``) are not
fluxwatch: :func:`approver_manifests` gives the subjects named ``get`` and
``patch`` on fluxwatch's own Lease, by name, and ``create`` on
selfsubjectreviews, and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from fluxwatch.settings import Settings, leader_lease_name

RBAC = "rbac.authorization.k8s.io/v1"
HELM_GROUP = "helm.toolkit.fluxcd.io"


class HelmStorage(StrEnum):
    """Where fluxwatch may list Secrets to read Helm's storage (see the module docstring)."""

    NONE = "none"
    NAMESPACED = "namespaced"
    CLUSTER = "cluster"


class RbacError(ValueError):
    """The requested shape cannot be built from these settings and flags."""


def _rule(group: str, resource: str, verbs: Sequence[str], names: Sequence[str] = ()) -> Any:
    rule: dict[str, Any] = {"apiGroups": [group], "resources": [resource], "verbs": list(verbs)}
    if names:
        rule["resourceNames"] = list(names)
    return rule


def _bound(
    kind: str, name: str, namespace: str | None, rules: list[Any], *subjects: dict[str, str]
) -> list[dict[str, Any]]:
    """A Role (or ClusterRole) and the binding that gives it to ``subjects`` (fluxwatch's
    ServiceAccount, or the approvers)."""
    metadata: dict[str, str] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    role = {"apiVersion": RBAC, "kind": kind, "metadata": metadata, "rules": rules}
    binding = {
        "apiVersion": RBAC,
        "kind": f"{kind}Binding",
        "metadata": dict(metadata),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
        "subjects": list(subjects),
    }
    return [role, binding]


def storage_namespaces(settings: Settings, named: Sequence[str]) -> list[str]:
    """The namespaces that hold Helm storage: as named, else the watched ones."""
    found = sorted(set(named) or set(settings.watch.namespaces))
    if not found:
        raise RbacError(
            "--helm-storage namespaced: name the namespaces that hold Helm storage "
            "(--storage-namespace, repeatable: each HelmRelease's spec.storageNamespace, "
            "else its namespace), or set watch.namespaces"
        )
    return found


def manifests(
    settings: Settings,
    *,
    helm_storage: HelmStorage = HelmStorage.NONE,
    storage_in: Sequence[str] = (),
    service_account: str = "fluxwatch",
) -> list[dict[str, Any]]:
    """The Roles and bindings ``settings`` need, in the order ``kubectl apply`` takes them."""
    own = settings.leader.namespace
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": own}
    out = _bound(
        "ClusterRole",
        "fluxwatch",
        None,
        [
            _rule(HELM_GROUP, "helmreleases", ["get", "list", "watch", "patch"]),
            # core/v1 Events only: the recorder folds repeats with a patch; events.k8s.io
            # is not used, so not granted.
            _rule("", "events", ["create", "patch"]),
        ],
        subject,
    )
    out += _bound(
        "Role",
        "fluxwatch-flux-leases",
        settings.leases.namespace,
        # The lease informer lists and watches; nothing gets one Flux Lease by name.
        [_rule("coordination.k8s.io", "leases", ["list", "watch"])],
        subject,
    )
    own_rules: list[Any] = []
    if settings.leader.enabled:
        lease = leader_lease_name(settings)
        own_rules.append(_rule("coordination.k8s.io", "leases", ["get", "update"], [lease]))
        own_rules.append(_rule("coordination.k8s.io", "leases", ["create"]))
    if own_rules:
        out += _bound("Role", "fluxwatch-leader-election", own, own_rules, subject)
    secrets = sorted(
        {p.secret_ref.name for p in settings.notify.providers if p.secret_ref is not None}
    )
    if secrets:
        rules = [_rule("", "secrets", ["get"], secrets)]
        out += _bound("Role", "fluxwatch-provider-secrets", own, rules, subject)
    recovery = settings.recovery
    if recovery.status_correct and "status-correct" in recovery.strategies:
        out += _bound(
            "ClusterRole",
            "fluxwatch-status-correct",
            None,
            [_rule(HELM_GROUP, "helmreleases/status", ["patch"])],
            subject,
        )
    storage_rules = [_rule("", "secrets", ["list"])]
    if helm_storage is HelmStorage.CLUSTER:
        out += _bound("ClusterRole", "fluxwatch-helm-storage", None, storage_rules, subject)
    elif helm_storage is HelmStorage.NAMESPACED:
        for namespace in storage_namespaces(settings, storage_in):
            out += _bound("Role", "fluxwatch-helm-storage", namespace, storage_rules, subject)
    return out


def approver_manifests(
    settings: Settings, *, users: Sequence[str] = (), groups: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """What ``fluxwatch approve`` needs, given to ``users`` and ``groups``: read and patch
    the leader Lease (one annotation per approval; by name, so no other Lease), and ask
    who they are. Kubernetes' default ``system:basic-user`` binding already lets every
    authenticated user create selfsubjectreviews; the grant is repeated for clusters
    that removed it."""
    if not settings.leader.enabled:
        raise RbacError(
            "approvers: leader.enabled is false, and approvals live on the leader Lease"
        )
    group = "rbac.authorization.k8s.io"
    subjects = [{"apiGroup": group, "kind": "User", "name": u} for u in users]
    subjects += [{"apiGroup": group, "kind": "Group", "name": g} for g in groups]
    if not subjects:
        raise RbacError("approvers: name at least one user or group")
    lease = leader_lease_name(settings)
    lease_rules = [_rule("coordination.k8s.io", "leases", ["get", "patch"], [lease])]
    out = _bound("Role", "fluxwatch-approver", settings.leader.namespace, lease_rules, *subjects)
    whoami = [_rule("authentication.k8s.io", "selfsubjectreviews", ["create"])]
    return out + _bound("ClusterRole", "fluxwatch-approver", None, whoami, *subjects)


def exposure(helm_storage: HelmStorage, namespaces: Sequence[str] = ()) -> str:
    """What the shape lets fluxwatch read of Secrets, in one sentence for people."""
    if helm_storage is HelmStorage.CLUSTER:
        return "every Secret in the cluster, with its data (list cannot be limited to metadata)"
    if helm_storage is HelmStorage.NAMESPACED:
        where = ", ".join(namespaces)
        return f"every Secret, with its data, in the namespaces {where}; no Secret elsewhere"
    return "no Helm storage Secret: status.history alone says whether a release is deployed"


def warnings(settings: Settings, helm_storage: HelmStorage) -> list[str]:
    """Settings that this shape leaves without the access they ask for."""
    verify = settings.watch.verify_storage
    if helm_storage is HelmStorage.NONE and verify == "always":
        return [
            "watch.verifyStorage: always with --helm-storage none: every storage check "
            "is refused, so fluxwatch never acts; use auto, or grant a storage shape"
        ]
    if helm_storage is not HelmStorage.NONE and verify == "never":
        return [
            f"watch.verifyStorage: never reads no Secret: --helm-storage {helm_storage} "
            "grants access nothing uses"
        ]
    return []
