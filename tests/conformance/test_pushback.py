"""Conformance cases: how kube-apiserver v1.32 refuses and delays, as the embedded
cluster's fault hooks (``ApiServer.faults``) answer it.

Each answer is the one the real filter or storage writes (k8s.io/apiserver):
API Priority and Fairness refuses with ``http.Error`` (plain text, not a Status)
after authentication and before authorization; an etcd timeout is a Status with
no reason; a server shutting down is a 503 with ``Retry-After: 1``; the timeout
filter writes a 504 ``Timeout`` Status with no Content-Type of its own. An
expired or unknown token is the authenticator's 401, and TokenRequest's
``expirationSeconds`` bounds are its validation's.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.store import Store

NAMESPACES = "/api/v1/namespaces"
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
BOT_TOKEN = "/api/v1/namespaces/apps/serviceaccounts/bot/token"


async def call(
    api: ApiServer, method: str, path: str, token: str | None, body: Any = None
) -> tuple[int, Any, Any]:
    """(status, decoded body or text, headers) of one request with ``token``."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession(base_url=api.url) as http,
        http.request(method, path, json=body, headers=headers) as resp,
    ):
        text = await resp.text()
        try:
            return resp.status, json.loads(text), resp.headers
        except ValueError:
            return resp.status, text, resp.headers


async def test_priority_and_fairness_refuses_with_a_plain_text_429_and_retry_after(
    apiserver: ApiServer,
) -> None:
    apiserver.faults.fail_next(1, code=429, retry_after=3)
    code, body, headers = await call(apiserver, "GET", NAMESPACES, apiserver.admin_token)
    assert code == 429
    assert body == "Too many requests, please try again later.\n"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Retry-After"] == "3"
    assert headers["X-Kubernetes-PF-FlowSchema-UID"]
    assert headers["X-Kubernetes-PF-PriorityLevel-UID"]


async def test_a_throttled_request_is_refused_before_it_is_authorized(
    apiserver: ApiServer,
) -> None:
    """APF sits after authentication and before authorization: a user without any
    rights is throttled as well, and a bad token is still a 401."""
    apiserver.faults.fail_next(1, code=429)
    code, _, _ = await call(apiserver, "GET", NAMESPACES, "not-a-token")
    assert code == 401
    nobody = apiserver.token_for("nobody")
    code, body, headers = await call(apiserver, "GET", NAMESPACES, nobody)
    assert (code, headers["Retry-After"]) == (429, "1")
    code, body, _ = await call(apiserver, "GET", NAMESPACES, nobody)
    assert code == 403
    assert body["reason"] == "Forbidden"


async def test_an_etcd_timeout_is_a_500_status_without_a_reason(apiserver: ApiServer) -> None:
    apiserver.faults.fail_next(1, code=500)
    code, body, headers = await call(apiserver, "GET", NAMESPACES, apiserver.admin_token)
    assert code == 500
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "etcdserver: request timed out",
        "code": 500,
    }
    assert headers["Content-Type"] == "application/json"
    assert "Retry-After" not in headers


async def test_a_server_shutting_down_answers_503_with_retry_after(apiserver: ApiServer) -> None:
    apiserver.faults.fail_next(1, code=503)
    code, body, headers = await call(apiserver, "GET", NAMESPACES, apiserver.admin_token)
    assert code == 503
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "apiserver is shutting down",
        "reason": "ServiceUnavailable",
        "code": 503,
    }
    assert headers["Retry-After"] == "1"


async def test_the_timeout_filter_answers_a_504_timeout_status(apiserver: ApiServer) -> None:
    apiserver.faults.fail_next(1, code=504, verb="list")
    code, body, headers = await call(apiserver, "GET", NAMESPACES, apiserver.admin_token)
    assert code == 504
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Timeout: request did not complete within the allotted timeout",
        "reason": "Timeout",
        "details": {},
        "code": 504,
    }
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "Retry-After" not in headers


async def test_an_expired_token_is_the_authenticators_401_status(make_apiserver: Any) -> None:
    now = [1_800_000_000.0]
    api: ApiServer = await make_apiserver(store=Store(clock=lambda: now[0]))
    api.store.create("serviceaccounts", {"metadata": {"name": "bot", "namespace": "apps"}})
    code, answer, _ = await call(
        api, "POST", BOT_TOKEN, api.admin_token, {"spec": {"expirationSeconds": 600}}
    )
    assert code == 201
    now[0] += 600
    code, body, _ = await call(api, "POST", SSR, answer["status"]["token"], {})
    assert code == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


async def test_a_token_request_over_2_to_the_32_seconds_is_invalid(apiserver: ApiServer) -> None:
    apiserver.store.create("serviceaccounts", {"metadata": {"name": "bot", "namespace": "apps"}})
    seconds = 2**32 + 1
    code, body, _ = await call(
        apiserver,
        "POST",
        BOT_TOKEN,
        apiserver.admin_token,
        {"spec": {"expirationSeconds": seconds}},
    )
    assert code == 422
    assert body["message"] == (
        'TokenRequest.authentication.k8s.io "bot" is invalid: spec.expirationSeconds: '
        f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds"
    )
    code, answer, _ = await call(
        apiserver, "POST", BOT_TOKEN, apiserver.admin_token, {"spec": {"expirationSeconds": 2**32}}
    )
    assert code == 201 and answer["spec"]["expirationSeconds"] == 2**32
