"""What build this is: the release version and the git revision it was built from.

The version has one home, ``fluxwatch.__version__`` (pyproject reads it from
there). The revision is written into the package at image build time
(``fluxwatch/REVISION``, from the Dockerfile's ``REVISION`` build argument); a
checkout run from source asks git instead. ``fluxwatch --version``, the image's
labels and the ``build_info`` metric all read them here, so they agree.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

from fluxwatch import __version__, native

PACKAGE = Path(__file__).resolve().parent
REVISION_FILE = "REVISION"
UNKNOWN = "unknown"


def read_revision(package: Path = PACKAGE) -> str:
    """The commit this package was built from: the REVISION file, else git's HEAD when the
    package is a git checkout, else ``unknown``."""
    try:
        written = (package / REVISION_FILE).read_text().strip()
    except OSError:
        written = ""
    if written:
        return written
    try:
        found = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return UNKNOWN
    head = found.stdout.strip()
    return head if found.returncode == 0 and head else UNKNOWN


@functools.cache
def revision() -> str:
    """:func:`read_revision` of this package, once per process."""
    return read_revision()


def version_text() -> str:
    """The line ``fluxwatch --version`` prints."""
    return (
        f"fluxwatch {__version__} (revision {revision()}, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{native.watch_reader()} watch reader)"
    )


__all__ = ["__version__", "read_revision", "revision", "version_text"]
