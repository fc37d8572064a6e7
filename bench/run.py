"""``python -m bench``: run every benchmark, write ``bench/results/latest.json``, print a table.

``--quick`` shrinks every benchmark (about a minute); ``--only watch,sync``
runs some of them; ``--no-pin`` leaves CPU placement to the OS. Benchmarks
never fail on a missed goal: the table and the JSON say which goals were met.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    Context,
    Figure,
    Placement,
    Sizes,
    Stopwatch,
    machine,
    pin,
    quiet_logs,
)

# Run in this order; each is ``bench.<name>.run(ctx) -> list[Figure]``.
BENCHES = ("watch", "sync", "memory", "detection", "apiload", "alerts", "dependencies")
DEFAULT_OUT = ROOT / "bench" / "results" / "latest.json"


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    p.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHES)}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    return p.parse_args(list(argv))


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def table(figures: Sequence[Figure]) -> str:
    rows = [
        "| figure | fluxwatch | baseline | ratio | goal | met |",
        "|---|---:|---:|---:|---|:---:|",
    ]
    for f in figures:
        ratio = f.ratio
        ratio_text = "-" if ratio is None else ("inf" if math.isinf(ratio) else f"{ratio:.2f}x")
        met = {True: "yes", False: "NO", None: "-"}[f.goal_met]
        rows.append(
            f"| {f.name} | {fmt(f.value, f.unit)} | {fmt(f.baseline, f.unit)} | {ratio_text} "
            f"| {f.goal or '-'} | {met} |"
        )
    return "\n".join(rows)


async def run_benches(
    names: Sequence[str], sizes: Sizes, placement: Placement, log: Callable[[str], None] = print
) -> tuple[list[Figure], dict[str, float], dict[str, str]]:
    """Run the named benchmarks in order; a benchmark that crashes is reported, not fatal."""
    figures: list[Figure] = []
    timings: dict[str, float] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="fluxwatch-bench-") as tmp:
        ctx = Context(sizes, placement, Path(tmp), log)
        try:
            for name in names:
                log(f"{name} ...")
                clock = Stopwatch()
                try:
                    module = importlib.import_module(f"bench.{name}")
                    bench: Callable[[Context], Awaitable[list[Figure]]] = module.run
                    figures += await bench(ctx)
                except Exception as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    log(f"  {name} FAILED: {errors[name]}")
                timings[name] = round(clock(), 1)
                log(f"  {name} took {timings[name]:.1f}s")
        finally:
            await ctx.close()
    return figures, timings, errors


def document(
    figures: Sequence[Figure],
    info: dict[str, Any],
    mode: str,
    placement: Placement,
    seconds: dict[str, float],
    errors: dict[str, str],
) -> dict[str, Any]:
    """What ``latest.json`` holds: the machine (CPU model, date, ...) and every figure with
    its unit, baseline and ratio."""
    return {
        "machine": info,
        "mode": mode,
        "placement": {"bench_cpu": placement.bench, "helper_cpu": placement.helper},
        "seconds": seconds,
        "errors": errors,
        "figures": [f.to_json() for f in figures],
    }


def write(doc: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    quiet_logs()
    placement = Placement.choose(not args.no_pin)
    pin(placement.bench)
    info = machine()

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    log(
        f"fluxwatch benchmarks ({mode}) on {info['cpu_model']}; measured process on CPU "
        f"{placement.bench}, emulator and receiver on CPU {placement.helper}"
    )
    clock = Stopwatch()
    figures, timings, errors = asyncio.run(run_benches(names, Sizes.of(mode), placement, log))
    doc = document(figures, info, mode, placement, {"total": round(clock(), 1), **timings}, errors)
    write(doc, args.out)
    print(table(figures))
    print()
    print(
        f"{info['cpu_model']}, {info['date']}, {mode} run in {clock():.0f}s; written to {args.out}"
    )
    if errors:
        print(f"FAILED: {', '.join(errors)}")
        return 1
    return 0
