"""``discord``: the Slack payload to the Slack-compatible ``/slack`` endpoint, cut to fit embeds.

Discord turns each Slack attachment into an embed and refuses the whole
message (400, code 50035 "Invalid Form Body") when an embed breaks a limit
(https://discord.com/developers/docs/resources/message#embed-object-embed-limits):
author name 256 characters, description 4096, at most 25 fields, field name
256, field value 1024, and 6000 characters over all of an embed's texts.
Flux's notification-controller sends the Slack payload uncut, so a long
HelmRelease name (253 characters plus its namespace) or a Helm error of a
few kilobytes loses the alert there. fluxwatch cuts each text, marked as
cut, and says how many metadata fields did not fit. Lengths are counted in
UTF-16 code units, which is never fewer than Discord's characters.
"""

from __future__ import annotations

from typing import Any

from fluxwatch.notify import markup
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers.base import (
    Provider,
    fit_message,
    fit_text,
    metadata_items,
    utf16_length,
    with_path_suffix,
)
from fluxwatch.notify.providers.slack import slack_payload

MAX_AUTHOR_NAME = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_EMBED_TOTAL = 6000
# Room kept for the message when metadata is large; what the note field costs.
_MESSAGE_RESERVE = 1000
_NOTE_COST = 40


def _fit(text: str, limit: int) -> str:
    return fit_text(text, limit, escape=markup.discord, measure=utf16_length)


def _fields(event: Event, budget: int) -> list[dict[str, Any]]:
    """The metadata as fields, as many as fit in ``budget`` units and Discord's 25.

    When some do not fit, the last place goes to a field that says how many
    keys were left out, so the cut is visible.
    """
    pairs = [(_fit(k, MAX_FIELD_NAME), _fit(v, MAX_FIELD_VALUE)) for k, v in metadata_items(event)]
    fields: list[dict[str, Any]] = [
        {"title": title, "value": value, "short": False} for title, value in pairs
    ]
    costs = [utf16_length(title) + utf16_length(value) for title, value in pairs]
    if len(fields) <= MAX_FIELDS and sum(costs) <= budget:
        return fields
    budget -= _NOTE_COST
    kept = 0
    while kept < MAX_FIELDS - 1 and costs[kept] <= budget:
        budget -= costs[kept]
        kept += 1
    note = {"title": "…", "value": f"{len(fields) - kept} more metadata keys", "short": False}
    return [*fields[:kept], note]


def embed_length(payload: dict[str, Any]) -> int:
    """What Discord adds up against its 6000: author, description and every field's texts."""
    (attachment,) = payload["attachments"]
    texts = [attachment.get("author_name", ""), attachment.get("text", "")]
    for f in attachment.get("fields", []):
        texts += [f["title"], f["value"]]
    return sum(utf16_length(t) for t in texts)


def discord_payload(event: Event, *, channel: str = "", username: str = "") -> dict[str, Any]:
    author = _fit(event.object_name, MAX_AUTHOR_NAME)
    budget = MAX_EMBED_TOTAL - utf16_length(author) - _MESSAGE_RESERVE
    fields = _fields(event, budget)

    def build(e: Event) -> dict[str, Any]:
        payload = slack_payload(e, channel=channel, username=username, escape=markup.discord)
        attachment = payload["attachments"][0]
        attachment["author_name"] = author
        attachment["text"] = _fit(e.message, MAX_DESCRIPTION)
        attachment["fallback"] = f"{author}: {attachment['text']}"
        if fields:
            attachment["fields"] = fields
        return payload

    return fit_message(event, build, embed_length, MAX_EMBED_TOTAL)


class Discord(Provider):
    type = "discord"

    async def post(self, event: Event) -> None:
        payload = discord_payload(
            event, channel=self.settings.channel, username=self.settings.username
        )
        await self.send_json(payload, url=with_path_suffix(self.address, "/slack"))
