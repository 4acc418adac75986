"""Serve the sample site by hand: ``python -m spiders.sample_site --port 8080 --generation 2``.

Prints the base URL on the first line of stdout (scripts read it), then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from spiders.sample_site.content import build_world
from spiders.sample_site.server import SampleSite


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m spiders.sample_site", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=20250303)
    p.add_argument("--generation", type=int, default=1)
    p.add_argument("--big-size", type=int, default=400, help="posts in big_feed")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    world = build_world(args.seed, args.generation, args.big_size)
    async with SampleSite.serve(world, host=args.host, port=args.port) as site:
        print(site.base_url, flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
