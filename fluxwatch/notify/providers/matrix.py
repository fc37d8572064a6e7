"""``matrix``: an ``m.text`` message PUT into the room named by ``channel``.

The transaction id is a hash of the event, so a retried request after a lost
answer is the same transaction and the homeserver does not post it twice.
The body is plain text; an empty ``m.mentions`` and a broken ``@room`` tell
clients that nobody is mentioned. The homeserver refuses an event over 65,536
bytes of canonical JSON, envelope and signatures included (Matrix
client-server spec, "Size limits", 413 ``M_TOO_LARGE``); the message is cut
until the content fits in 60,000 bytes, leaving room for the envelope.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from fluxwatch.notify import markup
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import (
    Provider,
    fit_message,
    is_error,
    json_size,
    metadata_items,
)

MAX_CONTENT_BYTES = 60_000


def matrix_text(event: Event) -> str:
    icon = "🔴" if is_error(event) else "🟢"
    lines = [f"{icon} {markup.matrix(event.object_name)}", markup.matrix(event.message)]
    items = metadata_items(event)
    if items:
        lines.append("Metadata:")
        lines.extend(f"{markup.matrix(key)}: {markup.matrix(value)}" for key, value in items)
    return "\n".join(lines)


def matrix_content(event: Event) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": matrix_text(event), "m.mentions": {}}


def transaction_id(event: Event) -> str:
    return hashlib.sha256(event.to_json()).hexdigest()[:32]


class Matrix(Provider):
    type = "matrix"
    needs_token = True
    needs_channel = True

    async def post(self, event: Event) -> None:
        room = quote(self.settings.channel, safe="")
        url = (
            f"{self.address.rstrip('/')}/_matrix/client/r0/rooms/{room}"
            f"/send/m.room.message/{transaction_id(event)}"
        )
        payload = fit_message(event, matrix_content, json_size, MAX_CONTENT_BYTES)
        await self.send_json(
            payload,
            url=url,
            method="PUT",
            headers={"Authorization": f"Bearer {self.settings.token}"},
        )
