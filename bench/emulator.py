"""The emulator in a process of its own: ``python -m bench.emulator --releases N [--burst]``.

It loads the ``load`` scenario (``N`` installed, Ready HelmReleases), serves
the API on loopback over plain HTTP, prints one JSON line (``url``, ``token``,
``kubeconfig``, ``burst_from``) and serves until its stdin closes.

``--burst`` then modifies every HelmRelease once, as ``flux reconcile`` does
(annotation ``reconcile.fluxcd.io/requestedAt``), and keeps all of it in the
watch history: a watch from ``burst_from`` replays ``N`` MODIFIED events as
fast as the client reads them. Their encodings are built before the line is
printed, so that every replay costs the emulator the same (a join of cached
bytes).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from pathlib import Path
from typing import Any

from bench.common import HR_KEY, pin
from fluxwatch.sim import scenarios
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.store import Store


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.emulator")
    p.add_argument("--releases", type=int, required=True)
    p.add_argument("--burst", action="store_true")
    p.add_argument(
        "--managed-fields",
        action="store_true",
        help="the burst also gives every HelmRelease the managedFields a real cluster keeps",
    )
    p.add_argument("--secrets", action="store_true")
    p.add_argument("--cpu", type=int)
    p.add_argument("--kubeconfig-out", type=Path, required=True)
    return p.parse_args(argv)


def managed_fields(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``metadata.managedFields`` a HelmRelease has in a real cluster: kustomize-controller
    applies the spec, helm-controller owns the finalizer and the status, ``flux reconcile``
    the annotation. The API server sends them in every list item and watch event."""

    def fields(node: Any) -> Any:
        if isinstance(node, dict):
            return {f"f:{k}": fields(v) for k, v in node.items()}
        return {}

    when = obj["metadata"].get("creationTimestamp", "2026-11-26T00:00:00Z")
    version = obj["apiVersion"]
    status_keys: dict[str, Any] = {f"f:{k}": {} for k in obj.get("status") or {}}
    labels: dict[str, Any] = {f"f:{k}": {} for k in obj["metadata"].get("labels") or {}}
    return [
        {
            "apiVersion": version,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": labels}, "f:spec": fields(obj["spec"])},
            "manager": "kustomize-controller",
            "operation": "Apply",
            "time": when,
        },
        {
            "apiVersion": version,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:finalizers": {".": {}, 'v:"finalizers.fluxcd.io"': {}}}},
            "manager": "helm-controller",
            "operation": "Update",
            "time": when,
        },
        {
            "apiVersion": version,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": status_keys},
            "manager": "helm-controller",
            "operation": "Update",
            "subresource": "status",
            "time": when,
        },
        {
            "apiVersion": version,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:annotations": {".": {}, "f:reconcile.fluxcd.io/requestedAt": {}}}
            },
            "manager": "flux",
            "operation": "Update",
            "time": when,
        },
    ]


def burst(store: Store, *, with_managed_fields: bool = False) -> int:
    """Modify every HelmRelease once; return the resourceVersion just before."""
    start = store.resource_version
    items, _ = store.list(HR_KEY)
    for obj in items:
        md = obj["metadata"]
        meta: dict[str, Any] = {"annotations": {"reconcile.fluxcd.io/requestedAt": "bench-burst"}}
        if with_managed_fields:
            meta["managedFields"] = managed_fields(obj)
        store.patch(HR_KEY, md["namespace"], md["name"], {"metadata": meta})
    table = store.table(HR_KEY)
    for ev in table.events_after(start):
        ev.encoded()
    return start


async def main(argv: list[str]) -> int:
    args = _parse(argv)
    pin(args.cpu)
    history = max(10_000, 2 * args.releases + 1_000)
    # Never compacted: a replay from the burst must find it however long the run takes.
    server = ApiServer(Store(history_limit=history), compaction_interval=None)
    await server.start()
    run = await scenarios.start("load", server.store, n=args.releases, secrets=args.secrets)
    burst_from = (
        burst(server.store, with_managed_fields=args.managed_fields) if args.burst else None
    )
    table = server.store.table(HR_KEY)
    for key in table.keys:
        table.encoded(key)  # the first list must not pay for encodings later ones reuse
    gc.collect()
    gc.freeze()  # a large, long-lived heap: keep collections from walking it while serving
    kubeconfig = server.write_kubeconfig(args.kubeconfig_out)
    info = {
        "url": server.url,
        "token": server.admin_token,
        "kubeconfig": str(kubeconfig),
        "releases": args.releases,
        "burst_from": None if burst_from is None else str(burst_from),
    }
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    await run.stop()
    await server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
