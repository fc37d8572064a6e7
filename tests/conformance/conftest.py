"""Conformance cases: each test sends one request (or a short sequence) to the embedded
cluster and asserts the answer a real kube-apiserver v1.32 gives: status code, Status
reason and message, and the object. The name of each test is the behaviour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from fluxwatch.sim.apiserver import ApiServer


class Api:
    """A thin JSON client: ``await api.post(path, body)`` -> (status, body)."""

    def __init__(self, session: aiohttp.ClientSession, server: ApiServer) -> None:
        self.session = session
        self.server = server

    async def request(
        self, method: str, path: str, body: Any = None, **kwargs: Any
    ) -> tuple[int, Any]:
        if body is not None:
            kwargs["json"] = body
        async with self.session.request(method, path, **kwargs) as resp:
            text = await resp.read()
            self.last_headers = resp.headers
            try:
                return resp.status, await resp.json(content_type=None)
            except ValueError:
                return resp.status, text.decode()

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("POST", path, body, **kwargs)

    async def put(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("PUT", path, body, **kwargs)

    async def patch(
        self, path: str, body: Any, content_type: str = "application/merge-patch+json"
    ) -> tuple[int, Any]:
        import orjson

        return await self.request(
            "PATCH", path, data=orjson.dumps(body), headers={"Content-Type": content_type}
        )

    async def delete(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("DELETE", path, **kwargs)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    """A fresh embedded cluster (only the namespaces a new cluster has) and an admin client."""
    async with (
        ApiServer() as server,
        aiohttp.ClientSession(
            base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
        ) as session,
    ):
        yield Api(session, server)
