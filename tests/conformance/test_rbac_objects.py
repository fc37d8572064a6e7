"""RBAC as objects and authentication as a default kube-apiserver has them, over real
HTTP: anonymous requests, bad tokens, Roles and bindings written through the API,
TokenRequest tokens, impersonation, privilege-escalation checks and the review kinds
(SelfSubjectAccessReview, SubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview).

kubectl's ``auth can-i``, ``auth whoami`` and ``create token`` send protobuf bodies,
which the emulator decodes (``fluxwatch.sim.protobuf``); the same paths are also
tested here with JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl, find_kubectl
from fluxwatch.sim.rbac import Request, User
from fluxwatch.sim.store import Store

MakeServer = Callable[..., Awaitable[ApiServer]]
RBAC = "/apis/rbac.authorization.k8s.io/v1"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
SSRR = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
ALICE_SECRETS = "/api/v1/namespaces/apps/secrets"


async def call(
    api: ApiServer,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession(base_url=api.url) as http,
        http.request(method, path, json=body, headers=sent) as resp,
    ):
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


def role(name: str, namespace: str | None, *rules: dict[str, Any]) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if namespace is not None:
        md["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role" if namespace is not None else "ClusterRole",
        "metadata": md,
        "rules": list(rules),
    }


def binding(
    name: str, namespace: str | None, role_kind: str, role_name: str, *subjects: dict[str, str]
) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if namespace is not None:
        md["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding" if namespace is not None else "ClusterRoleBinding",
        "metadata": md,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": list(subjects),
    }


def user(name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}


_READ = ["get", "list", "watch"]
READ_SECRETS = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}


async def admin_create(api: ApiServer, path: str, obj: dict[str, Any]) -> dict[str, Any]:
    code, body = await call(api, "POST", path, api.admin_token, obj)
    assert code == 201, body
    assert isinstance(body, dict)
    return body


# ---- authentication -------------------------------------------------------------------------


async def test_anonymous_is_forbidden_with_the_real_message(apiserver: ApiServer) -> None:
    code, status = await call(apiserver, "GET", "/api/v1/namespaces/x/secrets")
    assert code == 403
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets is forbidden: User "system:anonymous" cannot list resource '
        '"secrets" in API group "" in the namespace "x"',
        "reason": "Forbidden",
        "details": {"kind": "secrets"},
        "code": 403,
    }


async def test_anonymous_sees_health_and_version_but_not_discovery(apiserver: ApiServer) -> None:
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert (await call(apiserver, "GET", path))[0] == 200, path
    for path in ("/api", "/apis", "/api/v1"):
        code, status = await call(apiserver, "GET", path)
        assert code == 403
        assert status["message"] == f'forbidden: User "system:anonymous" cannot get path "{path}"'


async def test_an_invalid_token_is_401_even_for_health(apiserver: ApiServer) -> None:
    for path in ("/api/v1/namespaces/x/secrets", "/healthz"):
        code, status = await call(apiserver, "GET", path, token="not-a-token")
        assert code == 401
        assert status["reason"] == "Unauthorized" and status["message"] == "Unauthorized"


async def test_a_header_without_a_bearer_token_is_anonymous(apiserver: ApiServer) -> None:
    """As the bearer-token authenticator reads the header: another scheme, or "Bearer"
    alone, is not a token at all; an empty token between two spaces is an invalid one."""
    for header in ("Basic eDp5", "Bearer"):
        code, status = await call(
            apiserver, "GET", "/api/v1/namespaces/x/secrets", headers={"Authorization": header}
        )
        assert code == 403 and 'User "system:anonymous"' in status["message"], header
    code, _ = await call(
        apiserver, "GET", "/api/v1/namespaces/x/secrets", headers={"Authorization": "Bearer  x"}
    )
    assert code == 401


async def test_authorization_comes_before_routing(apiserver: ApiServer) -> None:
    """A resource the cluster does not serve is a 403 to anonymous, a 404 to an admin."""
    path = "/api/v1/namespaces/x/pods/p"
    code, status = await call(apiserver, "GET", path)
    assert code == 403
    assert status["message"] == (
        'pods "p" is forbidden: User "system:anonymous" cannot get resource "pods" in API '
        'group "" in the namespace "x"'
    )
    assert (await call(apiserver, "GET", path, apiserver.admin_token))[0] == 404


async def test_a_fresh_cluster_has_the_bootstrap_roles(apiserver: ApiServer) -> None:
    code, listed = await call(apiserver, "GET", f"{RBAC}/clusterroles", apiserver.admin_token)
    assert code == 200
    names = {item["metadata"]["name"] for item in listed["items"]}
    assert {
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
    } <= names
    code, crb = await call(
        apiserver, "GET", f"{RBAC}/clusterrolebindings/cluster-admin", apiserver.admin_token
    )
    assert code == 200
    assert crb["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}
    ]


# ---- roles and bindings through the API -----------------------------------------------------


async def test_a_role_binding_created_through_the_api_takes_effect_and_deleting_revokes(
    apiserver: ApiServer,
) -> None:
    alice = apiserver.token_for("alice")
    assert (await call(apiserver, "GET", ALICE_SECRETS, alice))[0] == 403
    await admin_create(
        apiserver, f"{RBAC}/namespaces/apps/roles", role("reader", "apps", READ_SECRETS)
    )
    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/rolebindings",
        binding("reader", "apps", "Role", "reader", user("alice")),
    )
    assert (await call(apiserver, "GET", ALICE_SECRETS, alice))[0] == 200
    assert (await call(apiserver, "GET", "/api/v1/namespaces/other/secrets", alice))[0] == 403

    code, _ = await call(
        apiserver, "DELETE", f"{RBAC}/namespaces/apps/rolebindings/reader", apiserver.admin_token
    )
    assert code == 200
    assert (await call(apiserver, "GET", ALICE_SECRETS, alice))[0] == 403


async def test_editing_the_role_changes_what_its_binding_allows(apiserver: ApiServer) -> None:
    alice = apiserver.token_for("alice")
    await admin_create(apiserver, f"{RBAC}/namespaces/apps/roles", role("r", "apps"))
    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/rolebindings",
        binding("r", "apps", "Role", "r", user("alice")),
    )
    assert (await call(apiserver, "GET", ALICE_SECRETS, alice))[0] == 403
    code, _ = await call(
        apiserver,
        "PATCH",
        f"{RBAC}/namespaces/apps/roles/r",
        apiserver.admin_token,
        {"rules": [READ_SECRETS]},
        {"Content-Type": "application/merge-patch+json"},
    )
    assert code == 200
    assert (await call(apiserver, "GET", ALICE_SECRETS, alice))[0] == 200


async def test_a_cluster_role_bound_by_a_role_binding_is_scoped_to_its_namespace(
    apiserver: ApiServer,
) -> None:
    alice = apiserver.token_for("alice")
    await admin_create(apiserver, f"{RBAC}/clusterroles", role("secret-reader", None, READ_SECRETS))
    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/rolebindings",
        binding("sr", "apps", "ClusterRole", "secret-reader", user("alice")),
    )
    assert (await call(apiserver, "GET", ALICE_SECRETS, alice))[0] == 200
    assert (await call(apiserver, "GET", "/api/v1/namespaces/infra/secrets", alice))[0] == 403
    assert (await call(apiserver, "GET", "/api/v1/secrets", alice))[0] == 403


async def test_resource_names_allow_get_of_that_name_only(apiserver: ApiServer) -> None:
    alice = apiserver.token_for("alice")
    store = apiserver.store
    for name in ("allowed", "other"):
        store.create("secrets", {"metadata": {"name": name, "namespace": "apps"}})
    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/roles",
        role(
            "one",
            "apps",
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": ["allowed"],
                "verbs": ["get", "list", "create"],
            },
        ),
    )
    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/rolebindings",
        binding("one", "apps", "Role", "one", user("alice")),
    )
    assert (await call(apiserver, "GET", f"{ALICE_SECRETS}/allowed", alice))[0] == 200
    code, status = await call(apiserver, "GET", f"{ALICE_SECRETS}/other", alice)
    assert code == 403
    assert status["details"] == {"name": "other", "kind": "secrets"}
    # Neither a list nor a create names one object, so resourceNames cannot allow them.
    assert (await call(apiserver, "GET", ALICE_SECRETS, alice))[0] == 403
    new = {"metadata": {"name": "allowed2"}}
    assert (await call(apiserver, "POST", ALICE_SECRETS, alice, new))[0] == 403
    # A list pinned to the name by fieldSelector is authorized for that name.
    code, _ = await call(
        apiserver, "GET", f"{ALICE_SECRETS}?fieldSelector=metadata.name%3Dallowed", alice
    )
    assert code == 200


async def test_service_account_subjects_default_to_the_binding_namespace(
    apiserver: ApiServer,
) -> None:
    await admin_create(
        apiserver, f"{RBAC}/namespaces/apps/roles", role("reader", "apps", READ_SECRETS)
    )
    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/rolebindings",
        binding("reader", "apps", "Role", "reader", {"kind": "ServiceAccount", "name": "bot"}),
    )
    bot = apiserver.token_for("system:serviceaccount:apps:bot")
    elsewhere = apiserver.token_for("system:serviceaccount:infra:bot")
    assert (await call(apiserver, "GET", ALICE_SECRETS, bot))[0] == 200
    assert (await call(apiserver, "GET", ALICE_SECRETS, elsewhere))[0] == 403


async def test_subresource_wildcards_and_groups(apiserver: ApiServer) -> None:
    await admin_create(
        apiserver,
        f"{RBAC}/clusterroles",
        role("scaler", None, {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["*"]}),
    )
    await admin_create(
        apiserver,
        f"{RBAC}/clusterrolebindings",
        binding(
            "scaler",
            None,
            "ClusterRole",
            "scaler",
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"},
        ),
    )
    # The authorizer answers directly: no subresource path of apps is served here.
    ops = User("bob", ("ops", "system:authenticated"))
    authorizer = apiserver.authorizer
    assert authorizer.allowed(Request(ops, "update", "apps", "deployments", "scale", "a", "d"))
    assert not authorizer.allowed(Request(ops, "update", "apps", "deployments", "", "a", "d"))
    assert not authorizer.allowed(Request(ops, "update", "", "deployments", "scale", "a", "d"))


async def test_aggregated_cluster_roles_follow_their_labelled_parts(
    apiserver: ApiServer,
) -> None:
    """view/edit/admin are aggregated as in a real cluster: a ClusterRole labelled
    aggregate-to-view (as Flux's flux-view is) adds its rules to view, and so to edit
    and admin, and removing it takes them away again."""
    alice = apiserver.token_for("alice")
    hrs = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases"
    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/rolebindings",
        binding("v", "apps", "ClusterRole", "admin", user("alice")),
    )
    assert (await call(apiserver, "GET", "/api/v1/namespaces/apps/configmaps", alice))[0] == 200
    assert (await call(apiserver, "GET", hrs, alice))[0] == 403
    flux_view = role(
        "flux-view",
        None,
        {"apiGroups": ["helm.toolkit.fluxcd.io"], "resources": ["helmreleases"], "verbs": _READ},
    )
    flux_view["metadata"]["labels"] = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
    await admin_create(apiserver, f"{RBAC}/clusterroles", flux_view)
    assert (await call(apiserver, "GET", hrs, alice))[0] == 200
    code, view = await call(apiserver, "GET", f"{RBAC}/clusterroles/view", apiserver.admin_token)
    assert code == 200
    assert flux_view["rules"][0] in view["rules"]
    assert view["aggregationRule"] == {
        "clusterRoleSelectors": [
            {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}
        ]
    }

    code, _ = await call(
        apiserver, "DELETE", f"{RBAC}/clusterroles/flux-view", apiserver.admin_token
    )
    assert code == 200
    assert (await call(apiserver, "GET", hrs, alice))[0] == 403


# ---- privilege escalation ---------------------------------------------------------------------


async def test_granting_permissions_not_held_is_forbidden(apiserver: ApiServer) -> None:
    """alice may manage Roles and RoleBindings in apps but not read Secrets: she cannot
    write a Role that reads them, nor bind one an admin wrote, unless she holds `bind`."""
    alice = apiserver.token_for("alice")
    manage = {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": ["create", "get"],
    }
    await admin_create(apiserver, f"{RBAC}/namespaces/apps/roles", role("rbac", "apps", manage))
    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/rolebindings",
        binding("rbac", "apps", "Role", "rbac", user("alice")),
    )
    code, status = await call(
        apiserver, "POST", f"{RBAC}/namespaces/apps/roles", alice, role("x", "apps", READ_SECRETS)
    )
    assert code == 403
    assert status["message"] == (
        'roles.rbac.authorization.k8s.io "x" is forbidden: user "alice" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
        'currently held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}'
    )
    # A Role within what she holds is fine.
    code, _ = await call(
        apiserver, "POST", f"{RBAC}/namespaces/apps/roles", alice, role("ok", "apps", manage)
    )
    assert code == 201

    await admin_create(
        apiserver, f"{RBAC}/namespaces/apps/roles", role("secrets", "apps", READ_SECRETS)
    )
    to_self = binding("s", "apps", "Role", "secrets", user("alice"))
    code, status = await call(
        apiserver, "POST", f"{RBAC}/namespaces/apps/rolebindings", alice, to_self
    )
    assert code == 403
    assert "is attempting to grant RBAC permissions not currently held" in status["message"]
    assert (await call(apiserver, "GET", ALICE_SECRETS, alice))[0] == 403

    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/roles",
        role(
            "binder",
            "apps",
            {
                "apiGroups": ["rbac.authorization.k8s.io"],
                "resources": ["roles"],
                "resourceNames": ["secrets"],
                "verbs": ["bind"],
            },
        ),
    )
    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/rolebindings",
        binding("binder", "apps", "Role", "binder", user("alice")),
    )
    code, _ = await call(apiserver, "POST", f"{RBAC}/namespaces/apps/rolebindings", alice, to_self)
    assert code == 201
    assert (await call(apiserver, "GET", ALICE_SECRETS, alice))[0] == 200


# ---- TokenRequest ---------------------------------------------------------------------------


def _claims(token: str) -> dict[str, Any]:
    header, payload, signature = token.split(".")
    assert signature
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def test_a_requested_token_authenticates_as_its_service_account_until_it_is_deleted(
    apiserver: ApiServer,
) -> None:
    admin = apiserver.admin_token
    path = "/api/v1/namespaces/apps/serviceaccounts/bot/token"
    code, status = await call(apiserver, "POST", path, admin, {"spec": {}})
    assert code == 404
    assert status["message"] == 'serviceaccounts "bot" not found'

    sa = apiserver.store.create(
        "serviceaccounts", {"metadata": {"name": "bot", "namespace": "apps"}}
    )
    code, answer = await call(
        apiserver,
        "POST",
        path,
        admin,
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert code == 201
    assert answer["kind"] == "TokenRequest"
    assert answer["spec"]["expirationSeconds"] == 3600
    token = answer["status"]["token"]
    claims = _claims(token)
    assert claims["sub"] == "system:serviceaccount:apps:bot"
    assert claims["kubernetes.io"]["serviceaccount"] == {
        "name": "bot",
        "uid": sa["metadata"]["uid"],
    }
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]

    code, review = await call(apiserver, "POST", SSR, token, {"kind": "SelfSubjectReview"})
    assert code == 201
    info = review["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:apps:bot"
    assert info["uid"] == sa["metadata"]["uid"]
    assert info["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:apps",
        "system:authenticated",
    ]
    code, status = await call(apiserver, "GET", ALICE_SECRETS, token)
    assert code == 403
    assert 'User "system:serviceaccount:apps:bot" cannot list' in status["message"]

    apiserver.store.delete("serviceaccounts", "apps", "bot")
    assert (await call(apiserver, "POST", SSR, token, {}))[0] == 401
    # A new ServiceAccount of the same name does not bring the old token back.
    apiserver.store.create("serviceaccounts", {"metadata": {"name": "bot", "namespace": "apps"}})
    assert (await call(apiserver, "POST", SSR, token, {}))[0] == 401


async def test_a_requested_token_expires_on_the_server_clock(make_apiserver: MakeServer) -> None:
    now = [1_800_000_000.0]
    api = await make_apiserver(store=Store(clock=lambda: now[0]))
    api.store.create("serviceaccounts", {"metadata": {"name": "bot", "namespace": "apps"}})
    path = "/api/v1/namespaces/apps/serviceaccounts/bot/token"
    code, status = await call(
        api, "POST", path, api.admin_token, {"spec": {"expirationSeconds": 60}}
    )
    assert code == 422
    assert status["message"] == (
        'TokenRequest.authentication.k8s.io "bot" is invalid: spec.expirationSeconds: '
        "Invalid value: 60: may not specify a duration less than 10 minutes"
    )
    code, answer = await call(
        api, "POST", path, api.admin_token, {"spec": {"expirationSeconds": 600}}
    )
    assert code == 201
    token = answer["status"]["token"]
    assert answer["status"]["expirationTimestamp"] == "2027-01-15T08:10:00Z"
    now[0] += 599
    assert (await call(api, "POST", SSR, token, {}))[0] == 201
    now[0] += 1
    assert (await call(api, "POST", SSR, token, {}))[0] == 401


async def test_a_token_for_another_audience_does_not_authenticate(apiserver: ApiServer) -> None:
    apiserver.store.create("serviceaccounts", {"metadata": {"name": "bot", "namespace": "apps"}})
    code, answer = await call(
        apiserver,
        "POST",
        "/api/v1/namespaces/apps/serviceaccounts/bot/token",
        apiserver.admin_token,
        {"spec": {"audiences": ["vault"]}},
    )
    assert code == 201 and answer["spec"]["audiences"] == ["vault"]
    assert (await call(apiserver, "POST", SSR, answer["status"]["token"], {}))[0] == 401


async def test_requesting_a_token_needs_create_on_serviceaccounts_token(
    apiserver: ApiServer,
) -> None:
    apiserver.store.create("serviceaccounts", {"metadata": {"name": "bot", "namespace": "apps"}})
    code, status = await call(
        apiserver,
        "POST",
        "/api/v1/namespaces/apps/serviceaccounts/bot/token",
        apiserver.token_for("alice"),
        {},
    )
    assert code == 403
    assert status["message"] == (
        'serviceaccounts "bot" is forbidden: User "alice" cannot create resource '
        '"serviceaccounts/token" in API group "" in the namespace "apps"'
    )


# ---- impersonation --------------------------------------------------------------------------


async def test_an_admin_impersonates_a_user_who_is_then_authorized_as_themself(
    apiserver: ApiServer,
) -> None:
    code, status = await call(
        apiserver,
        "GET",
        ALICE_SECRETS,
        apiserver.admin_token,
        headers={"Impersonate-User": "alice"},
    )
    assert code == 403
    assert 'User "alice" cannot list resource "secrets"' in status["message"]
    code, review = await call(
        apiserver,
        "POST",
        SSR,
        apiserver.admin_token,
        {},
        {
            "Impersonate-User": "alice",
            "Impersonate-Group": "devs",
            "Impersonate-Uid": "u-1",
            "Impersonate-Extra-Scopes": "a",
        },
    )
    assert code == 201
    assert review["status"]["userInfo"] == {
        "username": "alice",
        "uid": "u-1",
        "groups": ["devs", "system:authenticated"],
        "extra": {"scopes": ["a"]},
    }


async def test_impersonating_a_service_account_brings_its_groups(apiserver: ApiServer) -> None:
    code, review = await call(
        apiserver,
        "POST",
        SSR,
        apiserver.admin_token,
        {},
        {"Impersonate-User": "system:serviceaccount:apps:bot"},
    )
    assert code == 201
    assert review["status"]["userInfo"]["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:apps",
        "system:authenticated",
    ]


async def test_impersonation_without_the_verb_is_forbidden(apiserver: ApiServer) -> None:
    bob = apiserver.token_for("bob")
    code, status = await call(
        apiserver, "GET", ALICE_SECRETS, bob, headers={"Impersonate-User": "alice"}
    )
    assert code == 403
    assert status["message"] == (
        'users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API '
        'group "" at the cluster scope'
    )
    code, status = await call(
        apiserver,
        "GET",
        ALICE_SECRETS,
        bob,
        headers={"Impersonate-User": "system:serviceaccount:apps:bot"},
    )
    assert code == 403
    assert status["message"] == (
        'serviceaccounts "bot" is forbidden: User "bob" cannot impersonate resource '
        '"serviceaccounts" in API group "" in the namespace "apps"'
    )

    # Allowed to impersonate alice, but not the group system:masters.
    await admin_create(
        apiserver,
        f"{RBAC}/clusterroles",
        role(
            "as-alice",
            None,
            {
                "apiGroups": [""],
                "resources": ["users"],
                "resourceNames": ["alice"],
                "verbs": ["impersonate"],
            },
        ),
    )
    await admin_create(
        apiserver,
        f"{RBAC}/clusterrolebindings",
        binding("as-alice", None, "ClusterRole", "as-alice", user("bob")),
    )
    code, review = await call(apiserver, "POST", SSR, bob, {}, {"Impersonate-User": "alice"})
    assert code == 201 and review["status"]["userInfo"]["username"] == "alice"
    code, status = await call(
        apiserver,
        "POST",
        SSR,
        bob,
        {},
        {"Impersonate-User": "alice", "Impersonate-Group": "system:masters"},
    )
    assert code == 403
    assert status["message"] == (
        'groups "system:masters" is forbidden: User "bob" cannot impersonate resource '
        '"groups" in API group "" at the cluster scope'
    )


async def test_impersonating_a_group_without_a_user_is_a_bad_request(apiserver: ApiServer) -> None:
    code, status = await call(
        apiserver,
        "GET",
        ALICE_SECRETS,
        apiserver.admin_token,
        headers={"Impersonate-Group": "devs"},
    )
    assert code == 400
    assert status["message"] == "requested [{Group  devs    }] without impersonating a user"


# ---- reviews --------------------------------------------------------------------------------


def _ssar(verb: str, resource: str, namespace: str = "", name: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "verb": verb,
                "resource": resource,
                "namespace": namespace,
                "name": name,
            }
        },
    }


async def test_self_subject_access_review_answers_with_the_binding_that_allows(
    apiserver: ApiServer,
) -> None:
    alice = apiserver.token_for("alice")
    await admin_create(apiserver, f"{RBAC}/clusterroles", role("secret-reader", None, READ_SECRETS))
    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/rolebindings",
        binding("sr", "apps", "ClusterRole", "secret-reader", user("alice")),
    )
    code, answer = await call(apiserver, "POST", SSAR, alice, _ssar("list", "secrets", "apps"))
    assert code == 201
    assert answer["kind"] == "SelfSubjectAccessReview"
    assert answer["status"] == {
        "allowed": True,
        "reason": 'RBAC: allowed by RoleBinding "sr/apps" of ClusterRole "secret-reader" '
        'to User "alice"',
    }
    code, answer = await call(apiserver, "POST", SSAR, alice, _ssar("delete", "secrets", "apps"))
    assert code == 201 and answer["status"] == {"allowed": False}

    code, answer = await call(
        apiserver,
        "POST",
        SSAR,
        alice,
        {"spec": {"nonResourceAttributes": {"path": "/apis", "verb": "get"}}},
    )
    assert answer["status"] == {
        "allowed": True,
        "reason": 'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole '
        '"system:discovery" to Group "system:authenticated"',
    }
    code, status = await call(apiserver, "POST", SSAR, alice, {"spec": {}})
    assert code == 422
    assert status["message"] == (
        'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
        "Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes "
        "must be specified"
    )


async def test_anonymous_may_not_review_itself(apiserver: ApiServer) -> None:
    code, status = await call(apiserver, "POST", SSAR, None, _ssar("get", "pods"))
    assert code == 403
    assert status["message"] == (
        'selfsubjectaccessreviews.authorization.k8s.io is forbidden: User "system:anonymous" '
        'cannot create resource "selfsubjectaccessreviews" in API group '
        '"authorization.k8s.io" at the cluster scope'
    )


async def test_subject_access_review_asks_for_someone_else(apiserver: ApiServer) -> None:
    body = {
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "carol",
            "groups": ["system:masters"],
            "resourceAttributes": {"verb": "delete", "resource": "secrets", "namespace": "x"},
        },
    }
    code, answer = await call(apiserver, "POST", SAR, apiserver.admin_token, body)
    assert code == 201 and answer["status"] == {"allowed": True}
    body["spec"]["groups"] = []
    code, answer = await call(apiserver, "POST", SAR, apiserver.admin_token, body)
    assert code == 201 and answer["status"] == {"allowed": False}
    # Only who may create subjectaccessreviews may ask.
    alice = apiserver.token_for("alice")
    assert (await call(apiserver, "POST", SAR, alice, body))[0] == 403
    # Nothing was stored.
    assert apiserver.store.count("subjectaccessreviews.authorization.k8s.io") == 0


async def test_self_subject_rules_review_lists_the_rules_in_a_namespace(
    apiserver: ApiServer,
) -> None:
    alice = apiserver.token_for("alice")
    await admin_create(
        apiserver, f"{RBAC}/namespaces/apps/roles", role("reader", "apps", READ_SECRETS)
    )
    await admin_create(
        apiserver,
        f"{RBAC}/namespaces/apps/rolebindings",
        binding("reader", "apps", "Role", "reader", user("alice")),
    )
    code, answer = await call(apiserver, "POST", SSRR, alice, {"spec": {"namespace": "apps"}})
    assert code == 201
    status = answer["status"]
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["secrets"]} in status[
        "resourceRules"
    ]
    assert {
        "verbs": ["create"],
        "apiGroups": ["authentication.k8s.io"],
        "resources": ["selfsubjectreviews"],
    } in status["resourceRules"]
    assert {
        "verbs": ["get"],
        "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
    } in status["nonResourceRules"]
    assert status["incomplete"] is False
    code, answer = await call(apiserver, "POST", SSRR, alice, {"spec": {"namespace": "infra"}})
    assert READ_SECRETS | {"verbs": ["get", "list"]} not in answer["status"]["resourceRules"]


async def test_self_subject_review_of_the_admin(apiserver: ApiServer) -> None:
    code, answer = await call(apiserver, "POST", SSR, apiserver.admin_token, {})
    assert code == 201
    assert answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["status"]["userInfo"] == {
        "username": "system:admin",
        "groups": ["system:masters", "system:authenticated"],
    }


async def test_rbac_files_are_objects_the_api_can_change(
    make_apiserver: MakeServer, tmp_path: Path
) -> None:
    manifest = tmp_path / "rbac.yaml"
    manifest.write_text(
        json.dumps(role("reader", "apps", READ_SECRETS))
        + "\n---\n"
        + json.dumps(binding("reader", "apps", "Role", "reader", user("alice")))
    )
    api = await make_apiserver(rbac_files=[manifest])
    alice = api.token_for("alice")
    assert (await call(api, "GET", ALICE_SECRETS, alice))[0] == 200
    code, _ = await call(api, "DELETE", f"{RBAC}/namespaces/apps/roles/reader", api.admin_token)
    assert code == 200
    assert (await call(api, "GET", ALICE_SECRETS, alice))[0] == 403


# ---- kubectl --------------------------------------------------------------------------------


@pytest.fixture
def kubectl_as(tls_apiserver: ApiServer, tmp_path: Path) -> Callable[[str], Kubectl]:
    """kubectl against ``tls_apiserver`` with the token of the given subject."""
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (looked for /usr/bin/kubectl and on PATH)")

    def make(subject: str) -> Kubectl:
        token = (
            tls_apiserver.admin_token if subject == "admin" else tls_apiserver.token_for(subject)
        )
        config = tls_apiserver.write_kubeconfig(tmp_path / f"kc-{subject}", token=token)
        return Kubectl(binary, config, tmp_path / "kube-cache")

    return make


async def test_kubectl_writes_a_binding_that_takes_effect(
    kubectl_as: Callable[[str], Kubectl], tmp_path: Path
) -> None:
    admin, alice = kubectl_as("admin"), kubectl_as("alice")
    result = await alice("get", "secrets", "-n", "apps")
    assert result.returncode == 1
    assert (
        'Error from server (Forbidden): secrets is forbidden: User "alice" cannot list resource '
        '"secrets" in API group "" in the namespace "apps"'
    ) in result.stderr
    # `kubectl create clusterrolebinding` sends protobuf; a manifest goes as JSON.
    manifest = tmp_path / "crb.json"
    manifest.write_text(
        json.dumps(binding("alice-edit", None, "ClusterRole", "edit", user("alice")))
    )
    (await admin("create", "-f", str(manifest), "--validate=false")).check()
    (await alice("get", "secrets", "-n", "apps")).check()
    (await admin("delete", "clusterrolebinding", "alice-edit")).check()
    assert (await alice("get", "secrets", "-n", "apps")).returncode == 1


async def test_kubectl_as_impersonates(
    tls_apiserver: ApiServer, kubectl_as: Callable[[str], Kubectl]
) -> None:
    admin, bob = kubectl_as("admin"), kubectl_as("bob")
    result = await admin("get", "secrets", "-n", "apps", "--as=alice")
    assert 'User "alice" cannot list resource "secrets"' in result.stderr
    result = await bob("get", "secrets", "-n", "apps", "--as=alice")
    assert (
        'users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API '
        'group "" at the cluster scope'
    ) in result.stderr
    (await admin("get", "secrets", "-n", "apps", "--as=alice", "--as-group=system:masters")).check()


async def test_kubectl_auth_can_i(kubectl_as: Callable[[str], Kubectl]) -> None:
    admin, alice = kubectl_as("admin"), kubectl_as("alice")
    result = (await admin("auth", "can-i", "delete", "secrets", "-n", "apps")).check()
    assert result.stdout.strip() == "yes"
    result = await alice("auth", "can-i", "delete", "secrets", "-n", "apps")
    assert result.returncode == 1 and result.stdout.strip() == "no"
    result = (await alice("auth", "can-i", "--list", "-n", "apps")).check()
    assert "selfsubjectreviews.authentication.k8s.io" in result.stdout


async def test_kubectl_auth_whoami(kubectl_as: Callable[[str], Kubectl]) -> None:
    result = (await kubectl_as("alice")("auth", "whoami", "-o", "json")).check()
    assert json.loads(result.stdout)["status"]["userInfo"]["username"] == "alice"


async def test_kubectl_create_token(
    tls_apiserver: ApiServer, kubectl_as: Callable[[str], Kubectl], tmp_path: Path
) -> None:
    admin = kubectl_as("admin")
    tls_apiserver.store.create(
        "serviceaccounts", {"metadata": {"name": "bot", "namespace": "default"}}
    )
    token = (await admin("create", "token", "bot", "--duration=20m")).check().stdout.strip()
    assert _claims(token)["sub"] == "system:serviceaccount:default:bot"
    config = tls_apiserver.write_kubeconfig(tmp_path / "kc-bot", token=token)
    bot = Kubectl(admin.binary, config, tmp_path / "kube-cache")
    result = (await bot("auth", "whoami", "-o", "json")).check()
    assert json.loads(result.stdout)["status"]["userInfo"]["username"] == (
        "system:serviceaccount:default:bot"
    )
    assert (await admin("create", "token", "nobody")).returncode == 1
