"""A local alert receiver for the demo: accepts webhook POSTs, records and prints them.

It answers 202 like notification-controller's event endpoint and keeps every
body it got, so the demo can say how many alerts arrived and which. A
``latency`` makes it answer as late as a remote webhook would (the alert
benchmark's slow receiver).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web


class Receiver:
    def __init__(
        self,
        on_alert: Callable[[dict[str, Any]], None] | None = None,
        host: str = "127.0.0.1",
        latency: float = 0.0,
    ) -> None:
        self.host = host
        self.on_alert = on_alert
        self.latency = latency
        self.received: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.latency:
            await asyncio.sleep(self.latency)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return web.Response(status=400, text="not JSON")
        self.received.append(doc)
        if self.on_alert is not None:
            self.on_alert(doc)
        return web.Response(status=202)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
