"""The local alert receiver in a process of its own: ``python -m bench.receiver [--cpu C]``.

It runs :class:`fluxwatch.sim.receiver.Receiver` (answers 202 to any POST,
after ``--latency`` seconds, and keeps the body), prints ``{"url": ...}`` and
then answers each JSON line on stdin with ``{"received": <bodies so far>}``;
it exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading

from bench.common import pin
from fluxwatch.sim.receiver import Receiver


def _answer(receiver: Receiver, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for _ in sys.stdin:
        sys.stdout.write(json.dumps({"received": len(receiver.received)}) + "\n")
        sys.stdout.flush()
    loop.call_soon_threadsafe(stop.set)


async def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.receiver")
    p.add_argument("--cpu", type=int)
    p.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = p.parse_args(argv)
    pin(args.cpu)
    receiver = Receiver(latency=args.latency)
    await receiver.start()
    sys.stdout.write(json.dumps({"url": receiver.url}) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_answer, args=(receiver, loop, stop), daemon=True).start()
    await stop.wait()
    await receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
