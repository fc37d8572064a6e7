"""No secret in any log record, error, repr or test-alert result over a whole run.

Token-bearing providers run against a receiver that fails and echoes back
what it got (headers, path), a proxy that refuses, and a Secret that cannot
be read; everything logged at DEBUG is then searched for every secret.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from test_notify_receiver import Receiver

from fluxwatch.notify import (
    EventFactory,
    InvolvedObject,
    NotifySettings,
    ProviderDeps,
    ProviderSettings,
    Redactor,
    Router,
    Rule,
    Transport,
    send_test_alert,
)
from fluxwatch.notify.config import AlertSpec
from fluxwatch.notify.event import Event
from fluxwatch.notify.providers import Provider
from fluxwatch.notify.redact import basic_credentials

HMAC_TOKEN = "hmac-K3Y-0123456789"
HEADER_SECRET = "hdr-S3CRET-abcdef"
SLACK_PATH = "SLACKPATHSECRET123"
SLACK_TOKEN = "xoxb-SLACK-T0KEN-999"
TELEGRAM_TOKEN = "123456789:AAH-TeLeGrAm-SeCrEt"
BASIC_PASSWORD = "b4sic-PASSW0RD"
USERINFO_PASSWORD = "us3rinfo-PASSW0RD"
PROXY_PASSWORD = "pr0xy-PA55W0RD"
MATRIX_TOKEN = "syt_MATRIX_t0ken_xyz"
READER_SECRET = "apiserver-TOKEN-leak"
SECRETS = [
    HMAC_TOKEN,
    HEADER_SECRET,
    SLACK_PATH,
    SLACK_TOKEN,
    TELEGRAM_TOKEN,
    BASIC_PASSWORD,
    USERINFO_PASSWORD,
    PROXY_PASSWORD,
    MATRIX_TOKEN,
    READER_SECRET,
    basic_credentials("fw", BASIC_PASSWORD),
    basic_credentials("fw", USERINFO_PASSWORD),
    basic_credentials("fw", PROXY_PASSWORD),
]


def secret_dir(root: Path, name: str, data: dict[str, str]) -> str:
    path = root / name
    path.mkdir()
    for key, value in data.items():
        (path / key).write_text(value)
    return str(path)


class LeakyReader:
    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        raise RuntimeError(f"401 from apiserver with bearer {READER_SECRET}")


@pytest.fixture
async def echo() -> AsyncIterator[Receiver]:
    """Fails every request and quotes the request's credentials back, as bad receivers do."""

    async def reflect(request: web.Request) -> tuple[int, dict[str, str], bytes]:
        quoted = (
            f"denied {request.path} auth={request.headers.get('Authorization')} "
            f"key={request.headers.get('X-Api-Key')}"
        )
        return (401 if "matrix" in request.path else 503), {}, quoted.encode()

    async with Receiver() as r:
        r.on_request = reflect
        yield r


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in {where}: {text}"


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.looptime
async def test_no_secret_anywhere_over_a_whole_run(
    echo: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = echo.url
    settings = NotifySettings.model_validate(
        {
            "maxRetries": 1,
            "providers": [
                {
                    "name": "hmac",
                    "type": "generic-hmac",
                    "address": f"{url}/hmac",
                    "secretPath": secret_dir(
                        tmp_path,
                        "hmac",
                        {"token": HMAC_TOKEN, "headers": f"X-Api-Key: {HEADER_SECRET}"},
                    ),
                },
                {
                    "name": "slack",
                    "type": "slack",
                    "address": f"{url}/services/T0/B0/{SLACK_PATH}",
                    "secretPath": secret_dir(tmp_path, "slack", {"token": SLACK_TOKEN}),
                },
                {
                    "name": "tg",
                    "type": "telegram",
                    "address": url,
                    "channel": "-100",
                    "secretPath": secret_dir(tmp_path, "tg", {"token": TELEGRAM_TOKEN}),
                },
                {
                    "name": "basic",
                    "type": "generic",
                    "address": f"{url}/basic",
                    "secretPath": secret_dir(
                        tmp_path, "basic", {"username": "fw", "password": BASIC_PASSWORD}
                    ),
                },
                {
                    "name": "userinfo",
                    "type": "generic",
                    "address": f"http://fw:{USERINFO_PASSWORD}@127.0.0.1:{echo.port}/ui",
                },
                {
                    "name": "am",
                    "type": "alertmanager",
                    "address": "http://alertmanager.invalid:9093",
                    "proxy": f"http://fw:{PROXY_PASSWORD}@127.0.0.1:{closed_port()}",
                },
                {
                    "name": "mx",
                    "type": "matrix",
                    "address": f"{url}/matrix",
                    "channel": "!room:example.org",
                    "secretPath": secret_dir(tmp_path, "mx", {"token": MATRIX_TOKEN}),
                },
                {"name": "ref", "type": "slack", "secretRef": {"name": "slack-webhook"}},
            ],
            "alerts": [
                {"name": f"to-{n}", "providerRef": {"name": n}}
                for n in ("hmac", "slack", "tg", "basic", "userinfo", "am", "mx", "ref")
            ],
        }
    )
    router = await Router.from_settings(
        settings, namespace="fluxwatch", secret_reader=LeakyReader()
    )
    factory = EventFactory("fluxwatch-0")
    hr = InvolvedObject.helmrelease("apps", "podinfo")
    router.publish(factory.stuck_detected(hr, age=400, threshold=300))
    router.publish(factory.recovery_skipped(hr, why="dry run"))
    await router.flush()
    results = await send_test_alert(router)
    standalone = await send_test_alert(settings, namespace="fluxwatch", secret_reader=LeakyReader())
    await router.close()

    assert len(echo.requests) > 10
    assert all(not r.ok for r in results + standalone)
    for result in results + standalone:
        assert_clean(repr(result), f"test-alert result of {result.provider}")
    assert_clean(repr(router), "repr(router)")
    assert_clean(repr(router.providers), "repr(providers)")
    assert_clean(repr(settings), "repr(settings)")
    assert_clean(str(settings.model_dump()), "settings.model_dump()")
    assert_clean(caplog.text, "the log")
    for record in caplog.records:
        assert_clean(record.getMessage(), f"log record {record.name}")
        assert_clean(repr(record.args), f"log args {record.name}")
        assert_clean(repr(record.__dict__), f"log record fields {record.name}")
    # The run did exercise the error paths that could have leaked.
    assert any("answered 503" in r.getMessage() for r in caplog.records)
    assert any("answered 401" in r.getMessage() for r in caplog.records)
    assert any("cannot be read: RuntimeError" in r.getMessage() for r in caplog.records)


class BuggyProvider(Provider):
    type = "buggy"
    needs_address = False

    async def post(self, event: Event) -> None:
        raise ValueError(f"header value {HMAC_TOKEN!r} is not valid")


async def test_a_provider_bug_is_logged_with_a_scrubbed_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = ProviderSettings(name="buggy", type="buggy", redactor=Redactor([HMAC_TOKEN]))
    provider: Any = BuggyProvider(settings, ProviderDeps(Transport()))
    rule = Rule.from_spec(AlertSpec.model_validate({"name": "a", "providerRef": {"name": "buggy"}}))
    router = Router({"buggy": provider}, [rule])
    router.start()
    router.publish(
        EventFactory("p").recovery_skipped(InvolvedObject.helmrelease("a", "b"), why="x")
    )
    await router.close()
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = record.getMessage()
    assert "failed unexpectedly" in message and "Traceback" in message
    assert "ValueError: header value '***' is not valid" in message
    assert_clean(caplog.text, "the log")
