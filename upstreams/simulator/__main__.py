"""``python -m upstreams.simulator``: run the DeepSeek simulator as a standalone HTTP server.

Prints ``simulator listening on http://HOST:PORT`` once bound (``--port 0`` picks a free port;
``--port-file`` also writes the port to a file), then serves until interrupted or terminated.
The flags set single ``SimConfig`` fields; ``--options`` any of them (JSON text, or ``@path``;
it wins over the flags). ``--fault-on N:KIND`` schedules a fault on the N-th chat request.
``--control`` adds the ``/_sim/`` inspection and reset endpoints (tests only, see ``server``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec
import trio

from upstreams.simulator.config import FAULT_KINDS, SimConfig, fault_schedule
from upstreams.simulator.server import serve_simulator


def _fault(text: str) -> dict[str, object]:
    number, sep, kind = text.partition(":")
    if not sep or not number.isdigit() or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected N:KIND with KIND one of {', '.join(sorted(FAULT_KINDS))}, got {text!r}")
    return {"on_request": int(number), "kind": kind}


def _options(text: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(Path(text[1:]).read_bytes() if text.startswith("@") else text)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"--options {text}: {exc.strerror}") from None
    except msgspec.DecodeError as exc:
        raise argparse.ArgumentTypeError(f"--options is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--options must be a JSON object (SimConfig fields)")
    return value


# flag -> (SimConfig field, argparse keyword arguments); absent flags leave the field alone.
_FIELDS: dict[str, tuple[str, dict[str, Any]]] = {
    "--api-key": ("api_key", {"help": "require this Bearer key"}),
    "--model": ("models", {"action": "append", "help": "accept another model name"}),
    "--reasoning-field": ("reasoning_field", {"choices": ("reasoning_content", "reasoning")}),
    "--context-window": ("context_window", {"type": int}),
    "--max-output-tokens": ("max_output_tokens", {"type": int}),
    "--replay-check": ("replay_check", {"choices": ("tool_calls", "all_assistant", "off")}),
    "--verify-replay": ("verify_replay", {"action": "store_true",
                                          "help": "400 an echoed tool call that differs"}),
    "--reject-mid-system": ("reject_mid_system", {"action": "store_true"}),
    "--chunk-delay": ("chunk_delay_s", {"type": float, "help": "seconds per SSE chunk"}),
    "--keepalive": ("keepalive_comments", {"type": int, "help": "keep-alives before answers"}),
    "--keepalive-interval": ("keepalive_interval_s", {"type": float}),
    "--stall": ("stall_s", {"type": float, "help": "seconds the stall fault pauses"}),
    "--slow-chunk": ("slow_chunk_s", {"type": float, "help": "per-piece delay of the slow fault"}),
    "--usage-on-finish-chunk": ("usage_on_finish_chunk", {"action": "store_true"}),
    "--responses-flavour": ("responses_flavour", {"choices": ("deepseek", "openai", "llamacpp")}),
    "--messages-flavour": ("messages_flavour", {"choices": ("deepseek", "anthropic")}),
    "--no-interleave": ("interleave_parallel", {"action": "store_false",
                                               "help": "parallel tool calls one after another"}),
    "--history": ("history", {"type": int, "help": "request bodies / records kept"}),
    "--seed": ("seed", {"type": int}),
}


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, SimConfig]:
    parser = argparse.ArgumentParser(prog="python -m upstreams.simulator",
                                     description="DeepSeek-faithful simulator server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, default=None,
                        help="write the bound port to this file once listening")
    parser.add_argument("--options", type=_options, default={}, metavar="JSON|@PATH",
                        help='SimConfig fields as a JSON object, e.g. {"verify_replay": true}')
    parser.add_argument("--fault-on", type=_fault, action="append", default=[],
                        metavar="N:KIND", help="fault on the N-th chat request (repeatable)")
    parser.add_argument("--thinking-off", action="store_true",
                        help="thinking off when the request does not say")
    for flag, (field, kwargs) in _FIELDS.items():
        parser.add_argument(flag, dest=field, default=argparse.SUPPRESS, **kwargs)
    parser.add_argument("--control", action="store_true",
                        help="serve the /_sim/ inspection and reset endpoints (tests only)")
    parser.add_argument("--verbose", action="store_true", help="hypercorn error log on stderr")
    args = parser.parse_args(argv)
    fields = {field: getattr(args, field) for field, _ in _FIELDS.values() if hasattr(args, field)}
    if args.thinking_off:
        fields["thinking_default"] = False
    fields.update(args.options)
    if args.fault_on:
        fields["faults"] = [*fields.get("faults", ()), *args.fault_on]
    try:
        config = msgspec.convert(fields, SimConfig)
        fault_schedule(config)
    except (msgspec.ValidationError, ValueError) as exc:
        parser.error(f"bad simulator option: {exc}")
    return args, config


async def _main(args: argparse.Namespace, config: SimConfig) -> None:
    async with trio.open_nursery() as nursery:
        url = await nursery.start(lambda task_status: serve_simulator(
            config, host=args.host, port=args.port, quiet=not args.verbose,
            control=args.control, task_status=task_status))
        if args.port_file is not None:
            partial = args.port_file.with_name(args.port_file.name + ".partial")
            partial.write_text(f"{url.rsplit(':', 1)[1]}\n")
            partial.replace(args.port_file)  # readers never see a half-written file
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
