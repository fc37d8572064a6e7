"""Instructions per watch event of the informer's per-line path, counted by cachegrind.

On a shared host the CPU time of one event varies twofold from run to run;
the number of instructions it executes does not. This tool captures the
watch benchmark's stream once, then replays its lines under
``valgrind --tool=cachegrind`` into a synced informer and tracker, and
reports instructions per event for each part of the path:

- ``decode``: msgspec's typed decode of the line (``_decode_event``);
- ``view``: building the view from the decoded structs (``_from_wire``);
- ``event``: both, as the informer calls them (``hr_event``);
- ``line``: the whole per-line path (``Informer._on_line``, tracker included).

Each part runs with two replays of the lines, and a run without any replay is
subtracted (the difference divided by the events replayed), so start-up and
the sync cancel out. Usage (README, "Performance")::

    python -m bench.icount capture /tmp/lines.bin      # the emulator's burst, 10,000 events
    python -m bench.icount count /tmp/lines.bin         # every part, about a minute each
    python -m bench.icount count /tmp/lines.bin event line
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

PARTS = ("decode", "view", "event", "line")
LINES = 2000  # replayed lines: enough to average, few enough for valgrind
REPLAYS = 2
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


async def _capture(releases: int, managed: bool) -> list[bytes]:
    from bench.common import Child
    from bench.watch import _raw_read

    with tempfile.TemporaryDirectory() as tmp:
        args = ["--releases", str(releases), "--burst", "--kubeconfig-out", f"{tmp}/kc"]
        emu = await Child.start("bench.emulator", *args, *(["--managed-fields"] if managed else []))
        try:
            _, chunks = await _raw_read(emu, releases)
        finally:
            await emu.stop()
    return b"".join(chunks).split(b"\n")[:releases]


def _replay(path: Path, part: str, replays: int) -> None:
    """What runs under valgrind: sync an informer on the lines, then replay them."""
    from bench.engine import Counting, make_tracker
    from fluxwatch.kube import helmrelease
    from fluxwatch.kube.client import HELMRELEASES
    from fluxwatch.kube.informer import Informer

    lines = [memoryview(line) for line in path.read_bytes().split(b"\n") if line][:LINES]
    decoded = [helmrelease._decode_event(line).object for line in lines]

    async def main() -> None:
        counter = Counting(make_tracker())
        # No client: lines are handed to the informer, as its watch loop hands them.
        informer = Informer(None, HELMRELEASES, helmrelease.HELMRELEASES_CODEC, counter)
        counter.arm(1 << 60)
        for line in lines:
            informer._on_line(line)  # the sync: every release ADDED once
        # The reader's parts get the informer's cache, as the informer hands it to them.
        known = informer.cache
        for _ in range(replays):
            if part == "decode":
                for line in lines:
                    helmrelease._decode_event(line)
            elif part == "view":
                for obj in decoded:
                    helmrelease._from_wire(obj, known)
            elif part == "event":
                for line in lines:
                    helmrelease.hr_event(line, known)
            else:
                for line in lines:
                    informer._on_line(line)

    asyncio.run(main())


def _instructions(path: Path, part: str, replays: int) -> int:
    run = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.icount",
            "replay",
            str(path),
            part,
            str(replays),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict layouts in both runs
    )
    found = _REFS.search(run.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {run.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.icount")
    sub = p.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture", help="write the watch benchmark's burst, one event a line")
    cap.add_argument("out", type=Path)
    cap.add_argument("--releases", type=int, default=10_000)
    cap.add_argument("--managed-fields", action="store_true", help="four managers' managedFields")
    cnt = sub.add_parser("count", help="instructions per event of each part, under cachegrind")
    cnt.add_argument("lines", type=Path)
    cnt.add_argument("parts", nargs="*", help=f"some of {', '.join(PARTS)} (default: all)")
    rep = sub.add_parser("replay", help="(what count runs under valgrind)")
    rep.add_argument("lines", type=Path)
    rep.add_argument("part", choices=PARTS)
    rep.add_argument("replays", type=int)
    args = p.parse_args(argv)
    if args.command == "capture":
        lines = asyncio.run(_capture(args.releases, args.managed_fields))
        args.out.write_bytes(b"\n".join(lines) + b"\n")
        size = sum(map(len, lines)) // len(lines)
        print(f"{len(lines)} events, {size} bytes each, in {args.out}")
    elif args.command == "replay":
        _replay(args.lines, args.part, args.replays)
    else:
        unknown = set(args.parts) - set(PARTS)
        if unknown:
            p.error(f"unknown parts {sorted(unknown)}: choose from {', '.join(PARTS)}")
        # Start-up and the sync: the same for every part (nothing replayed).
        before = _instructions(args.lines, "line", 0)
        for part in args.parts or PARTS:
            after = _instructions(args.lines, part, REPLAYS)
            print(f"{part}: {(after - before) // (REPLAYS * LINES):,} instructions/event")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
