"""Command line: ``python -m pipeline check [FILE]`` validates a pipelines file.

It resolves every stage, upstream and client name, validates every option, opens each upstream's
client (no request is sent), and prints each pipeline's request order and response order. Exit
status 0 when valid, 1 with the exact fault, in the same one ``error:`` line a start of the
gateway with that file prints.
"""

from __future__ import annotations

import argparse
import os
import sys

import trio

from pipeline.config import load_config
from pipeline.fatal import one_line
from pipeline.registry import build_pipelines, open_upstreams
from pipeline.upstream import Upstream


def check(path: str) -> int:
    try:
        config = load_config(path)
        pipelines, upstreams = build_pipelines(config)
        trio.run(_open_and_close, upstreams)
    except Exception as exc:  # noqa: BLE001 -- refused as startup refuses it: one line, no traceback
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    print(f"{path}: ok ({len(pipelines)} pipelines, {len(upstreams)} upstreams)")
    for pid, pipe in pipelines.items():
        ups = " -> ".join(f"{u.id} ({u.type_name}, profile {u.profile.name})" for u in pipe.upstreams)
        mount = pipe.config.mount or "/"
        print(f"\npipeline {pid}: client {pipe.codec.name} at {mount}, upstream {ups}")
        print("  endpoints:  " + ", ".join(f"{e.method} {pipe.config.mount}{e.path}" for e in pipe.codec.endpoints))
        print("  request:    decode -> " + " -> ".join([*pipe.request_order(), "upstream"]))
        print("  response:   upstream -> " + " -> ".join([*pipe.response_order(), "encode"]))
    return 0


async def _open_and_close(upstreams: dict[str, Upstream]) -> None:
    try:
        await open_upstreams(upstreams)
    finally:
        for up in upstreams.values():
            await up.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="validate a pipelines file and print each pipeline's order")
    p_check.add_argument("file", nargs="?", default=os.environ.get("PIPELINES_CONFIG", "pipelines.yaml"))
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.file)
    return 2


if __name__ == "__main__":
    sys.exit(main())
