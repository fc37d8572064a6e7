"""A local webhook receiver for the notify tests, and the tests of the receiver itself.

The notify integration modules import ``Receiver`` from here (pytest puts
this directory on ``sys.path``): an aiohttp server on 127.0.0.1:0 that
records every request and answers from a script (a status, or a status with
headers and a body), then with the default answer. It also serves as an
HTTP forward proxy: a request in absolute form keeps its target host in
``Recorded.url``.

``strict(service)`` makes it refuse what the real service refuses, with that
service's documented limit and error shape, so a provider that builds an
oversized payload fails its test instead of passing against a lenient fake.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

Answer = int | tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Recorded:
    method: str
    url: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    status: int
    peer_cert: dict[str, Any] | None

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records requests; ``answer(...)`` scripts the next statuses."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        port: int = 0,
    ) -> None:
        self.ssl_context = ssl_context
        self.port = port
        self.requests: list[Recorded] = []
        self.script: deque[Answer] = deque()
        self.default: Answer = 200
        self.hold: asyncio.Event | None = None
        self.on_request: Callable[[web.Request], Awaitable[Answer | None]] | None = None
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def answer(self, *answers: Answer) -> None:
        self.script.extend(answers)

    @property
    def delivered(self) -> list[Recorded]:
        """Requests answered with a 2xx: what the receiver actually took."""
        return [r for r in self.requests if 200 <= r.status < 300]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.hold is not None:
            await self.hold.wait()
        answer: Answer | None = None
        if self.on_request is not None:
            answer = await self.on_request(request)
        if answer is None:
            answer = self.script.popleft() if self.script else self.default
        status, headers, payload = (answer, {}, b"") if isinstance(answer, int) else answer
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        self.requests.append(
            Recorded(
                method=request.method,
                url=str(request.url),
                path=request.path,
                headers=request.headers,
                body=body,
                status=status,
                peer_cert=peer,
            )
        )
        async with self._arrived:
            self._arrived.notify_all()
        return web.Response(status=status, headers=headers, body=payload)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Receiver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Recorded]:
        """Wait until ``count`` requests arrived (any status)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _json_answer(status: int, body: Any) -> Answer:
    return (status, {"Content-Type": "application/json"}, json.dumps(body).encode())


def _discord(body: bytes) -> Answer | None:
    """Discord's embed limits (developers/docs/resources/message#embed-object-embed-limits)."""
    errors: dict[str, Any] = {}
    for n, attachment in enumerate(json.loads(body).get("attachments", [])):
        fields = attachment.get("fields", [])
        texts = [attachment.get("author_name", ""), attachment.get("text", "")]
        texts += [t for f in fields for t in (f["title"], f["value"])]
        problems = [
            len(attachment.get("author_name", "")) > 256,
            len(attachment.get("text", "")) > 4096,
            len(fields) > 25,
            any(len(f["title"]) > 256 or len(f["value"]) > 1024 for f in fields),
            sum(len(t) for t in texts) > 6000,
        ]
        if any(problems):
            code = "BASE_TYPE_MAX_LENGTH"
            errors[str(n)] = {
                "_errors": [{"code": code, "message": "Embed size exceeds maximum size of 6000"}]
            }
    if not errors:
        return None
    return _json_answer(
        400, {"code": 50035, "errors": {"embeds": errors}, "message": "Invalid Form Body"}
    )


def _telegram(body: bytes) -> Answer | None:
    """sendMessage: 1-4096 characters after entities parsing, counted in UTF-16 code units."""
    text = json.loads(body)["text"]
    parsed = re.sub(r"\\(.)", r"\1", text).replace("*", "")
    if 1 <= _utf16(parsed) <= 4096:
        return None
    description = (
        "Bad Request: message is too long" if parsed else "Bad Request: message text is empty"
    )
    return _json_answer(400, {"ok": False, "error_code": 400, "description": description})


def _webex(body: bytes) -> Answer | None:
    """Create a Message: markdown of at most 7439 bytes; Webex's error body shape."""
    if len(json.loads(body)["markdown"].encode()) <= 7439:
        return None
    message = "Message length exceeds the maximum of 7439 bytes"
    return _json_answer(
        400, {"message": message, "errors": [{"description": message}], "trackingId": "strict"}
    )


def _opsgenie(body: bytes) -> Answer | None:
    """Create Alert: message 130, alias 512, description 15,000, source 100, details 8000."""
    alert = json.loads(body)
    details = sum(len(k) + len(v) for k, v in alert.get("details", {}).items())
    limits = {"message": 130, "alias": 512, "description": 15_000, "source": 100}
    over = [f for f, limit in limits.items() if len(alert.get(f, "")) > limit]
    if details > 8000:
        over.append("details")
    if not over:
        return None
    return _json_answer(
        422,
        {"message": f"Request body is not processable: {', '.join(over)}", "took": 0.0},
    )


def _size(limit: int, answer: Answer) -> Callable[[bytes], Answer | None]:
    return lambda body: None if len(body) <= limit else answer


# Per service: a check of the request body that returns the refusal, or None to take it.
STRICT: dict[str, Callable[[bytes], Answer | None]] = {
    "discord": _discord,
    "telegram": _telegram,
    "webex": _webex,
    "opsgenie": _opsgenie,
    # Teams: "The size limit for the messages is 28 KB", measured as UTF-16; 413.
    "msteams": lambda body: None if 2 * _utf16(body.decode()) <= 28 * 1024 else 413,
    # Google Chat: messages up to 32,000 bytes; Google's error JSON.
    "googlechat": _size(
        32_000,
        _json_answer(
            400,
            {"error": {"code": 400, "message": "Message too large", "status": "INVALID_ARGUMENT"}},
        ),
    ),
    # Matrix: events up to 65,536 bytes; the content alone must leave room for the envelope.
    "matrix": _size(
        65_536 - 4_096, _json_answer(413, {"errcode": "M_TOO_LARGE", "error": "event too large"})
    ),
    # Lark custom bots: request bodies up to 20 KB.
    "lark": _size(20 * 1024, 400),
}


def strict(service: str) -> Callable[[web.Request], Awaitable[Answer | None]]:
    """An ``on_request`` hook refusing what ``service`` refuses; None lets the script answer."""
    check = STRICT[service]

    async def hook(request: web.Request) -> Answer | None:
        return check(await request.read())

    return hook


async def test_receiver_records_and_follows_its_script() -> None:
    async with Receiver() as receiver, aiohttp.ClientSession() as session:
        receiver.answer(503, (429, {"Retry-After": "1"}, b"slow down"))
        statuses = []
        for _ in range(3):
            async with session.post(receiver.url + "/hook?x=1", data=b"{}") as resp:
                statuses.append(resp.status)
        assert statuses == [503, 429, 200]
        assert [r.path for r in receiver.requests] == ["/hook"] * 3
        assert len(receiver.delivered) == 1


def _discord_body(author: int) -> dict[str, Any]:
    return {"attachments": [{"author_name": "x" * author, "text": "", "fields": []}]}


@pytest.mark.parametrize(
    ("service", "refused", "taken"),
    [
        ("discord", _discord_body(257), _discord_body(256)),
        ("telegram", {"text": "😀" * 2049}, {"text": "😀" * 2048}),
        ("webex", {"markdown": "日" * 2480}, {"markdown": "日" * 2479}),
        ("opsgenie", {"message": "m", "details": {"k": "v" * 8000}}, {"message": "m" * 130}),
        ("msteams", {"t": "x" * 14 * 1024}, {"t": "x" * 14 * 1000}),
        ("googlechat", {"t": "x" * 32_000}, {"t": "x" * 31_000}),
        ("matrix", {"body": "x" * 65_536}, {"body": "x" * 60_000}),
        ("lark", {"t": "x" * 20 * 1024}, {"t": "x" * 19 * 1024}),
    ],
)
async def test_strict_receiver_refuses_what_the_service_refuses(
    service: str, refused: dict[str, Any], taken: dict[str, Any]
) -> None:
    async with Receiver() as receiver, aiohttp.ClientSession() as session:
        receiver.on_request = strict(service)
        async with session.post(receiver.url + "/hook", json=refused) as resp:
            assert 400 <= resp.status < 500
        async with session.post(receiver.url + "/hook", json=taken) as resp:
            assert resp.status == 200
