"""Every provider against a local receiver: the exact request, headers and body on the wire.

Wire formats are FLUX-FACTS §6. Providers are built the way the router
builds them (spec plus a mounted ``secretPath``), and posted one fixed event.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import shlex
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_notify_receiver import Receiver

from fluxwatch.notify.config import ProviderSpec
from fluxwatch.notify.errors import Deduplicated, DeliveryError, Skipped
from fluxwatch.notify.event import EventFactory, InvolvedObject
from fluxwatch.notify.factory import UnavailableProvider, open_provider
from fluxwatch.notify.providers import Provider, ProviderDeps
from fluxwatch.notify.providers.telegram import MAX_TEXT
from fluxwatch.notify.transport import RetryPolicy, Transport

T0 = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
HR = InvolvedObject.helmrelease("apps", "podinfo", uid="5e6f-uid", resource_version="4711")
FACTORY = EventFactory("fluxwatch-0", now=lambda: T0)
EVENT = FACTORY.stuck_detected(
    HR, age=432, threshold=300, release="apps-podinfo", helm_version=3, revision="6.5.0"
)
MSG = (
    "HelmRelease apps/podinfo has been stuck at Ready=Unknown for 7m12s (threshold 5m0s) "
    "although Helm release apps-podinfo v3 is deployed."
)
META = {
    "age": "7m12s",
    "helmVersion": "3",
    "release": "apps-podinfo",
    "revision": "6.5.0",
    "threshold": "5m0s",
}
WIRE = {
    "involvedObject": {
        "kind": "HelmRelease",
        "namespace": "apps",
        "name": "podinfo",
        "uid": "5e6f-uid",
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "resourceVersion": "4711",
    },
    "severity": "error",
    "timestamp": "2026-03-01T12:00:05Z",
    "message": MSG,
    "reason": "StuckDetected",
    "metadata": META,
    "reportingController": "fluxwatch",
    "reportingInstance": "fluxwatch-0",
}
OBJ = "helmrelease/podinfo.apps"
TOKEN = "t0k3n-abcdef-123456"
SLACK_ATTACHMENT = {
    "color": "danger",
    "author_name": OBJ,
    "text": MSG,
    "mrkdwn_in": ["text"],
    "fallback": f"{OBJ}: {MSG}",
    "fields": [{"title": k, "value": v, "short": False} for k, v in META.items()],
}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport(retry=RetryPolicy(max_retries=0))
    yield t
    await t.close()


def write_secret(path: Path, data: dict[str, str | bytes]) -> Path:
    path.mkdir(parents=True)
    for key, value in data.items():
        (path / key).write_bytes(value if isinstance(value, bytes) else value.encode())
    return path


async def build(
    type_: str,
    address: str | None,
    tmp_path: Path,
    transport: Transport,
    *,
    secret: dict[str, str | bytes] | None = None,
    **spec: Any,
) -> Provider:
    data: dict[str, Any] = {"name": f"test-{type_}", "type": type_, **spec}
    if address is not None:
        data["address"] = address
    if secret is not None:
        data["secretPath"] = str(write_secret(tmp_path / f"secret-{type_}", secret))
    provider = await open_provider(ProviderSpec.model_validate(data), ProviderDeps(transport))
    assert not isinstance(provider, UnavailableProvider), provider.reason
    return provider


@dataclass
class Case:
    type: str
    body: Any
    address_path: str = "/hook"
    path: str = "/hook"
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    secret: dict[str, str | bytes] | None = None
    spec: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case(
        "generic",
        WIRE,
        headers={
            "Gotk-Component": "fluxwatch",
            "X-Team": "payments",
            "Authorization": "Basic " + base64.b64encode(b"fw:pa55w0rd-x").decode(),
        },
        secret={"username": "fw", "password": "pa55w0rd-x", "headers": "X-Team: payments"},
    ),
    Case(
        "slack",
        {"username": "flux-bot", "channel": "#flux", "attachments": [SLACK_ATTACHMENT]},
        address_path="/services/T0/B0/XXXX",
        path="/services/T0/B0/XXXX",
        headers={"Authorization": f"Bearer {TOKEN}"},
        secret={"token": TOKEN},
        spec={"channel": "#flux", "username": "flux-bot"},
    ),
    Case(
        "discord",
        {"username": "fluxwatch", "attachments": [SLACK_ATTACHMENT]},
        address_path="/api/webhooks/1234/abcd",
        path="/api/webhooks/1234/abcd/slack",
    ),
    Case(
        "rocket",
        {"username": "fluxwatch", "channel": "ops", "attachments": [SLACK_ATTACHMENT]},
        spec={"channel": "ops"},
    ),
    Case(
        "msteams",
        {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "msteams": {"width": "Full"},
                        "body": [
                            {
                                "type": "TextBlock",
                                "text": OBJ,
                                "size": "Medium",
                                "weight": "Bolder",
                                "color": "Attention",
                                "wrap": True,
                            },
                            {"type": "TextBlock", "text": MSG, "wrap": True},
                            {
                                "type": "FactSet",
                                "facts": [{"title": k, "value": v} for k, v in META.items()],
                            },
                        ],
                    },
                }
            ],
        },
        address_path="/workflows/123/triggers/manual/paths/invoke",
        path="/workflows/123/triggers/manual/paths/invoke",
    ),
    Case(
        "googlechat",
        {
            "cards": [
                {
                    "header": {"title": OBJ, "subtitle": "fluxwatch"},
                    "sections": [
                        {"widgets": [{"textParagraph": {"text": MSG}}]},
                        {
                            "widgets": [
                                {"keyValue": {"topLabel": k, "content": v}} for k, v in META.items()
                            ]
                        },
                    ],
                }
            ]
        },
    ),
    Case(
        "webex",
        {
            "roomId": "room-1",
            "markdown": (
                f"🔴 **{OBJ}** (StuckDetected)\n\n{MSG}\n\n"
                "- **age**: 7m12s\n- **helmVersion**: 3\n- **release**: apps-podinfo\n"
                "- **revision**: 6.5.0\n- **threshold**: 5m0s"
            ),
        },
        address_path="/v1/messages",
        path="/v1/messages",
        headers={"Authorization": f"Bearer {TOKEN}"},
        secret={"token": TOKEN},
        spec={"channel": "room-1"},
    ),
    Case(
        "telegram",
        {
            "chat_id": "-100123",
            "parse_mode": "MarkdownV2",
            "text": (
                r"🔴 *helmrelease/podinfo\.apps*"
                "\n"
                r"HelmRelease apps/podinfo has been stuck at Ready\=Unknown for 7m12s "
                r"\(threshold 5m0s\) although Helm release apps\-podinfo v3 is deployed\."
                "\n"
                r"\- *age*: 7m12s"
                "\n"
                r"\- *helmVersion*: 3"
                "\n"
                r"\- *release*: apps\-podinfo"
                "\n"
                r"\- *revision*: 6\.5\.0"
                "\n"
                r"\- *threshold*: 5m0s"
            ),
        },
        address_path="",
        path=f"/bot{TOKEN}/sendMessage",
        secret={"token": TOKEN},
        spec={"channel": "-100123"},
    ),
    Case(
        "matrix",
        {
            "msgtype": "m.text",
            "body": f"🔴 {OBJ}\n{MSG}\nMetadata:\n"
            + "\n".join(f"{k}: {v}" for k, v in META.items()),
            "m.mentions": {},
        },
        address_path="",
        path="/_matrix/client/r0/rooms/!room:example.org/send/m.room.message/<txn>",
        method="PUT",
        headers={"Authorization": f"Bearer {TOKEN}"},
        secret={"token": TOKEN},
        spec={"channel": "!room:example.org"},
    ),
    Case(
        "opsgenie",
        {
            "message": f"{OBJ}: StuckDetected",
            "alias": "HelmRelease/apps/podinfo/StuckDetected",
            "description": MSG,
            "source": "fluxwatch-0",
            "tags": ["flux", "fluxwatch", "error"],
            "details": {
                **META,
                "severity": "error",
                "reason": "StuckDetected",
                "reportingController": "fluxwatch",
            },
        },
        address_path="/v2/alerts",
        path="/v2/alerts",
        headers={"Authorization": f"GenieKey {TOKEN}"},
        secret={"token": TOKEN},
    ),
    Case(
        "pagerduty",
        {
            "routing_key": "R0UT1NG",
            "event_action": "trigger",
            "dedup_key": "5e6f-uid",
            "client": "fluxwatch",
            "payload": {
                "summary": f"{OBJ}: {MSG}",
                "source": OBJ,
                "severity": "error",
                "timestamp": "2026-03-01T12:00:05Z",
                "component": "HelmRelease",
                "group": "apps",
                "class": "StuckDetected",
                "custom_details": META,
            },
        },
        address_path="",
        path="/v2/enqueue",
        spec={"channel": "R0UT1NG"},
    ),
    Case(
        "alertmanager",
        [
            {
                "labels": {
                    **META,
                    "alertname": "FluxHelmReleaseStuckDetected",
                    "severity": "error",
                    "reason": "StuckDetected",
                    "kind": "HelmRelease",
                    "name": "podinfo",
                    "namespace": "apps",
                    "reportingcontroller": "fluxwatch",
                },
                "annotations": {"message": MSG},
                "status": "firing",
                "startsAt": "2026-03-01T12:00:05Z",
            }
        ],
        address_path="",
        path="/api/v2/alerts",
    ),
    Case(
        "grafana",
        {
            "time": 1772366405000,
            "when": 1772366405,
            "text": f"{OBJ}: {MSG}",
            "tags": ["flux", "fluxwatch", "StuckDetected", "error"]
            + [f"{k}: {v}" for k, v in META.items()],
        },
        address_path="/api/annotations",
        path="/api/annotations",
        headers={"Authorization": f"Bearer {TOKEN}"},
        secret={"token": TOKEN},
    ),
    Case(
        "flux",
        {**WIRE, "metadata": {f"helm.toolkit.fluxcd.io/{k}": v for k, v in META.items()}},
        address_path="/",
        path="/",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.type)
async def test_wire_format(
    case: Case, receiver: Receiver, transport: Transport, tmp_path: Path
) -> None:
    provider = await build(
        case.type,
        receiver.url + case.address_path,
        tmp_path,
        transport,
        secret=case.secret,
        **case.spec,
    )
    await provider.post(EVENT)
    (request,) = receiver.requests
    assert request.method == case.method
    if "<txn>" in case.path:
        prefix = case.path.removesuffix("<txn>")
        assert request.path.startswith(prefix)
        assert re.fullmatch(r"[0-9a-f]{32}", request.path.removeprefix(prefix))
    else:
        assert request.path == case.path
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "fluxwatch/0.1.0"
    for name, value in case.headers.items():
        assert request.headers[name] == value
    if "Authorization" not in case.headers:
        assert "Authorization" not in request.headers
    assert request.json() == case.body


# --- markup injection: a Lease holder or release name is text, never markup ---

HOSTILE = "<!here> <https://evil.example|Grafana> [docs](https://evil.example) *b* @everyone"
HOSTILE_EVENT = FACTORY.leader_changed(
    InvolvedObject.lease("flux-system", "helm-controller-leader-election"),
    previous="hc-0",
    holder=HOSTILE,
)


@dataclass
class Injection:
    type: str
    holder: str  # the leaseHolder metadata value as it must arrive
    field: Any  # finds that value in the body
    forbidden: tuple[str, ...]  # raw markup the receiver would interpret
    secret: dict[str, str | bytes] | None = None
    spec: dict[str, Any] = field(default_factory=dict)


def _slack_holder(body: Any) -> str:
    fields = body["attachments"][0]["fields"]
    return next(f["value"] for f in fields if f["title"] == "leaseHolder")


SLACK_FORBIDDEN = ("<!here>", "<https://")
MARKDOWN_HOLDER = (
    r"\<!here\> \<https://evil.example\|Grafana\> \[docs\](https://evil.example) \*b\* @everyone"
)
INJECTIONS = [
    Injection(
        "slack",
        "&lt;!here&gt; &lt;https://evil.example|Grafana&gt; [docs](https://evil.example) *b* "
        "@everyone",
        _slack_holder,
        SLACK_FORBIDDEN,
    ),
    Injection(
        "discord",
        r"&lt;!here&gt; &lt;https://evil.example\|Grafana&gt; \[docs\](https://evil.example) "
        "\\*b\\* @\u2060everyone",
        _slack_holder,
        (*SLACK_FORBIDDEN, "[docs]", "@everyone", "*b*"),
    ),
    Injection(
        "rocket",
        "&lt;!here&gt; &lt;https://evil.example|Grafana&gt; [docs](https://evil.example) *b* "
        "@\u2060everyone",
        _slack_holder,
        (*SLACK_FORBIDDEN, "@everyone"),
    ),
    Injection(
        "msteams",
        MARKDOWN_HOLDER,
        lambda b: b["attachments"][0]["content"]["body"][2]["facts"][1]["value"],
        ("<!here>", "[docs]", "*b*"),
    ),
    Injection(
        "googlechat",
        "&lt;!here&gt; &lt;https://evil.example|Grafana&gt; [docs](https://evil.example) *b* "
        "@everyone",
        lambda b: b["cards"][0]["sections"][1]["widgets"][1]["keyValue"]["content"],
        ("<!here>", "<https://"),
    ),
    Injection(
        "webex",
        MARKDOWN_HOLDER,
        lambda b: b["markdown"].split("**leaseHolder**: ")[1].split("\n")[0],
        ("<!here>", "[docs]", "*b*"),
        secret={"token": TOKEN},
        spec={"channel": "room-1"},
    ),
    Injection(
        "telegram",
        r"<\!here\> <https://evil\.example\|Grafana\> \[docs\]\(https://evil\.example\) "
        r"\*b\* @everyone",
        lambda b: b["text"].split(r"*leaseHolder*: ")[1].split("\n")[0],
        ("[docs]", "*b*", "]("),
        secret={"token": TOKEN},
        spec={"channel": "-100123"},
    ),
    Injection(
        "matrix",
        "<!here> <https://evil.example|Grafana> [docs](https://evil.example) *b* @everyone",
        lambda b: b["body"].split("leaseHolder: ")[1].split("\n")[0],
        (),
        secret={"token": TOKEN},
        spec={"channel": "!room:example.org"},
    ),
]


@pytest.mark.parametrize("case", INJECTIONS, ids=lambda c: c.type)
async def test_event_text_is_escaped_for_the_receivers_format(
    case: Injection, receiver: Receiver, transport: Transport, tmp_path: Path
) -> None:
    """``<!here>``, a lying link or ``@everyone`` in a Lease holder reaches people as text."""
    provider = await build(
        case.type, receiver.url + "/hook", tmp_path, transport, secret=case.secret, **case.spec
    )
    await provider.post(HOSTILE_EVENT)
    (request,) = receiver.requests
    body = request.json()
    assert case.field(body) == case.holder
    for raw in case.forbidden:
        assert raw not in request.body.decode(), f"{raw!r} reached {case.type} verbatim"


async def test_matrix_room_mention_is_broken_and_nobody_is_mentioned(
    receiver: Receiver, transport: Transport, tmp_path: Path
) -> None:
    provider = await build(
        "matrix",
        receiver.url,
        tmp_path,
        transport,
        secret={"token": TOKEN},
        channel="!room:example.org",
    )
    await provider.post(FACTORY.leader_changed(HR, previous="@room", holder="b"))
    body = receiver.requests[0].json()
    assert "@room" not in body["body"] and "@\u2060room" in body["body"]
    assert body["m.mentions"] == {}


async def test_generic_hmac_signs_the_exact_body(
    receiver: Receiver, transport: Transport, tmp_path: Path
) -> None:
    """FLUX-FACTS §6: X-Signature: sha256=<hex HMAC-SHA256(token, body)>."""
    provider = await build(
        "generic-hmac", receiver.url + "/hook", tmp_path, transport, secret={"token": TOKEN}
    )
    await provider.post(EVENT)
    (request,) = receiver.requests
    expected = hmac.new(TOKEN.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Signature"] == f"sha256={expected}"
    assert request.headers["Gotk-Component"] == "fluxwatch"
    assert request.json() == WIRE


async def test_generic_hmac_needs_a_token(tmp_path: Path, transport: Transport) -> None:
    spec = ProviderSpec(name="h", type="generic-hmac", address="http://127.0.0.1:1/")  # type: ignore[arg-type]
    provider = await open_provider(spec, ProviderDeps(transport))
    assert isinstance(provider, UnavailableProvider)
    assert "needs a token" in provider.reason
    with pytest.raises(DeliveryError, match=r"unavailable: .*needs a token"):
        await provider.post(EVENT)


async def test_pagerduty_resolves_on_recovery_and_skips_other_info(
    receiver: Receiver, transport: Transport, tmp_path: Path
) -> None:
    provider = await build("pagerduty", receiver.url, tmp_path, transport, channel="R0UT1NG")
    succeeded = FACTORY.recovery_succeeded(
        HR, strategy="force-reconcile", attempt=1, max_attempts=3, took=30
    )
    await provider.post(succeeded)
    assert receiver.requests[0].json() == {
        "routing_key": "R0UT1NG",
        "event_action": "resolve",
        "dedup_key": "5e6f-uid",
    }
    started = FACTORY.recovery_started(HR, strategy="force-reconcile", attempt=1, max_attempts=3)
    with pytest.raises(Skipped, match="not RecoveryStarted"):
        await provider.post(started)
    assert len(receiver.requests) == 1


async def test_slack_api_answer_is_checked(
    receiver: Receiver, transport: Transport, tmp_path: Path
) -> None:
    provider = await build(
        "slack",
        receiver.url + "/api/chat.postMessage",
        tmp_path,
        transport,
        secret={"token": TOKEN},
        channel="C123",
    )
    receiver.answer(
        (200, {}, b'{"ok": true}'), (200, {}, b'{"ok": false, "error": "not_in_channel"}')
    )
    await provider.post(EVENT)
    with pytest.raises(DeliveryError, match="Slack API answered ok=false: not_in_channel"):
        await provider.post(EVENT)


async def test_msteams_legacy_connector_through_an_authenticated_proxy(
    receiver: Receiver, transport: Transport, tmp_path: Path
) -> None:
    """A ``*.webhook.office.com`` address gets a MessageCard; the proxy sees the absolute URL."""
    address = "http://contoso.webhook.office.com/webhookb2/g@t/IncomingWebhook/abc/def"
    proxy = f"http://proxyuser:pr0xy-pass@127.0.0.1:{receiver.port}"
    provider = await build("msteams", address, tmp_path, transport, secret={"proxy": proxy})
    await provider.post(EVENT)
    (request,) = receiver.requests
    assert request.url == address
    assert (
        request.headers["Proxy-Authorization"]
        == "Basic " + base64.b64encode(b"proxyuser:pr0xy-pass").decode()
    )
    assert request.json() == {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "themeColor": "FF0000",
        "summary": OBJ,
        "sections": [
            {
                "activityTitle": OBJ,
                "activitySubtitle": "fluxwatch: StuckDetected",
                "text": MSG,
                "facts": [{"name": k, "value": v} for k, v in META.items()],
            }
        ],
    }


async def test_flux_429_means_deduplicated_and_is_not_retried(
    receiver: Receiver, tmp_path: Path
) -> None:
    """FLUX-FACTS §6: notification-controller answers 429 for a duplicate in its window."""
    retrying = Transport(retry=RetryPolicy(max_retries=4))
    try:
        provider = await build("flux", receiver.url, tmp_path, retrying)
        receiver.answer(202, 429)
        await provider.post(EVENT)
        with pytest.raises(Deduplicated):
            await provider.post(EVENT)
        assert [r.status for r in receiver.requests] == [202, 429]
    finally:
        await retrying.close()


async def test_client_errors_are_final_and_redirects_are_not_followed(
    receiver: Receiver, tmp_path: Path
) -> None:
    retrying = Transport(retry=RetryPolicy(max_retries=4))
    try:
        provider = await build("generic", receiver.url + "/hook", tmp_path, retrying)
        receiver.answer((400, {}, b'{"error": "bad payload"}'))
        with pytest.raises(DeliveryError) as info:
            await provider.post(EVENT)
        assert info.value.status == 400 and not info.value.retryable
        assert 'answered 400: {"error": "bad payload"}' in str(info.value)
        receiver.answer((302, {"Location": "http://elsewhere.example/steal?token=x"}, b""))
        with pytest.raises(DeliveryError, match=r"a redirect to http://elsewhere\.example;"):
            await provider.post(EVENT)
        assert len(receiver.requests) == 2
    finally:
        await retrying.close()


async def test_tracing_hook_adds_headers_but_not_over_the_providers(
    receiver: Receiver, tmp_path: Path
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    traced = Transport(
        retry=RetryPolicy(max_retries=0),
        extra_headers=lambda: {"traceparent": traceparent, "Gotk-Component": "forged"},
    )
    try:
        provider = await build("generic", receiver.url, tmp_path, traced)
        await provider.post(EVENT)
        (request,) = receiver.requests
        assert request.headers["traceparent"] == traceparent
        assert request.headers["Gotk-Component"] == "fluxwatch"
    finally:
        await traced.close()


async def test_telegram_text_fits_4096_characters(
    receiver: Receiver, transport: Transport, tmp_path: Path
) -> None:
    provider = await build(
        "telegram", receiver.url, tmp_path, transport, secret={"token": TOKEN}, channel="1"
    )
    long = FACTORY.new(HR, EVENT.severity, "RecoveryFailed", "a.b-" * 5000, {"k": "v"})
    await provider.post(long)
    text = receiver.requests[0].json()["text"]
    assert len(text) <= MAX_TEXT
    assert text.endswith(r"\- *k*: v")


# --- TLS: a custom CA and a client certificate, as from ca.crt / tls.crt / tls.key ---


@dataclass(frozen=True)
class Pki:
    ca_crt: bytes
    server_crt: Path
    server_key: Path
    client_crt: bytes
    client_key: bytes
    ca_file: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not found; it generates the test CA (apt-get install openssl)")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    run(*shlex.split("req -x509 -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca"), *ec)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subject, ext in (
        ("server", "/CN=127.0.0.1", "san.ext"),
        ("client", "/CN=fluxwatch", "client.ext"),
    ):
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        sign = f"x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
        run(*shlex.split(sign), "-out", f"{name}.crt", "-extfile", ext)
    return Pki(
        ca_crt=(d / "ca.crt").read_bytes(),
        server_crt=d / "server.crt",
        server_key=d / "server.key",
        client_crt=(d / "client.crt").read_bytes(),
        client_key=(d / "client.key").read_bytes(),
        ca_file=d / "ca.crt",
    )


@pytest.fixture
async def tls_receiver(pki: Pki) -> AsyncIterator[Receiver]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_file))
    context.load_cert_chain(pki.server_crt, pki.server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    async with Receiver(ssl_context=context) as r:
        yield r


async def test_custom_ca_and_client_certificate(
    tls_receiver: Receiver, transport: Transport, tmp_path: Path, pki: Pki
) -> None:
    secret: dict[str, str | bytes] = {
        "ca.crt": pki.ca_crt,
        "tls.crt": pki.client_crt,
        "tls.key": pki.client_key,
    }
    provider = await build(
        "generic", tls_receiver.url + "/hook", tmp_path, transport, secret=secret
    )
    await provider.post(EVENT)
    (request,) = tls_receiver.requests
    assert request.json() == WIRE
    assert request.peer_cert is not None
    assert request.peer_cert["subject"] == ((("commonName", "fluxwatch"),),)


async def test_unknown_ca_fails_at_once(tls_receiver: Receiver, tmp_path: Path, pki: Pki) -> None:
    retrying = Transport(retry=RetryPolicy(max_retries=4))
    try:
        secret: dict[str, str | bytes] = {"tls.crt": pki.client_crt, "tls.key": pki.client_key}
        provider = await build("generic", tls_receiver.url, tmp_path, retrying, secret=secret)
        with pytest.raises(DeliveryError, match="TLS failed") as info:
            await provider.post(EVENT)
        assert info.value.attempts == 1
        assert tls_receiver.requests == []
    finally:
        await retrying.close()
