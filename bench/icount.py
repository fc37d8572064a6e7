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
the sync cancel out.

``round`` counts a whole round instead: an emulator serves the burst (outside
valgrind, framed in HTTP chunks as kube-apiserver frames a watch), and a
synced informer and tracker under valgrind read it over HTTP, socket, HTTP
parser and all; two rounds minus none, per event. Usage (README,
"Performance")::

    python -m bench.icount capture /tmp/lines.bin      # the emulator's burst, 10,000 events
    python -m bench.icount count /tmp/lines.bin         # every part, about a minute each
    python -m bench.icount count /tmp/lines.bin event line
    python -m bench.icount round [--managed-fields]     # a whole round over HTTP, 2,000 events
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


def _rounds(info_path: Path, rounds: int) -> None:
    """What ``round`` runs under valgrind: sync from the emulator, then read its burst."""
    import gc
    import json

    from bench.engine import Counting, make_tracker
    from bench.watch import _fluxwatch_round
    from fluxwatch.kube.client import HELMRELEASES, KubeClient
    from fluxwatch.kube.helmrelease import HELMRELEASES_CODEC
    from fluxwatch.kube.informer import Informer

    info = json.loads(info_path.read_text())

    async def main() -> None:
        client = await KubeClient.from_config(info["kubeconfig"])
        counter = Counting(make_tracker())
        informer = Informer(client, HELMRELEASES, HELMRELEASES_CODEC, counter)
        await informer._relist()
        gc.collect()
        for _ in range(rounds):
            await _fluxwatch_round(informer, counter, info["burst_from"], info["releases"])
        await client.close()

    asyncio.run(main())


async def _round(releases: int, managed: bool) -> int:
    """Instructions per event of a whole informer round over HTTP."""
    import json

    from bench.common import Child

    with tempfile.TemporaryDirectory() as tmp:
        args = ["--releases", str(releases), "--burst", "--kubeconfig-out", f"{tmp}/kc"]
        emu = await Child.start("bench.emulator", *args, *(["--managed-fields"] if managed else []))
        try:
            info = Path(tmp) / "info.json"
            info.write_text(json.dumps({**emu.info, "releases": releases}))
            counts = [
                await asyncio.to_thread(_instructions_of, ["rounds", str(info), str(n)])
                for n in (0, REPLAYS)
            ]
        finally:
            await emu.stop()
    return (counts[1] - counts[0]) // (REPLAYS * releases)


def _instructions(path: Path, part: str, replays: int) -> int:
    return _instructions_of(["replay", str(path), part, str(replays)])


def _instructions_of(command: list[str]) -> int:
    run = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.icount",
            *command,
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
    rnd = sub.add_parser("round", help="instructions per event of a whole round over HTTP")
    rnd.add_argument("--releases", type=int, default=LINES)
    rnd.add_argument("--managed-fields", action="store_true", help="four managers' managedFields")
    rns = sub.add_parser("rounds", help="(what round runs under valgrind)")
    rns.add_argument("info", type=Path)
    rns.add_argument("rounds", type=int)
    args = p.parse_args(argv)
    if args.command == "capture":
        lines = asyncio.run(_capture(args.releases, args.managed_fields))
        args.out.write_bytes(b"\n".join(lines) + b"\n")
        size = sum(map(len, lines)) // len(lines)
        print(f"{len(lines)} events, {size} bytes each, in {args.out}")
    elif args.command == "replay":
        _replay(args.lines, args.part, args.replays)
    elif args.command == "rounds":
        _rounds(args.info, args.rounds)
    elif args.command == "round":
        per_event = asyncio.run(_round(args.releases, args.managed_fields))
        print(f"round: {per_event:,} instructions/event")
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
