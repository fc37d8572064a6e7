"""Authentication and RBAC from rbac_files: bearer tokens, anonymous requests, 401, and
403s decided by Roles and ClusterRoles bound per namespace or cluster-wide, worded like
the real server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fluxwatch.sim.apiserver import ApiServer
from tests.conftest import helmrelease

MakeServer = Callable[..., Awaitable[ApiServer]]
SA = "system:serviceaccount:fluxwatch-system:fluxwatch"
HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
HRS = "/apis/helm.toolkit.fluxcd.io/v2/helmreleases"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
MERGE = {"Content-Type": "application/merge-patch+json"}

RBAC_YAML = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: fluxwatch
rules:
  - apiGroups: ["helm.toolkit.fluxcd.io"]
    resources: ["helmreleases"]
    verbs: ["get", "list", "watch", "patch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: fluxwatch
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: fluxwatch}
subjects:
  - kind: ServiceAccount
    name: fluxwatch
    namespace: fluxwatch-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: flux-leases
  namespace: flux-system
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: flux-leases
  namespace: flux-system
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: flux-leases}
subjects:
  - kind: ServiceAccount
    name: fluxwatch
    namespace: fluxwatch-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: secret-reader
rules:
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get"]
    resourceNames: ["allowed"]
  - apiGroups: ["*"]
    resources: ["*/status"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: secret-reader
  namespace: apps
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secret-reader}
subjects:
  - kind: User
    name: alice
"""


@pytest.fixture
async def rbac_api(make_apiserver: MakeServer, tmp_path: Path) -> ApiServer:
    path = tmp_path / "rbac.yaml"
    path.write_text(RBAC_YAML)
    api = await make_apiserver(rbac_files=[path])
    api.store.create(HR_KEY, helmrelease("podinfo", "apps"))
    api.store.create("leases.coordination.k8s.io", {"metadata": {"name": "l", "namespace": "apps"}})
    return api


async def request(
    api: ApiServer, token: str | None, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession(base_url=api.url) as http,
        http.request(method, path, headers=headers, **kwargs) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def test_a_request_without_a_token_is_anonymous_and_forbidden(rbac_api: ApiServer) -> None:
    code, status = await request(rbac_api, None, "GET", HRS)
    assert code == 403
    assert status["message"] == (
        'helmreleases.helm.toolkit.fluxcd.io is forbidden: User "system:anonymous" cannot '
        'list resource "helmreleases" in API group "helm.toolkit.fluxcd.io" at the cluster scope'
    )


async def test_an_unknown_token_is_401(rbac_api: ApiServer) -> None:
    code, status = await request(rbac_api, "not-a-token", "GET", HRS)
    assert code == 401
    assert status["reason"] == "Unauthorized"


async def test_discovery_needs_authentication_but_no_rule_of_its_own(rbac_api: ApiServer) -> None:
    """system:discovery is bound to system:authenticated only, as in a default cluster."""
    nobody = rbac_api.token_for("nobody")
    assert (await request(rbac_api, nobody, "GET", "/apis"))[0] == 200
    code, status = await request(rbac_api, None, "GET", "/apis")
    assert code == 403
    assert status["message"] == 'forbidden: User "system:anonymous" cannot get path "/apis"'
    assert status["details"] == {}


async def test_tokens_are_deterministic_per_subject(rbac_api: ApiServer) -> None:
    assert rbac_api.token_for(SA) == rbac_api.token_for(SA)
    assert rbac_api.token_for(SA) != rbac_api.token_for("alice")


async def test_cluster_role_binding_allows_cluster_wide_list_and_patch(
    rbac_api: ApiServer,
) -> None:
    token = rbac_api.token_for(SA)
    code, listed = await request(rbac_api, token, "GET", HRS)
    assert code == 200 and len(listed["items"]) == 1
    code, _ = await request(
        rbac_api,
        token,
        "PATCH",
        "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases/podinfo",
        headers=MERGE,
        json={"spec": {"suspend": True}},
    )
    assert code == 200


async def test_a_verb_the_role_lacks_is_403_with_the_real_message(rbac_api: ApiServer) -> None:
    code, status = await request(
        rbac_api,
        rbac_api.token_for(SA),
        "DELETE",
        "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases/podinfo",
    )
    assert code == 403
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'helmreleases.helm.toolkit.fluxcd.io "podinfo" is forbidden: User '
        f'"{SA}" cannot delete resource "helmreleases" in API group "helm.toolkit.fluxcd.io" '
        'in the namespace "apps"'
    )
    assert status["details"] == {
        "name": "podinfo",
        "group": "helm.toolkit.fluxcd.io",
        "kind": "helmreleases",
    }
    assert rbac_api.store.get(HR_KEY, "apps", "podinfo"), "nothing was deleted"


async def test_the_status_subresource_needs_its_own_rule(rbac_api: ApiServer) -> None:
    code, status = await request(
        rbac_api,
        rbac_api.token_for(SA),
        "PATCH",
        "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases/podinfo/status",
        headers=MERGE,
        json={"status": {}},
    )
    assert code == 403
    assert status["message"] == (
        'helmreleases.helm.toolkit.fluxcd.io "podinfo" is forbidden: User '
        f'"{SA}" cannot patch resource "helmreleases/status" in API group '
        '"helm.toolkit.fluxcd.io" in the namespace "apps"'
    )


async def test_a_role_binding_grants_in_its_namespace_only(rbac_api: ApiServer) -> None:
    token = rbac_api.token_for(SA)
    code, _ = await request(rbac_api, token, "GET", LEASES.format(ns="flux-system"))
    assert code == 200
    code, status = await request(rbac_api, token, "GET", LEASES.format(ns="apps"))
    assert code == 403
    assert status["message"] == (
        f'leases.coordination.k8s.io is forbidden: User "{SA}" cannot list resource "leases" '
        'in API group "coordination.k8s.io" in the namespace "apps"'
    )
    code, status = await request(rbac_api, token, "GET", "/apis/coordination.k8s.io/v1/leases")
    assert code == 403
    assert status["message"].endswith("at the cluster scope")


async def test_a_watch_needs_the_watch_verb(rbac_api: ApiServer) -> None:
    token = rbac_api.token_for(SA)
    code, _ = await request(rbac_api, token, "GET", LEASES.format(ns="apps"), params={"watch": "1"})
    assert code == 403


async def test_cluster_role_bound_in_a_namespace_applies_there_only(
    rbac_api: ApiServer,
) -> None:
    """alice gets a ClusterRole through a RoleBinding in "apps": resourceNames limit the
    Secret she may read, and "*/status" covers every status subresource there."""
    alice = rbac_api.token_for("alice")
    store = rbac_api.store
    store.create("secrets", {"metadata": {"name": "allowed", "namespace": "apps"}})
    store.create("secrets", {"metadata": {"name": "denied", "namespace": "apps"}})
    store.create("secrets", {"metadata": {"name": "allowed", "namespace": "infra"}})
    assert (await request(rbac_api, alice, "GET", "/api/v1/namespaces/apps/secrets/allowed"))[
        0
    ] == 200
    assert (await request(rbac_api, alice, "GET", "/api/v1/namespaces/apps/secrets/denied"))[
        0
    ] == 403
    assert (await request(rbac_api, alice, "GET", "/api/v1/namespaces/infra/secrets/allowed"))[
        0
    ] == 403
    assert (await request(rbac_api, alice, "GET", "/api/v1/namespaces/apps/secrets"))[0] == 403
    code, _ = await request(
        rbac_api,
        alice,
        "PATCH",
        "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases/podinfo/status",
        headers=MERGE,
        json={"status": {"observedGeneration": 1}},
    )
    assert code == 200


async def test_a_subject_without_bindings_is_denied_everything(rbac_api: ApiServer) -> None:
    code, status = await request(rbac_api, rbac_api.token_for("mallory"), "GET", HRS)
    assert code == 403
    assert 'User "mallory" cannot list resource "helmreleases"' in status["message"]


async def test_the_admin_token_is_allowed_everything(rbac_api: ApiServer) -> None:
    code, _ = await request(
        rbac_api,
        rbac_api.admin_token,
        "DELETE",
        "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases/podinfo",
    )
    assert code == 200


async def test_a_kustomize_directory_is_read_with_its_namespace(
    make_apiserver: MakeServer, tmp_path: Path
) -> None:
    """kustomize's ``namespace:`` moves Roles and ServiceAccount subjects, as in
    config/rbac shipped with ``namespace: <ns>``."""
    base = tmp_path / "rbac"
    base.mkdir()
    (base / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namespace: watchers\nresources:\n  - role.yaml\n"
    )
    (base / "role.yaml").write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
        "metadata: {name: r, namespace: system}\n"
        "rules: [{apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get]}]\n"
        "---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n"
        "metadata: {name: r, namespace: system}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\n"
        "subjects: [{kind: ServiceAccount, name: fluxwatch, namespace: system}]\n"
    )
    api = await make_apiserver(rbac_files=[base])
    api.store.create(
        "leases.coordination.k8s.io", {"metadata": {"name": "l", "namespace": "watchers"}}
    )
    token = api.token_for("system:serviceaccount:watchers:fluxwatch")
    code, _ = await request(api, token, "GET", LEASES.format(ns="watchers") + "/l")
    assert code == 200
