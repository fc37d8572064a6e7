"""One version everywhere: ``fluxwatch.__version__`` is what pyproject, ``--version``, the
image tag in config/manager and the changelog say; the revision is the build's commit."""

from __future__ import annotations

import platform
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from fluxwatch import __version__, native
from fluxwatch.version import UNKNOWN, read_revision, version_text

ROOT = Path(__file__).resolve().parents[2]


def _git_head() -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_version_flag_prints_version_and_revision_and_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fluxwatch", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    python = f"{platform.python_implementation()} {platform.python_version()}"
    reader = native.watch_reader()
    assert done.stdout == (
        f"fluxwatch {__version__} (revision {_git_head()}, {python}, {reader} watch reader)\n"
    )
    assert version_text() == done.stdout.strip()


def test_an_image_build_writes_the_revision_into_the_package(tmp_path: Path) -> None:
    (tmp_path / "REVISION").write_text("0123456789abcdef0123456789abcdef01234567\n")
    assert read_revision(tmp_path) == "0123456789abcdef0123456789abcdef01234567"
    # Outside git and without the file, nobody knows.
    assert read_revision(tmp_path / "nowhere") == UNKNOWN
    (tmp_path / "REVISION").write_text("\n")
    assert read_revision(tmp_path) == UNKNOWN


def test_pyproject_reads_the_version_from_the_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "fluxwatch.__version__"
    }
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_the_shipped_image_tag_is_this_version() -> None:
    kustomization = yaml.safe_load((ROOT / "config" / "manager" / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    assert image["newTag"] == __version__


def test_the_changelog_has_unreleased_and_dated_versions() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    headers = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headers[0] == "[Unreleased]"
    released = []
    for header in headers[1:]:
        match = re.fullmatch(r"\[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}", header)
        assert match, f"CHANGELOG.md: {header!r} is not '[X.Y.Z] - YYYY-MM-DD'"
        released.append(tuple(int(n) for n in match[1].split(".")))
    assert released == sorted(released, reverse=True), "newest release first"
    current = tuple(int(n) for n in __version__.split("."))
    assert all(v <= current for v in released), "__version__ is behind a released version"


def test_the_license_is_the_apache_license() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
