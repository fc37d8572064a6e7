"""The compiled watch reader is built, in use, switchable, and refuses views it cannot build.

Whether it reads exactly as the Python reader does is tests/unit/test_hrwire_native.py's
question; this one is about the parts around it: that an install built it (CI runs the
suite with it), that ``FLUXWATCH_NATIVE=0`` turns it off everywhere it shows, and that it
will not build views of a type whose fields it does not know.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import orjson
import pytest

from fluxwatch import native
from fluxwatch.kube import helmrelease
from fluxwatch.kube.helmrelease import HRView

ROOT = Path(__file__).resolve().parents[2]

hrwire = native.load(native.HRWIRE)
needs_native = pytest.mark.skipif(
    hrwire is None,
    reason="fluxwatch.kube._hrwire is not built (no C compiler at `pip install`?) "
    "or FLUXWATCH_NATIVE=0",
)

LINE = orjson.dumps(
    {
        "type": "MODIFIED",
        "object": {
            "metadata": {"name": "podinfo", "namespace": "apps", "resourceVersion": "7"},
            "spec": {"suspend": True},
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "Unknown",
                        "reason": "Progressing",
                        "message": "Running 'upgrade' action with timeout of 5m0s",
                        "lastTransitionTime": "2026-11-26T10:00:00Z",
                    }
                ]
            },
        },
    }
)


@needs_native
def test_the_installed_fluxwatch_reads_watch_lines_natively() -> None:
    assert helmrelease.NATIVE_READER
    assert helmrelease.hr_event is not helmrelease._hr_event_py
    assert helmrelease.HELMRELEASES_CODEC.event is helmrelease.hr_event
    assert native.watch_reader() == "native"
    # It takes an everyday line itself, and gives the Python reader's view.
    assert hrwire is not None
    taken = hrwire.event(LINE)
    assert taken is not None
    assert taken == helmrelease._hr_event_py(LINE)
    assert taken[1].suspend and taken[1].ready.status == "Unknown"  # type: ignore[union-attr]


@needs_native
def test_lines_it_leaves_go_to_the_python_reader() -> None:
    assert hrwire is not None
    escaped = LINE.replace(b'"podinfo"', b'"pod\\u0069nfo"')
    assert hrwire.event(escaped) is None  # an escape in a field it reads: not its to judge
    assert helmrelease.hr_event(escaped) == helmrelease._hr_event_py(escaped)
    assert helmrelease.hr_event(escaped)[1].name == "podinfo"  # type: ignore[index]
    assert helmrelease.hr_event(b"{not json") is None
    assert helmrelease.hr_event(b'{"type":"BOOKMARK","object":{}}') is None


def _run(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_FLUXWATCH_NATIVE_0_turns_it_off_everywhere_it_shows() -> None:
    code = (
        "from fluxwatch.kube import helmrelease as h; from fluxwatch.version import version_text;"
        "from fluxwatch.telemetry.metrics import build_labels;"
        "print(h.NATIVE_READER, h.hr_event is h._hr_event_py, build_labels()['reader'],"
        " version_text().endswith('python watch reader)'))"
    )
    assert _run(code, FLUXWATCH_NATIVE="0") == "False True python True"


@needs_native
def test_by_default_it_is_on_everywhere_it_shows() -> None:
    code = (
        "from fluxwatch.kube import helmrelease as h; from fluxwatch.version import version_text;"
        "from fluxwatch.telemetry.metrics import build_labels;"
        "print(h.NATIVE_READER, build_labels()['reader'], version_text())"
    )
    out = _run(code, FLUXWATCH_NATIVE="1")
    assert out.startswith("True native fluxwatch ") and out.endswith("native watch reader)")


class _Other(msgspec.Struct, frozen=True):
    namespace: str
    name: str


@needs_native
def test_it_refuses_to_build_views_whose_fields_it_does_not_know() -> None:
    """The C code builds views by position: a view type with other fields (a field added
    to HRView and not to _hrwire.c) is refused at configure, not built wrong."""
    assert hrwire is not None
    args = dict(
        condition=helmrelease.Condition,
        snapshot=helmrelease.Snapshot,
        page=helmrelease.Page,
        empty_labels=helmrelease.EMPTY,
        label_bytes={},
        dependency_bytes={},
        labels_reader=helmrelease._wire_labels,
        dependencies_reader=helmrelease._wire_dependencies,
        fallback=helmrelease._hr_event_py,
        page_fallback=helmrelease._hr_page_py,
        no_views=helmrelease._NO_VIEWS,
        statuses=("True", "False", "Unknown"),
        conditions=("Ready", "Released", "Reconciling", "Stalled"),
        events=("ADDED", "MODIFIED", "DELETED"),
        empty="",
    )
    with pytest.raises(TypeError, match="fields are not the ones _hrwire builds"):
        hrwire.configure(view=_Other, **args)  # type: ignore[arg-type]
    # The module keeps the configuration it had.
    assert hrwire.event(LINE) == helmrelease._hr_event_py(LINE)
    assert isinstance(hrwire.event(LINE)[1], HRView)
