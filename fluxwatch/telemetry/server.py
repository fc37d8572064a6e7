"""The daemon's own HTTP endpoints: ``/metrics``, ``/healthz`` and ``/readyz``.

``/healthz`` answers 200 while the event loop turns and every root task is
running; ``/readyz`` answers 200 while every informer is ready (its cache
synced and a watch live or ended within a grace period: see
:meth:`~fluxwatch.kube.informer.Informer.ready`). Both list their checks in the
body so a failing probe says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], bool]


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return (host or "0.0.0.0", int(port))


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
        addrs = {"metrics": self.metrics_addr, "health": self.health_addr}
        if addrs["metrics"] == addrs["health"] and not addrs["metrics"].endswith(":0"):
            routes = {"metrics": routes["metrics"] + routes["health"]}
        for name, table in routes.items():
            app = web.Application()
            app.add_routes(table)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            host, port = split_addr(addrs[name])
            site = web.TCPSite(runner, host, port)
            await site.start()
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            self.ports[name] = sockets[0].getsockname()[1] if sockets else port
            self._runners.append(runner)

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
