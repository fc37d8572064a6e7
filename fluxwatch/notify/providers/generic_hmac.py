"""``generic-hmac``: ``generic`` plus ``X-Signature: sha256=<hex>``, an HMAC of the body.

The key is the secret's ``token``; the receiver checks the signature over the
exact bytes it got, before parsing them.
"""

from __future__ import annotations

import hashlib
import hmac

from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.generic import Generic


def signature(key: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


class GenericHMAC(Generic):
    type = "generic-hmac"
    needs_token = True

    def headers(self, event: Event, body: bytes) -> dict[str, str]:
        return {**super().headers(event, body), "X-Signature": signature(self.settings.token, body)}
