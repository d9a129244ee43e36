"""``python -m upstreams.simulator``: run the DeepSeek simulator as a standalone HTTP server.

Prints ``simulator listening on http://HOST:PORT`` once bound (``--port 0`` picks a free port),
then serves until interrupted. ``--fault-on N:KIND`` schedules a fault on the N-th chat request;
``--options JSON`` sets any other ``SimConfig`` field (it wins over the flags).
"""

from __future__ import annotations

import argparse
import sys

import msgspec
import trio

from upstreams.simulator.config import FAULT_KINDS, SimConfig
from upstreams.simulator.server import serve_simulator


def _fault(text: str) -> dict[str, object]:
    number, sep, kind = text.partition(":")
    if not sep or not number.isdigit() or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected N:KIND with KIND one of {', '.join(sorted(FAULT_KINDS))}, got {text!r}")
    return {"on_request": int(number), "kind": kind}


def _options(text: str) -> dict[str, object]:
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise argparse.ArgumentTypeError(f"--options is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--options must be a JSON object")
    return value


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, SimConfig]:
    parser = argparse.ArgumentParser(prog="python -m upstreams.simulator",
                                     description="DeepSeek-faithful simulator server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None, help="require this Bearer key")
    parser.add_argument("--fault-on", type=_fault, action="append", default=[],
                        metavar="N:KIND", help="fault on the N-th chat request (repeatable)")
    parser.add_argument("--model", action="append", default=[], help="accept another model name")
    parser.add_argument("--reasoning-field", choices=("reasoning_content", "reasoning"),
                        default="reasoning_content")
    parser.add_argument("--thinking-off", action="store_true",
                        help="thinking off when the request does not say")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds per SSE chunk")
    parser.add_argument("--keepalive", type=int, default=0, help="keep-alives before answers")
    parser.add_argument("--context-window", type=int, default=1_048_576)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--options", type=_options, default={}, metavar="JSON",
                        help="more SimConfig fields as a JSON object, e.g. {\"verify_replay\": true}")
    parser.add_argument("--verbose", action="store_true", help="hypercorn error log on stderr")
    args = parser.parse_args(argv)
    try:
        config = msgspec.convert({
            "api_key": args.api_key, "faults": args.fault_on, "models": args.model,
            "reasoning_field": args.reasoning_field, "thinking_default": not args.thinking_off,
            "chunk_delay_s": args.chunk_delay, "keepalive_comments": args.keepalive,
            "context_window": args.context_window, "seed": args.seed, **args.options,
        }, SimConfig)
    except msgspec.ValidationError as exc:
        parser.error(f"bad simulator option: {exc}")
    return args, config


async def _main(args: argparse.Namespace, config: SimConfig) -> None:
    async with trio.open_nursery() as nursery:
        url = await nursery.start(lambda task_status: serve_simulator(
            config, host=args.host, port=args.port, quiet=not args.verbose,
            task_status=task_status))
        sys.stdout.write(f"simulator listening on {url}\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    args, config = parse_args(argv)
    try:
        trio.run(_main, args, config)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
