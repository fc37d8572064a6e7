"""1. Watch throughput: HelmRelease watch events per second through informer, views and tracker.

The emulator (its own process, another CPU) holds ``n`` HelmReleases, each
modified once after they were created, so a watch from ``burst_from`` replays
``n`` MODIFIED events of full objects as fast as the client reads them. A
round times, from opening the watch to the ``n``-th handler call:

- fluxwatch: the informer's watch stream (``Informer._watch``, the code
  ``run()`` loops over) on a synced cache, each event read into an HRView and
  handed to the tracker;
- baseline: ``kubernetes_asyncio.watch.Watch().stream(list_cluster_custom_object)``
  (json per line, the library's deserialiser), each object read with
  ``hr_view`` into an equally synced tracker;
- the emulator's ceiling: a raw aiohttp read of the same stream that only
  counts newlines;
- the read path's ceiling: the same informer round with a typed reader that
  reads nothing (every line becomes one fixed view) and no tracker, which
  times what the informer does around the reader: the socket, HTTP, lines,
  cache and handler call.

The same rounds then run on a second emulator whose burst also gives every
HelmRelease the ``metadata.managedFields`` a real cluster keeps (kustomize-
controller's apply, helm-controller's finalizer and status, ``flux
reconcile``'s annotation): a real API server sends them in every event, so
events are 3.6 KB instead of 2.9 KB (the emulator's own managedFields, one manager).

Then, without any I/O, on the bytes of that stream: orjson alone, orjson and
the dict reader (``hr_view``, what the baseline does per event), the typed
reader the informer uses (``hr_event``: the native reader where it is built,
else msgspec straight into the view; the results' ``watch_reader`` says), and
the informer's whole per-line path (``Informer._on_line``, tracker included):
the CPU bounds of the figure.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from bench.common import (
    HR_GROUP,
    HR_PLURAL,
    HR_VERSION,
    Child,
    Context,
    Figure,
    Stopwatch,
    library_client,
    median,
)
from bench.engine import Counting, make_tracker
from fluxwatch import native
from fluxwatch.kube.client import HELMRELEASES, KubeClient
from fluxwatch.kube.codec import Codec
from fluxwatch.kube.helmrelease import (
    HELMRELEASES_CODEC,
    HRView,
    _hr_event_py,
    _hr_page_py,
    hr_event,
    hr_view,
)
from fluxwatch.kube.informer import MODIFIED, Informer

GOAL_RATE = 50_000.0
GOAL_RATIO = 4.0


async def _raw_read(emu: Child, n: int) -> tuple[float, list[bytes]]:
    """Read the replayed stream without parsing; return seconds and the chunks."""
    url = f"{emu.info['url']}/apis/{HR_GROUP}/{HR_VERSION}/{HR_PLURAL}"
    params = {"watch": "true", "resourceVersion": emu.info["burst_from"]}
    headers = {"Authorization": f"Bearer {emu.info['token']}"}
    chunks: list[bytes] = []
    seen = 0
    async with aiohttp.ClientSession() as session:
        clock = Stopwatch()
        async with session.get(url, params=params, headers=headers) as resp:
            async for chunk in resp.content.iter_any():
                chunks.append(chunk)
                seen += chunk.count(b"\n")
                if seen >= n:
                    break
        return clock(), chunks


async def _fluxwatch_round(informer: Informer[Any], counter: Counting, rv: str, n: int) -> float:
    done = counter.arm(n)
    informer.resource_version = rv
    start = time.perf_counter()
    task = asyncio.create_task(informer._watch())
    try:
        end = await asyncio.wait_for(done, 120)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return end - start


async def _baseline_round(api: Any, counter: Counting, rv: str, n: int) -> float:
    from kubernetes_asyncio import watch

    done = counter.arm(n)
    stream = watch.Watch()
    start = time.perf_counter()
    async with stream:
        async for event in stream.stream(
            api.list_cluster_custom_object, HR_GROUP, HR_VERSION, HR_PLURAL, resource_version=rv
        ):
            counter(event["type"], hr_view(event["object"]), None)
            if done.done():
                stream.stop()
                break
    return done.result() - start


def _reading_nothing(view: HRView) -> Codec[HRView]:
    """A codec whose typed reader reads nothing: every line becomes ``view``."""
    event = (MODIFIED, view)
    return Codec(hr_view, lambda _line, _known: event)


def _cpu_bounds(chunks: list[bytes], n: int, informer: Informer[Any]) -> dict[str, float]:
    """Events per second of each stage alone, on the stream's bytes (no I/O)."""
    lines = [line for line in b"".join(chunks).split(b"\n") if line][:n]
    out: dict[str, float] = {}

    def rate(label: str, fn: Any) -> None:
        best = float("inf")
        for _ in range(3):
            clock = Stopwatch()
            fn()
            best = min(best, clock())
        out[label] = len(lines) / best

    loads = orjson.loads

    def parse() -> None:
        for line in lines:
            loads(line)

    def parse_view() -> None:
        for line in lines:
            hr_view(loads(line)["object"])

    def typed_view() -> None:
        for line in lines:
            hr_event(line)

    def python_view() -> None:
        for line in lines:
            _hr_event_py(line)

    def informer_path() -> None:
        on_line = informer._on_line
        for line in lines:
            on_line(line)

    rate("orjson", parse)
    rate("orjson+view", parse_view)
    rate("typed_view", typed_view)
    rate("python_view", python_view)
    rate("informer_on_line", informer_path)
    return out


@dataclass
class _Measured:
    samples: dict[str, list[float]]
    bounds: dict[str, float]
    bytes_per_event: float

    def median(self, key: str) -> float:
        return median(self.samples[key])


async def _measure(ctx: Context, emu: Child, n: int, label: str) -> _Measured:
    """Rounds of fluxwatch, the baseline and the raw read on one emulator's burst."""
    rv = emu.info["burst_from"]
    kubeconfig = emu.info["kubeconfig"]

    # fluxwatch: a synced informer feeding a tracker, as the daemon runs it.
    client = await KubeClient.from_config(kubeconfig)
    tracker = make_tracker()
    counter = Counting(tracker)
    informer: Informer[Any] = Informer(client, HELMRELEASES, HELMRELEASES_CODEC, counter)
    await informer._relist()

    # baseline: the library's client and a tracker synced from the library's list.
    from kubernetes_asyncio import client as k8s_client

    api_client = await library_client(kubeconfig)
    api = k8s_client.CustomObjectsApi(api_client)
    base_tracker = make_tracker()
    listed = await api.list_cluster_custom_object(HR_GROUP, HR_VERSION, HR_PLURAL)
    for obj in listed["items"]:
        base_tracker.upsert(hr_view(obj))
    del listed
    base_counter = Counting(base_tracker)
    # the read path alone: the same informer round, nothing read from the lines, no tracker.
    free_counter = Counting(None)
    reading_nothing: Informer[HRView] = Informer(
        client, HELMRELEASES, _reading_nothing(next(iter(informer.cache.values()))), free_counter
    )
    gc.collect()

    # fluxwatch with the Python reader (FLUXWATCH_NATIVE=0's path), read in the rounds right
    # after the native one: this host's speed moves twofold within minutes, so only rounds
    # side by side compare the two readers.
    python_counter = Counting(make_tracker())
    python_informer: Informer[HRView] = Informer(
        client, HELMRELEASES, Codec(hr_view, _hr_event_py, _hr_page_py), python_counter
    )
    await python_informer._relist()

    samples: dict[str, list[float]] = {
        "fluxwatch": [],
        "python_reader": [],
        "baseline": [],
        "emulator": [],
        "read_path": [],
    }
    chunks: list[bytes] = []
    try:
        await _raw_read(emu, n)  # warm-up: connections, caches on both sides
        await _fluxwatch_round(informer, counter, rv, n)
        for i in range(ctx.sizes.watch_rounds):
            seconds, chunks = await _raw_read(emu, n)
            samples["emulator"].append(n / seconds)
            samples["fluxwatch"].append(n / await _fluxwatch_round(informer, counter, rv, n))
            samples["python_reader"].append(
                n / await _fluxwatch_round(python_informer, python_counter, rv, n)
            )
            samples["baseline"].append(n / await _baseline_round(api, base_counter, rv, n))
            samples["read_path"].append(
                n / await _fluxwatch_round(reading_nothing, free_counter, rv, n)
            )
            ctx.log(
                f"  watch{label} round {i + 1}: fluxwatch {samples['fluxwatch'][-1]:,.0f}/s, "
                f"with the Python reader {samples['python_reader'][-1]:,.0f}/s, "
                f"baseline {samples['baseline'][-1]:,.0f}/s, "
                f"emulator {samples['emulator'][-1]:,.0f}/s, "
                f"read path {samples['read_path'][-1]:,.0f}/s"
            )
        bounds = _cpu_bounds(chunks, n, informer)
    finally:
        await client.close()
        await api_client.close()
    return _Measured(samples, bounds, sum(len(c) for c in chunks) / max(1, n))


def _reader_figures(n: int, measured: _Measured, label: str) -> list[Figure]:
    """fluxwatch's rounds against the rounds right after them with the Python reader. The
    host's speed moves twofold within minutes, so each pair's own ratio is what compares
    the readers; their median is in the figure's bound and details (README, "Performance")."""
    pairs = list(zip(measured.samples["fluxwatch"], measured.samples["python_reader"], strict=True))
    ratios = sorted(fw / py for fw, py in pairs if py > 0)
    if not ratios:
        return []
    reader = native.watch_reader()
    return [
        Figure(
            "watch",
            f"watch throughput, {n:,} HRs{label}: the {reader} reader against the Python one",
            measured.median("fluxwatch"),
            "events/s",
            measured.median("python_reader"),
            "the same informer and tracker with the Python reader, in the round right after",
            bound=(
                f"{len(ratios)} pairs of rounds side by side; their own ratios "
                f"{', '.join(f'{r:.2f}' for r in ratios)} (median {median(ratios):.2f})"
            ),
            details={"pair_ratios": ratios, "median_pair_ratio": median(ratios)},
        )
    ]


async def run(ctx: Context) -> list[Figure]:
    n = ctx.sizes.watch_releases
    measured = await _measure(ctx, await ctx.emulator(n, burst=True), n, "")
    # The same burst as a real API server sends it: every object with its managedFields.
    args = ["--releases", str(n), "--burst", "--managed-fields"]
    args += ["--kubeconfig-out", str(ctx.workdir / "emu-managed.kc")]
    if ctx.placement.helper is not None:
        args += ["--cpu", str(ctx.placement.helper)]
    managed_emu = await Child.start("bench.emulator", *args)
    try:
        managed = await _measure(ctx, managed_emu, n, " (managedFields)")
    finally:
        await managed_emu.stop()

    samples, bounds = measured.samples, measured.bounds
    fw, base, emu_rate = (measured.median(k) for k in ("fluxwatch", "baseline", "emulator"))
    reader = native.watch_reader()
    read_path = measured.median("read_path")
    common = {"releases": n, "rounds": ctx.sizes.watch_rounds, "samples": samples}
    bound = (
        f"CPU of the one core: the typed reader (bytes to view, the {reader} one) runs at "
        f"{bounds['typed_view']:,.0f}/s (the Python one {bounds['python_view']:,.0f}/s, "
        f"orjson alone {bounds['orjson']:,.0f}/s, orjson and the "
        f"dict reader {bounds['orjson+view']:,.0f}/s), the informer's whole per-line path "
        f"without I/O at {bounds['informer_on_line']:,.0f}/s; the rest is reading the socket; "
        f"the emulator serves {emu_rate:,.0f}/s"
    )
    stream_bytes = measured.bytes_per_event * n
    return [
        Figure(
            "watch",
            f"watch throughput, {n:,} HRs",
            fw,
            "events/s",
            base,
            "kubernetes_asyncio Watch().stream + hr_view + tracker",
            goal=f">= {GOAL_RATE:,.0f}/s and >= {GOAL_RATIO:g}x baseline",
            goal_met=fw >= GOAL_RATE and base > 0 and fw / base >= GOAL_RATIO,
            bound=bound,
            details={**common, "cpu_bounds_events_per_s": bounds},
        ),
        Figure(
            "watch",
            f"watch throughput, {n:,} HRs, events with managedFields",
            managed.median("fluxwatch"),
            "events/s",
            managed.median("baseline"),
            "kubernetes_asyncio Watch().stream + hr_view + tracker",
            bound=(
                f"as above, on {managed.bytes_per_event:,.0f}-byte events (a real API server "
                "sends managedFields in every object): the typed reader skips them, at "
                f"{managed.bounds['typed_view']:,.0f}/s without I/O"
            ),
            details={
                "releases": n,
                "rounds": ctx.sizes.watch_rounds,
                "samples": managed.samples,
                "bytes_per_event": managed.bytes_per_event,
                "cpu_bounds_events_per_s": managed.bounds,
            },
        ),
        *(_reader_figures(n, measured, "") + _reader_figures(n, managed, ", with managedFields")),
        Figure(
            "watch",
            "watch: emulator ceiling (raw read, no parsing)",
            emu_rate,
            "events/s",
            bound="the emulator process (its own CPU) and loopback",
            details={
                "mb_per_s": emu_rate * stream_bytes / max(1, n) / 1e6,
                "bytes_per_event": stream_bytes / max(1, n),
            },
        ),
        Figure(
            "watch",
            "watch: read path ceiling (informer reading nothing from the lines, no tracker)",
            read_path,
            "events/s",
            bound=(
                "the socket, HTTP, splitting lines, the cache and the handler call in the "
                "informer's own round; what is left of a fluxwatch round is the typed reader "
                "and the tracker"
            ),
        ),
        Figure(
            "watch",
            "watch: CPU ceiling, orjson parse alone",
            bounds["orjson"],
            "events/s",
            bound="orjson.loads of ~2.9 KB HelmRelease events, one core",
        ),
        Figure(
            "watch",
            "watch: CPU ceiling, typed reader, bytes to view (no I/O)",
            bounds["typed_view"],
            "events/s",
            bounds["python_view"],
            "the Python reader (msgspec's typed decode, then the view)",
            bound=f"the {reader} reader: one pass over the line, the view built in C"
            if reader == "native"
            else "msgspec decode of the declared fields + the view, one core",
        ),
        Figure(
            "watch",
            "watch: CPU ceiling, informer per-line path (no I/O)",
            bounds["informer_on_line"],
            "events/s",
            bound="parse + view + cache + tracker, one core",
        ),
    ]
