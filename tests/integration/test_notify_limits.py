"""Every provider with production-sized input, against receivers as strict as the real services.

A Helm error of kilobytes (multi-line, Japanese, emoji) in both the message
and the ``error`` metadata, a 253-character release in a 63-character
namespace, a guardrail over 200 releases, and sixty metadata keys: a
receiver that refuses the payload loses the alert, so each must arrive,
with what was cut marked as cut.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_notify_providers import CASES, FACTORY, TOKEN, Case, build
from test_notify_receiver import STRICT, Receiver, strict

from fluxwatch.notify.errors import DeliveryError
from fluxwatch.notify.event import TRUNCATION_MARK, Event, InvolvedObject
from fluxwatch.notify.providers.discord import discord_payload
from fluxwatch.notify.providers.telegram import MAX_TEXT, telegram_text
from fluxwatch.notify.transport import RetryPolicy, Transport

LONG_HR = InvolvedObject.helmrelease("n" * 63, "r" * 253, uid="long-uid")
HELM_ERROR = "".join(
    f"Helm upgrade failed: line {i}: リソース Deployment/web の準備がタイムアウトしました 🚨🔥 "
    "context deadline exceeded\n"
    for i in range(80)
)
RECOVERY_FAILED = FACTORY.recovery_failed(
    LONG_HR, strategy="rollback", attempt=3, max_attempts=3, error=HELM_ERROR, revision="1.2.3"
)
GUARDRAIL = FACTORY.guardrail_tripped(
    InvolvedObject.helmrelease("flux-system", "fluxwatch"),
    guardrail="batch",
    detail="200 stuck at once, over the limit of 10",
    releases=[f"{'n' * 63}/{'r' * 240}{i:03}" for i in range(200)],
    incident="inc-1",
)
MANY_KEYS = RECOVERY_FAILED.with_metadata(
    {f"team.example.com/key{i:02}": "v" * 200 for i in range(60)}
)
ODD_EVENTS = {"recovery-failed": RECOVERY_FAILED, "guardrail": GUARDRAIL, "many-keys": MANY_KEYS}


def test_the_odd_input_is_production_sized() -> None:
    assert len(HELM_ERROR.encode()) > 6 * 1024
    assert len(RECOVERY_FAILED.object_name) > 256
    assert len(GUARDRAIL.message) > 4096
    assert len(MANY_KEYS.metadata) > 60


@pytest.mark.parametrize("event", ODD_EVENTS.values(), ids=ODD_EVENTS.keys())
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.type)
async def test_every_provider_delivers_production_sized_events(
    case: Case, event: Event, tmp_path: Path
) -> None:
    transport = Transport(retry=RetryPolicy(max_retries=0))
    async with Receiver() as receiver:
        if case.type in STRICT:
            receiver.on_request = strict(case.type)
        provider = await build(
            case.type,
            receiver.url + case.address_path,
            tmp_path,
            transport,
            secret=case.secret,
            **case.spec,
        )
        try:
            await provider.post(event)
        finally:
            await provider.close()
            await transport.close()
        (request,) = receiver.requests
        assert request.status == 200, request.body[:300]


def test_discord_cuts_each_text_to_its_embed_limit_and_says_so() -> None:
    (attachment,) = discord_payload(MANY_KEYS)["attachments"]
    assert len(attachment["author_name"]) == 256
    assert attachment["author_name"].endswith(TRUNCATION_MARK)
    fields = attachment["fields"]
    assert len(fields) <= 25
    assert fields[-1] == {
        "title": "…",
        "value": f"{len(MANY_KEYS.metadata) - len(fields) + 1} more metadata keys",
        "short": False,
    }
    assert TRUNCATION_MARK in attachment["text"]


def test_discord_leaves_a_small_event_alone() -> None:
    small = FACTORY.new(
        InvolvedObject.helmrelease("apps", "web"),
        "error",
        "StuckDetected",
        "stuck",
        {"a": "1", "b": "2"},
    )
    (attachment,) = discord_payload(small)["attachments"]
    assert attachment["text"] == "stuck"
    assert [f["title"] for f in attachment["fields"]] == ["a", "b"]
    assert TRUNCATION_MARK not in str(attachment)


def test_telegram_counts_utf16_code_units() -> None:
    emoji = FACTORY.new(LONG_HR, "error", "RecoveryFailed", "🔥" * 4000)
    text = telegram_text(emoji)
    assert len(text.encode("utf-16-le")) // 2 <= MAX_TEXT
    assert text.endswith(TRUNCATION_MARK.replace("(", r"\(").replace(")", r"\)"))


async def test_a_refusal_is_final_and_names_the_reason(tmp_path: Path) -> None:
    """A strict fake's refusal is a 4xx: one request, and the service's reason in the error."""
    transport = Transport(retry=RetryPolicy(max_retries=3))
    async with Receiver() as receiver:
        receiver.on_request = strict("telegram")
        provider = await build(
            "telegram", receiver.url, tmp_path, transport, secret={"token": TOKEN}, channel="1"
        )
        with pytest.raises(DeliveryError, match=r"answered 400.*message is too long") as err:
            await provider.send_json(
                {"chat_id": "1", "text": "x" * 5000}, url=receiver.url + "/sendMessage"
            )
        assert not err.value.retryable
        assert len(receiver.requests) == 1
        await transport.close()
