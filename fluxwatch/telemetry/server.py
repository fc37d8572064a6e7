"""The daemon's own HTTP endpoints: ``/metrics``, ``/healthz`` and ``/readyz``.

``/healthz`` answers 200 while the event loop turns and every root task is
running; ``/readyz`` answers 200 while every informer is ready (its cache
synced and a watch live or ended within a grace period: see
:meth:`~fluxwatch.kube.informer.Informer.ready`). Both list their checks in the
body so a failing probe says why. Each address may be IPv4, IPv6 or both
(``fluxwatch.telemetry.listen``); an IPv6-primary cluster probes the pod's IPv6
address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from fluxwatch.telemetry.listen import bind, parse_listen_addr

Check = Callable[[], bool]


class TelemetryServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        metrics_addr: str,
        health_addr: str,
        live: Mapping[str, Check],
        ready: Mapping[str, Check],
    ) -> None:
        self.registry = registry
        self.metrics_addr = metrics_addr
        self.health_addr = health_addr
        self.live = live
        self.ready = ready
        self._runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}
        # What each server listens on (family-specific sockaddrs), for logs and tests.
        self.sockets: dict[str, list[tuple[Any, ...]]] = {}

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @staticmethod
    def _probe(checks: Mapping[str, Check]) -> web.Response:
        results = {name: check() for name, check in checks.items()}
        lines = [
            f"[{'+' if ok else '-'}]{name} {'ok' if ok else 'failed'}"
            for name, ok in results.items()
        ]
        healthy = all(results.values())
        lines.append("ok" if healthy else "failed")
        return web.Response(text="\n".join(lines) + "\n", status=200 if healthy else 503)

    async def _healthz(self, _request: web.Request) -> web.Response:
        return self._probe(self.live)

    async def _readyz(self, _request: web.Request) -> web.Response:
        return self._probe(self.ready)

    async def start(self) -> None:
        routes = {
            "metrics": [web.get("/metrics", self._metrics)],
            "health": [web.get("/healthz", self._healthz), web.get("/readyz", self._readyz)],
        }
        addrs = {
            "metrics": parse_listen_addr(self.metrics_addr),
            "health": parse_listen_addr(self.health_addr),
        }
        # One address for both (Flux allows it) is one server; ":0" twice is two ports.
        shared = addrs["metrics"] == addrs["health"] and addrs["metrics"].port != 0
        if shared:
            routes = {"metrics": routes["metrics"] + routes["health"]}
        for name, table in routes.items():
            app = web.Application()
            app.add_routes(table)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            self._runners.append(runner)
            # A name resolves in getaddrinfo, which blocks: off the loop.
            sockets = await asyncio.to_thread(bind, addrs[name])
            for sock in sockets:
                await web.SockSite(runner, sock).start()
            self.ports[name] = sockets[0].getsockname()[1]
            self.sockets[name] = [s.getsockname() for s in sockets]
        if shared:
            self.ports["health"] = self.ports["metrics"]
            self.sockets["health"] = self.sockets["metrics"]

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
