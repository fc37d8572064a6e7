"""datadog, sentry, lark and zulip against local receivers that check what their APIs check.

Each receiver answers the way the real API does to a malformed request (400
with the reason), so a provider that sends the wrong shape, path, auth or
content type fails here; each test then compares the body with the payload
notification-controller's notifier builds for the same event.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest
from aiohttp import web
from test_notify_providers import EVENT, META, MSG, T0, write_secret
from test_notify_receiver import Answer, Receiver

from fluxwatch.notify.config import ProviderSpec
from fluxwatch.notify.errors import DeliveryError
from fluxwatch.notify.event import EventFactory, InvolvedObject
from fluxwatch.notify.factory import UnavailableProvider, open_provider
from fluxwatch.notify.providers import Provider, ProviderDeps
from fluxwatch.notify.transport import RetryPolicy, Transport

HR = InvolvedObject.helmrelease("apps", "podinfo", uid="5e6f-uid")
INFO = EventFactory("fluxwatch-0", now=lambda: T0).recovery_started(
    HR, strategy="force-reconcile", attempt=1, max_attempts=3
)

Check = Callable[[web.Request, bytes], str | None]


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport(retry=RetryPolicy(max_retries=0))
    yield t
    await t.close()


async def checking(check: Check) -> Receiver:
    """A receiver that answers 400 with the problem ``check`` finds, else 202."""
    receiver = Receiver()

    async def on_request(request: web.Request) -> Answer:
        problem = check(request, await request.read())
        if problem:
            return (400, {}, problem.encode())
        return 202

    receiver.on_request = on_request
    return await receiver.start()


async def build(
    type_: str, address: str, transport: Transport, tmp_path: Path, **spec: Any
) -> Provider:
    secret = spec.pop("secret", None)
    data: dict[str, Any] = {"name": f"test-{type_}", "type": type_, "address": address, **spec}
    if secret:
        data["secretPath"] = str(write_secret(tmp_path / type_, secret))
    provider = await open_provider(ProviderSpec.model_validate(data), ProviderDeps(transport))
    assert not isinstance(provider, UnavailableProvider), provider.reason
    return provider


def _json(request: web.Request, body: bytes) -> dict[str, Any] | str:
    if request.content_type != "application/json":
        return f"content type {request.content_type}, want application/json"
    try:
        return dict(orjson.loads(body))
    except orjson.JSONDecodeError:
        return "not JSON"


# -- datadog ---------------------------------------------------------------------------------


def datadog_api(request: web.Request, body: bytes) -> str | None:
    """POST /api/v1/events: DD-API-KEY, a title of at most 100 and a text of 4000 characters."""
    if request.method != "POST" or request.path != "/api/v1/events":
        return f"no route {request.method} {request.path}"
    if request.headers.get("DD-API-KEY") != "dd-api-key-123":
        return "403 forbidden: bad API key"
    doc = _json(request, body)
    if isinstance(doc, str):
        return doc
    if not doc.get("title") or len(doc["title"]) > 100 or len(doc.get("text", "")) > 4000:
        return "title or text missing or too long"
    if doc.get("alert_type") not in ("error", "warning", "info", "success"):
        return "bad alert_type"
    return None


async def test_datadog_event(transport: Transport, tmp_path: Path) -> None:
    receiver = await checking(datadog_api)
    try:
        provider = await build(
            "datadog", receiver.url, transport, tmp_path, secret={"token": "dd-api-key-123"}
        )
        await provider.post(EVENT)
        await provider.post(INFO)
    finally:
        await receiver.stop()
    error, info = receiver.requests
    assert (error.status, info.status) == (202, 202), error.body
    assert error.json() == {
        "title": "Events from the HelmRelease podinfo/apps",
        "text": MSG,
        "tags": [
            "flux_reporting_controller:fluxwatch",
            "flux_reason:stuckdetected",
            "kube_kind:helmrelease",
            "kube_name:podinfo",
            "kube_namespace:apps",
            *(f"{k}:{v}".lower() for k, v in META.items()),
        ],
        "source_type_name": "fluxcd",
        "date_happened": int(T0.timestamp()),
        "alert_type": "error",
    }
    assert info.json()["alert_type"] == "info"


async def test_datadog_needs_its_api_key(transport: Transport, tmp_path: Path) -> None:
    spec = ProviderSpec.model_validate({"name": "dd", "type": "datadog"})
    provider = await open_provider(spec, ProviderDeps(transport))
    assert isinstance(provider, UnavailableProvider)
    assert "needs a token" in provider.reason


# -- sentry ----------------------------------------------------------------------------------


def parse_envelope(body: bytes) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    header, item_header, payload = body.split(b"\n", 2)
    assert len(payload) == orjson.loads(item_header)["length"]
    return orjson.loads(header), orjson.loads(item_header), orjson.loads(payload)


def sentry_api(request: web.Request, body: bytes) -> str | None:
    """POST /api/<project>/envelope/ with X-Sentry-Auth naming the DSN's key."""
    if request.method != "POST" or request.path != "/api/4242/envelope/":
        return f"no route {request.method} {request.path}"
    auth = request.headers.get("X-Sentry-Auth", "")
    if "sentry_key=abc123publickey" not in auth or "sentry_version=7" not in auth:
        return "401 bad X-Sentry-Auth"
    if request.content_type != "application/x-sentry-envelope":
        return "not an envelope"
    try:
        header, item_header, payload = parse_envelope(body)
    except (ValueError, KeyError, AssertionError):
        return "malformed envelope"
    if header["event_id"] != payload["event_id"] or len(payload["event_id"]) != 32:
        return "event_id"
    if item_header["type"] not in ("event", "transaction"):
        return "item type"
    return None


async def test_sentry_errors_are_events_and_info_are_transactions(
    transport: Transport, tmp_path: Path
) -> None:
    receiver = await checking(sentry_api)
    dsn = f"http://abc123publickey@127.0.0.1:{receiver.port}/4242"
    try:
        provider = await build(
            "sentry", "", transport, tmp_path, channel="prod", secret={"address": dsn}
        )
        await provider.post(EVENT)
        await provider.post(INFO)
        await provider.post(EVENT)
    finally:
        await receiver.stop()
    assert [r.status for r in receiver.requests] == [202, 202, 202], receiver.requests[0].body
    _, kind, error = parse_envelope(receiver.requests[0].body)
    assert kind["type"] == "event"
    assert error == {
        "event_id": error["event_id"],
        "timestamp": "2026-03-01T12:00:05Z",
        "platform": "other",
        "environment": "prod",
        "level": "error",
        "server_name": "fluxwatch",
        "transaction": "HelmRelease: apps/podinfo",
        "contexts": {"metadata": META},
        "message": MSG,
    }
    _, kind, info = parse_envelope(receiver.requests[1].body)
    assert kind["type"] == "transaction" and info["type"] == "transaction"
    assert info["transaction"] == "HelmRelease: apps/podinfo"
    assert info["tags"]["flux_reason"] == "RecoveryStarted"
    assert info["tags"]["flux_involved_object_name"] == "podinfo"
    assert info["spans"][0]["op"] == "event"
    # The same event twice is the same Sentry event: a retry is not a second issue.
    assert parse_envelope(receiver.requests[2].body)[2]["event_id"] == error["event_id"]


async def test_sentry_address_must_be_a_dsn(transport: Transport) -> None:
    spec = ProviderSpec.model_validate(
        {"name": "s", "type": "sentry", "address": "https://sentry.example.com/4242"}
    )
    provider = await open_provider(spec, ProviderDeps(transport))
    assert isinstance(provider, UnavailableProvider)
    assert "must be a DSN" in provider.reason


# -- lark ------------------------------------------------------------------------------------


def lark_bot(request: web.Request, body: bytes) -> str | None:
    """A custom bot takes msg_type interactive with a card header and elements."""
    doc = _json(request, body)
    if isinstance(doc, str):
        return doc
    card = doc.get("card", {})
    if doc.get("msg_type") != "interactive" or "header" not in card or not card.get("elements"):
        return "19002 params error"
    return None


async def test_lark_card(transport: Transport, tmp_path: Path) -> None:
    receiver = await checking(lark_bot)
    try:
        provider = await build(
            "lark", receiver.url + "/open-apis/bot/v2/hook/x", transport, tmp_path
        )
        await provider.post(EVENT)
        await provider.post(INFO)
    finally:
        await receiver.stop()
    error, info = receiver.requests
    assert error.status == 202 and error.path == "/open-apis/bot/v2/hook/x"
    content = f"**{MSG}**\n\n" + "".join(f"{k}: {v}\n" for k, v in META.items())
    assert error.json() == {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {
                "title": {"tag": "plain_text", "content": "🚨 helmrelease/podinfo.apps"},
                "template": "red",
            },
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": content}}],
        },
    }
    assert info.json()["card"]["header"]["template"] == "turquoise"


# -- zulip -----------------------------------------------------------------------------------

WARNING = "\u26a0\ufe0f"  # Flux's emoji for an error
BOT = base64.b64encode(b"flux-bot@zulip.example.com:zulip-api-key").decode()


def zulip_api(request: web.Request, body: bytes) -> str | None:
    """POST /api/v1/messages, basic auth, a form with type, to, topic and content."""
    if request.method != "POST" or request.path != "/api/v1/messages":
        return f"no route {request.method} {request.path}"
    if request.headers.get("Authorization") != f"Basic {BOT}":
        return "401 invalid API key"
    if request.content_type != "application/x-www-form-urlencoded":
        return "not a form"
    form = parse_qs(body.decode(), strict_parsing=True)
    if sorted(form) != ["content", "to", "topic", "type"] or form["type"] != ["stream"]:
        return "missing or unknown fields"
    return None


async def test_zulip_stream_message(transport: Transport, tmp_path: Path) -> None:
    receiver = await checking(zulip_api)
    try:
        provider = await build(
            "zulip",
            receiver.url + "/ignored/path",
            transport,
            tmp_path,
            channel="flux/alerts",
            secret={"username": "flux-bot@zulip.example.com", "password": "zulip-api-key"},
        )
        await provider.post(EVENT)
    finally:
        await receiver.stop()
    (request,) = receiver.requests
    assert request.status == 202, request.body
    # Go's url.Values.Encode: keys sorted.
    assert request.body.decode().split("&")[0].startswith("content=")
    form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    metadata = "".join(f"* `{k}`: {v}\n" for k, v in META.items())
    assert form == {
        "type": "stream",
        "to": "flux",
        "topic": "alerts",
        "content": f"## Flux Status\n\n{WARNING} HelmRelease/apps/podinfo\n\n"
        f"{MSG}\n\nMetadata:\n{metadata}",
    }


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"channel": "flux"}, "channel must be <stream>/<topic>"),
        ({"channel": "flux/alerts"}, "needs the bot's e-mail and API key"),
    ],
)
async def test_zulip_refuses_what_flux_refuses(
    spec: dict[str, str], problem: str, transport: Transport
) -> None:
    data = {"name": "z", "type": "zulip", "address": "https://zulip.example.com", **spec}
    provider = await open_provider(ProviderSpec.model_validate(data), ProviderDeps(transport))
    assert isinstance(provider, UnavailableProvider)
    assert problem in provider.reason


async def test_a_receiver_that_refuses_the_shape_fails_the_delivery(
    transport: Transport, tmp_path: Path
) -> None:
    """The checking receivers do refuse: a zulip post to the Datadog API is a 400."""
    receiver = await checking(datadog_api)
    try:
        provider = await build(
            "zulip",
            receiver.url,
            transport,
            tmp_path,
            channel="flux/alerts",
            secret={"username": "u", "password": "p"},
        )
        with pytest.raises(DeliveryError, match="answered 400: no route POST /api/v1/messages"):
            await provider.post(EVENT)
    finally:
        await receiver.stop()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"code": 19024, "data": {}, "msg": "Key Words Not Found"}, "code 19024: Key Words"),
        ({"StatusCode": 19021, "StatusMessage": "sign match fail"}, "code 19021: sign match"),
        ({"code": 0, "data": {}, "msg": "success"}, None),
        ({"StatusCode": 0, "StatusMessage": "success"}, None),
    ],
)
async def test_lark_reads_the_bots_code_behind_a_200(
    answer: dict[str, Any], error: str | None, transport: Transport, tmp_path: Path
) -> None:
    """A custom bot's refusal can come with HTTP 200 and only its JSON code says so."""
    async with Receiver() as receiver:
        receiver.default = (200, {"Content-Type": "application/json"}, orjson.dumps(answer))
        provider = await build(
            "lark", receiver.url + "/open-apis/bot/v2/hook/x", transport, tmp_path
        )
        if error is None:
            await provider.post(EVENT)
        else:
            with pytest.raises(DeliveryError, match=error) as raised:
                await provider.post(EVENT)
            assert not raised.value.retryable
