"""A local webhook receiver for the notify tests, and the tests of the receiver itself.

The notify integration modules import ``Receiver`` from here (pytest puts
this directory on ``sys.path``): an aiohttp server on 127.0.0.1:0 that
records every request and answers from a script (a status, or a status with
headers and a body), then with the default answer. It also serves as an
HTTP forward proxy: a request in absolute form keeps its target host in
``Recorded.url``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
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
