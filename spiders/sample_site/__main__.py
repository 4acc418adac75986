"""Serve the sample site by hand: ``python -m spiders.sample_site --port 8080 --generation 2``.

``--blocked NAME`` makes a channel answer as blocked by Telegram and ``--remove NAME/ID`` takes one
message off the site (both repeatable): what a takedown re-check should then find removed.

Prints the base URL on the first line of stdout (scripts read it), then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from spiders.sample_site.content import ChannelKind, World, build_world
from spiders.sample_site.server import SampleSite


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m spiders.sample_site", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=20250303)
    p.add_argument("--generation", type=int, default=1)
    p.add_argument("--big-size", type=int, default=400, help="posts in big_feed")
    p.add_argument("--blocked", action="append", default=[], metavar="NAME", help="serve NAME as blocked")
    p.add_argument("--remove", action="append", default=[], metavar="NAME/ID", help="serve without this message")
    return p.parse_args(argv)


def world_of(args: argparse.Namespace) -> World:
    world = build_world(args.seed, args.generation, args.big_size)
    for spec in args.remove:
        name, _, msg_id = spec.partition("/")
        if not msg_id.isdigit():
            raise SystemExit(f"--remove wants NAME/ID, got {spec!r}")
        world = world.without_message(name, int(msg_id))
    for name in args.blocked:
        world = world.with_kind(name, ChannelKind.BLOCKED)
    return world


async def run(args: argparse.Namespace) -> None:
    world = world_of(args)
    async with SampleSite.serve(world, host=args.host, port=args.port) as site:
        print(site.base_url, flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
