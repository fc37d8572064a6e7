"""``fluxwatch test-alert``: send one harmless event straight to providers and report each result.

It bypasses alert rules and the dedup window (the point is to prove the
provider works) and reports, per provider, whether the receiver took the
event, its HTTP status when there is one, the error, and the latency. Built
from settings, providers get a single attempt, so a broken one answers
within its timeout; given a running Router, its providers are used as they
are, retries included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from fluxwatch.notify.config import NotifySettings
from fluxwatch.notify.credentials import SecretReader
from fluxwatch.notify.errors import NotDelivered, NotifyConfigError, NotifyError
from fluxwatch.notify.event import Event, InvolvedObject, Severity
from fluxwatch.notify.factory import open_provider
from fluxwatch.notify.providers import EventWriter, Provider, ProviderDeps
from fluxwatch.notify.router import Router
from fluxwatch.notify.transport import RetryPolicy, Transport, last_status

TEST_REASON = "TestAlert"


@dataclass(frozen=True, slots=True)
class TestResult:
    """How one provider took the test event."""

    __test__ = False  # not a pytest test class, despite the name

    provider: str
    ok: bool
    status: int | None
    error: str | None
    latency_s: float


def make_test_event(namespace: str = "flux-system", instance: str | None = None) -> Event:
    """An info event on a HelmRelease named ``fluxwatch-test-alert`` that says what it is."""
    obj = InvolvedObject.helmrelease(namespace, "fluxwatch-test-alert")
    return Event.new(
        obj,
        Severity.INFO,
        TEST_REASON,
        "This is a test alert from fluxwatch (fluxwatch test-alert). If you can read it, "
        "this provider works; no HelmRelease is affected.",
        metadata={"test": "true"},
        instance=instance,
    )


async def _try(provider: Provider, event: Event, timeout: float | None) -> TestResult:
    loop = asyncio.get_running_loop()
    started = loop.time()
    last_status.set(None)
    ok, error = True, None
    try:
        async with asyncio.timeout(timeout):
            await provider.post(event)
    except NotDelivered as exc:
        # The receiver answered and chose not to post; the path works.
        error = f"{exc.result}: {exc}"
    except TimeoutError:
        ok, error = False, f"no result within {timeout:g}s"
    except NotifyError as exc:
        ok, error = False, str(exc)
    except Exception as exc:
        ok, error = False, provider.settings.redactor.scrub(f"{type(exc).__name__}: {exc}")
    return TestResult(provider.name, ok, last_status.get(), error, loop.time() - started)


def _select(names: Sequence[str], wanted: str | None) -> list[str]:
    if wanted is None:
        return list(names)
    if wanted not in names:
        known = ", ".join(names) or "none configured"
        raise NotifyConfigError(f"no provider named {wanted!r} (providers: {known})")
    return [wanted]


async def send_test_alert(
    target: Router | NotifySettings,
    provider: str | None = None,
    *,
    namespace: str | None = None,
    secret_reader: SecretReader | None = None,
    event_writer: EventWriter | None = None,
    timeout: float | None = None,
) -> list[TestResult]:
    """Send a test event to ``provider`` (or every provider); results in configuration order.

    Raises ``NotifyConfigError`` when ``provider`` names no provider.
    ``namespace`` is fluxwatch's own (for ``secretRef`` and the test event).
    """
    event = make_test_event(namespace or "flux-system")
    if isinstance(target, Router):
        providers = target.providers
        names = _select(list(providers), provider)
        return list(await asyncio.gather(*(_try(providers[n], event, timeout) for n in names)))

    names = _select([spec.name for spec in target.providers], provider)
    transport = Transport(retry=RetryPolicy(max_retries=0))
    deps = ProviderDeps(transport=transport, event_writer=event_writer)
    built: list[Provider] = []
    try:
        for name in names:
            built.append(
                await open_provider(
                    target.provider(name),
                    deps,
                    namespace=namespace,
                    secret_reader=secret_reader,
                )
            )
        return list(await asyncio.gather(*(_try(p, event, timeout) for p in built)))
    finally:
        for p in built:
            await p.close()
        await transport.close()
