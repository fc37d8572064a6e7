"""Root pytest plugin: under FLUXWATCH_STRICT=1 (CI) a skipped test is a failure.

Tests skip only when a real part (kubectl, alertmanager, nats-server) is missing
on a developer's machine; CI installs them all, so a skip there means a broken
install step, and must not pass silently.
"""

from __future__ import annotations

import os

import pytest

STRICT = os.environ.get("FLUXWATCH_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under FLUXWATCH_STRICT=1 (CI must provide it): {reason}"
