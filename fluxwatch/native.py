"""fluxwatch's compiled parts: optional, switchable, and never the reference.

Each one is a C extension that stands in for Python code on a hot path and gives exactly
what that code gives (a test holds them to it). It is built at install where a C compiler
is at hand (pyproject's ``ext-modules``, optional: without one the install goes on and the
Python code runs); ``FLUXWATCH_NATIVE=0`` in the environment turns every one of them off,
for a suspected difference or to compare. Today there is one: ``fluxwatch.kube._hrwire``,
the HelmRelease watch-line reader (README, "Performance").
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

ENV = "FLUXWATCH_NATIVE"
HRWIRE = "fluxwatch.kube._hrwire"


def enabled() -> bool:
    """False when the environment turns the compiled parts off (``FLUXWATCH_NATIVE=0``)."""
    return os.environ.get(ENV, "1").strip() != "0"


def load(name: str) -> ModuleType | None:
    """The compiled module ``name``, or None where it was not built or is turned off."""
    if not enabled():
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def watch_reader() -> str:
    """Which reader HelmRelease watch lines go through: ``native`` or ``python``."""
    return "native" if load(HRWIRE) is not None else "python"
