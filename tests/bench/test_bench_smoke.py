"""The benchmarks in miniature, so that they do not rot.

Each benchmark runs at its ``smoke`` size against the embedded cluster and
must return well-formed figures. Nothing here asserts a timing: the numbers
of a run this small on a shared machine mean nothing; ``make bench`` measures.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import pytest

from bench.common import Context, Figure, Placement, Sizes, machine
from bench.run import BENCHES, document, table, write


def _well_formed(figure: Figure) -> None:
    assert figure.bench in BENCHES
    assert figure.name and figure.unit
    assert isinstance(figure.value, float | int) and math.isfinite(figure.value)
    assert figure.value >= 0
    if figure.baseline is not None:
        assert math.isfinite(figure.baseline) and figure.baseline >= 0
        assert figure.baseline_name
        assert figure.ratio is None or figure.ratio > 0
    assert figure.better in ("higher", "lower")
    assert figure.goal_met in (True, False, None)
    if figure.goal_met is not None:
        assert figure.goal
    json.dumps(figure.to_json())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", BENCHES)
async def test_benchmark_produces_well_formed_figures(name: str, tmp_path: Path) -> None:
    ctx = Context(Sizes.of("smoke"), Placement(None, None), tmp_path, log=lambda _: None)
    try:
        figures = await importlib.import_module(f"bench.{name}").run(ctx)
    finally:
        await ctx.close()
    assert figures
    for figure in figures:
        assert figure.bench == name
        _well_formed(figure)
    assert any(f.baseline is not None for f in figures), "every benchmark has a baseline"


def test_results_document_has_units_baselines_ratios_cpu_and_date(tmp_path: Path) -> None:
    figures = [
        Figure("watch", "w", 60_000.0, "events/s", 10_000.0, "library", goal="x", goal_met=True),
        Figure("sync", "s", 0.25, "s", 1.0, "library", better="lower"),
        Figure("watch", "ceiling", 100_000.0, "events/s"),
    ]
    doc = document(figures, machine(), "smoke", Placement(None, None), {"total": 1.0}, {})
    out = tmp_path / "results" / "latest.json"
    write(doc, out)
    loaded = json.loads(out.read_text())
    assert loaded["machine"]["cpu_model"] and loaded["machine"]["date"]
    rows = {f["name"]: f for f in loaded["figures"]}
    assert rows["w"]["ratio"] == 6.0 and rows["w"]["unit"] == "events/s"
    assert rows["s"]["ratio"] == 4.0 and rows["s"]["baseline"] == 1.0
    assert rows["ceiling"]["ratio"] is None
    assert "| w | 60,000 events/s | 10,000 events/s | 6.00x | x | yes |" in table(figures)
