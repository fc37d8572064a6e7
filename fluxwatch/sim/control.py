"""The embedded cluster's fault hooks over HTTP, so a person can replay a fault by hand.

``fluxwatch sim serve`` serves, beside the Kubernetes API, a control path that
no real kube-apiserver has: ``/fluxwatch-sim/faults``. It answers only
requests from a loopback address bearing the admin token, since whoever can
reach it can break the cluster for every client. Each hook is one of
:class:`~fluxwatch.sim.apiserver.Faults`' methods:

- ``GET /fluxwatch-sim/faults``: the latency and the failures still queued;
- ``POST .../drop-watches[?clean=true]``: cut every open watch, abruptly (as a
  dying server does) or as a server-side timeout ends one;
- ``POST .../fail?n=N&code=C[&retryAfter=S][&verb=V][&resource=R]``: fail the
  next N API requests as a real server pushes back with status C (429, 500,
  503 or 504; a 429 or 503 carries ``Retry-After: S``), only
  those of verb V (``list``, ``watch``, ``patch``...) and resource R
  (``helmreleases.helm.toolkit.fluxcd.io``) when given;
- ``POST .../cut?n=N[&served=false][&verb=V][&resource=R]``: cut the connection
  of the next N API requests instead of answering, after serving them (a write
  lands, its answer is lost) or, with ``served=false``, before;
- ``POST .../latency?seconds=S``: add S seconds before every API request;
- ``POST .../compact``: expire the watch history, so resuming is a 410;
- ``POST .../clear``: no failures queued, no latency.

Answers are JSON: what the hook did (``{"dropped": 2}``) or the faults' state.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from fluxwatch.sim.apiserver import ApiServer
    from fluxwatch.sim.rbac import User

PREFIX = "/fluxwatch-sim/faults"


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def handle(server: ApiServer, request: web.Request, user: User) -> web.Response:
    """Run one control request; the caller has authenticated ``user``."""
    try:
        if not loopback(request.remote):
            raise ControlError(403, f"{PREFIX} answers loopback clients only")
        if not user.is_admin:
            raise ControlError(403, f"{PREFIX} needs the admin token")
        hook = request.path[len(PREFIX) :].strip("/")
        if hook == "":
            if request.method != "GET":
                raise ControlError(405, f"GET {PREFIX} for the state; POST to a hook")
            return web.json_response(state(server))
        action = _HOOKS.get(hook)
        if action is None:
            raise ControlError(404, f"no hook {hook!r}; hooks: {', '.join(_HOOKS)}")
        if request.method != "POST":
            raise ControlError(405, f"POST {PREFIX}/{hook}")
        answer = action(server, _Query(request.query))
        return web.json_response({**answer, "faults": state(server)})
    except ControlError as err:
        return web.json_response({"error": err.message}, status=err.status)


def state(server: ApiServer) -> dict[str, Any]:
    return {
        "latency": server.faults.latency,
        "failures": [
            {
                "remaining": f.remaining,
                "code": f.code,
                "retryAfter": f.retry_after,
                "verb": f.verb,
                "resource": f.resource,
            }
            for f in server.faults._failures
        ],
        "cuts": [
            {"remaining": f.remaining, "served": f.served, "verb": f.verb, "resource": f.resource}
            for f in server.faults._cuts
        ],
    }


class _Query:
    """Query parameters read with a clear 400 for a bad one."""

    def __init__(self, query: Any) -> None:
        self.query = query

    def number(self, name: str, kind: type[int] | type[float], default: Any = None) -> Any:
        text = self.query.get(name)
        if text is None:
            if default is None:
                raise ControlError(400, f"{name}: required")
            return default
        try:
            value = kind(text)
        except ValueError:
            raise ControlError(400, f"{name}: expected a number, got {text!r}") from None
        if value < 0:
            raise ControlError(400, f"{name}: expected a number >= 0, got {text!r}")
        return value

    def text(self, name: str) -> str | None:
        return self.query.get(name) or None


def _drop(server: ApiServer, q: _Query) -> dict[str, Any]:
    clean = (q.text("clean") or "false").lower() == "true"
    return {"dropped": server.faults.drop_watches(clean=clean)}


def _fail(server: ApiServer, q: _Query) -> dict[str, Any]:
    n = q.number("n", int, 1)
    code = q.number("code", int, 500)
    retry = q.number("retryAfter", int, -1)
    try:
        server.faults.fail_next(
            n,
            code,
            retry_after=None if retry < 0 else retry,
            verb=q.text("verb"),
            resource=q.text("resource"),
        )
    except ValueError as exc:
        raise ControlError(400, str(exc)) from None
    return {"queued": n}


def _cut(server: ApiServer, q: _Query) -> dict[str, Any]:
    n = q.number("n", int, 1)
    served = (q.text("served") or "true").lower() != "false"
    try:
        server.faults.cut_next(n, served=served, verb=q.text("verb"), resource=q.text("resource"))
    except ValueError as exc:
        raise ControlError(400, str(exc)) from None
    return {"queued": n}


def _latency(server: ApiServer, q: _Query) -> dict[str, Any]:
    server.faults.latency = q.number("seconds", float)
    return {}


def _compact(server: ApiServer, _q: _Query) -> dict[str, Any]:
    server.faults.compact()
    return {"compactedAt": server.store.resource_version}


def _clear(server: ApiServer, _q: _Query) -> dict[str, Any]:
    server.faults.clear()
    return {}


_HOOKS: dict[str, Callable[[ApiServer, _Query], dict[str, Any]]] = {
    "drop-watches": _drop,
    "fail": _fail,
    "cut": _cut,
    "latency": _latency,
    "compact": _compact,
    "clear": _clear,
}
