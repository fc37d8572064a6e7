"""The native watch-line reader under AddressSanitizer and UndefinedBehaviorSanitizer.

A C reader of bytes from the network can read past a buffer or leave a reference
dangling, and the differential fuzz cannot see that: a stray read past the end usually
returns garbage that happens to agree. This builds ``_hrwire.c`` again with gcc's
sanitizers, loads that build in place of the installed one, and runs the reader's tests
(the differential fuzz, its own tests, the view tests) with Python's allocator off
(``PYTHONMALLOC=malloc``), so every ``bytes`` a line arrives in is a heap block of its
own with poisoned bytes after it. Any invalid read, write or use after free, and any
undefined behaviour, ends the run with the sanitizer's report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "fluxwatch" / "kube" / "_hrwire.c"
TESTS = [
    "tests/unit/test_hrwire_native.py",
    "tests/unit/test_native.py",
    "tests/unit/test_helmrelease_view.py",
]
# The sanitized build replaces the installed one before fluxwatch is imported, then the
# tests run in this same interpreter.
RUNNER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("fluxwatch.kube._hrwire", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.modules["fluxwatch.kube._hrwire"] = module
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[2:]]))
"""


def _runtime(gcc: str, name: str) -> str | None:
    found = subprocess.run(
        [gcc, f"-print-file-name={name}"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return found if found and os.path.isabs(found) and os.path.exists(found) else None


def test_the_native_reader_is_clean_under_asan_and_ubsan(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (Debian: gcc; .ci/run installs it)")
    asan, ubsan = _runtime(gcc, "libasan.so"), _runtime(gcc, "libubsan.so")
    if asan is None or ubsan is None:
        pytest.skip("gcc's sanitizer runtimes (libasan, libubsan) are not installed")
    built = tmp_path / f"_hrwire{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run(
        [
            gcc,
            "-O1",
            "-g",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer",
            "-shared",
            "-fPIC",
            f"-I{sysconfig.get_paths()['include']}",
            str(SOURCE),
            "-o",
            str(built),
        ],
        check=True,
        timeout=120,
    )
    env = {
        **os.environ,
        "LD_PRELOAD": f"{asan} {ubsan}",
        "PYTHONMALLOC": "malloc",
        # Python's own allocations at exit are not the reader's: leaks are another test's.
        # The reports go to files: pytest holds the run's stderr when a sanitizer ends it.
        "ASAN_OPTIONS": f"detect_leaks=0:exitcode=86:log_path={tmp_path / 'asan'}",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87:"
        f"log_path={tmp_path / 'ubsan'}",
        "FLUXWATCH_NATIVE": "1",
    }
    env.pop("FLUXWATCH_STRICT", None)  # the inner run's skips are this test's to judge
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(built), *TESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    sanitizers = "".join(path.read_text() for path in sorted(tmp_path.glob("*san.*")))
    report = sanitizers[:6000] + done.stdout[-3000:] + done.stderr[-3000:]
    assert not sanitizers, report
    assert done.returncode == 0, report
    assert " passed" in done.stdout and "skipped" not in done.stdout, report
