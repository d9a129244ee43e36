"""Command line: ``python -m pipeline check [FILE]`` validates a pipelines file;
``python -m pipeline stages [NAME ...]`` lists stages with their options;
``python -m pipeline setup claude|codex [--write PATH]`` sets a client up for this gateway.

``check`` resolves every stage, upstream and client name, validates every option, opens each
upstream's client and each stage (no request is sent; both are closed again), and prints each
pipeline's request order and response order. Exit status 0 when valid, 1 with the exact fault, in
the same one ``error:`` line a start of the gateway with that file prints.

``stages`` prints one block per built-in stage (or per NAME: a built-in name or ``module:attr``):
its YAML name and class, its hooks, and each option of its ``Config`` with type, default and the
comment above the field.

``setup`` (``pipeline.setup``) derives a client's settings from the pipelines file: ``claude``
prints Claude Code's environment (``--write FILE`` merges it into a settings.json), ``codex``
prints a config.toml (``--write DIR`` writes it and the model catalog into a Codex home).
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys

import msgspec
import trio

from pipeline import setup
from pipeline.config import load_config
from pipeline.fatal import one_line
from pipeline.registry import (
    STAGES,
    Pipeline,
    build_pipelines,
    close_stages,
    open_stages,
    open_upstreams,
    resolve_stage,
)
from pipeline.routing import describe
from pipeline.store import Store, open_store
from pipeline.upstream import Upstream


def check(path: str) -> int:
    try:
        config = load_config(path)
        pipelines, upstreams = build_pipelines(config)
        store = open_store(config.store)
        trio.run(_open_and_close, upstreams, pipelines, store)
    except Exception as exc:  # noqa: BLE001 -- refused as startup refuses it: one line, no traceback
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    print(f"{path}: ok ({len(pipelines)} pipelines, {len(upstreams)} upstreams)")
    ttl = config.store.responses_ttl_s
    print(f"store: {store.where}; stored Responses kept {ttl:.0f}s ({ttl / 86400:.4g} days)")
    for pid, pipe in pipelines.items():
        ups = " -> ".join(f"{u.id} ({u.config.type}, profile {u.profile.name})" for u in pipe.upstreams)
        mount = pipe.config.mount or "/"
        print(f"\npipeline {pid}: client {pipe.codec.name} at {mount}, upstream {ups}")
        print("  endpoints:  " + ", ".join(f"{e.method} {pipe.config.mount}{e.path}" for e in pipe.codec.endpoints))
        print("  request:    decode -> " + " -> ".join([*pipe.request_order(), "upstream"]))
        print("  response:   upstream -> " + " -> ".join([*pipe.response_order(), "encode"]))
        if len(pipe.routing) > 1:  # the rules in the order they are tried, first match wins
            print("  routes:")
            for i, route in enumerate(pipe.routing, 1):
                print(f"    {i}. {describe(route)}")
    return 0


async def _open_and_close(upstreams: dict[str, Upstream], pipelines: dict[str, Pipeline], store: Store) -> None:
    try:
        await store.open()  # reachable (redis) or creatable (sqlite), as startup needs it
        await store.aclose()
        await open_upstreams(upstreams)
        await open_stages(pipelines)  # closes what it opened when one fails
        await close_stages(pipelines)
    finally:
        for up in upstreams.values():
            await up.aclose()


def list_stages(names: list[str]) -> int:
    try:
        blocks = [describe_stage(name) for name in names or sorted(STAGES)]
    except Exception as exc:  # noqa: BLE001 -- an unknown or broken name: one line
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    print("\n\n".join(blocks))
    return 0


def describe_stage(name: str) -> str:
    """One block: ``name (module:Class)``, its hooks, then each option with type, default and comment."""
    cls = resolve_stage(name)
    hooks = [h for h, has in (("on_request", cls.has_request_hook()), ("on_event", cls.has_event_hook()),
                              ("on_end", cls.has_end_hook()), ("on_events", cls.has_task_hook())) if has]
    lines = [f"{name} ({cls.__module__}:{cls.__qualname__})", "  hooks: " + (", ".join(hooks) or "none")]
    comments = _field_comments(cls.Config)
    fields = msgspec.structs.fields(cls.Config)
    lines.append("  options:" if fields else "  options: none")
    for f in fields:
        if f.default is not msgspec.NODEFAULT:
            default = " = " + msgspec.json.encode(f.default).decode()
        elif f.default_factory is not msgspec.NODEFAULT:
            default = " = " + msgspec.json.encode(f.default_factory()).decode()
        else:
            default = " (required)"
        lines.append(f"    {f.encode_name}: {_type_name(f.type)}{default}")
        lines.extend(f"        {text}" for text in comments.get(f.name, []))
    return "\n".join(lines)


def _type_name(tp: object) -> str:
    return tp.__name__ if isinstance(tp, type) and not getattr(tp, "__args__", None) else str(tp).replace("typing.", "")


def _field_comments(config: type) -> dict[str, list[str]]:
    """The ``#`` comment lines right above each field of ``config``'s source (none if no source)."""
    try:
        source = inspect.getsource(config).splitlines()
    except (OSError, TypeError):
        return {}
    out: dict[str, list[str]] = {}
    block: list[str] = []
    for line in source:
        text = line.strip()
        if text.startswith("#"):
            block.append(text.lstrip("#").strip())
            continue
        head = text.split(":", 1)[0]
        if ":" in text and head.isidentifier():
            out[head] = block
        block = []
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="validate a pipelines file and print each pipeline's order")
    p_check.add_argument("file", nargs="?", default=os.environ.get("PIPELINES_CONFIG", "pipelines.yaml"))
    p_stages = sub.add_parser("stages",
                              help="list stages (built-in, or the names given) with their options and defaults")
    p_stages.add_argument("names", nargs="*", help="built-in names or module:attr (default: every built-in stage)")
    p_setup = sub.add_parser("setup", help="print or write Claude Code's or Codex's settings for this gateway")
    p_setup.add_argument("client", choices=["claude", "codex"])
    p_setup.add_argument("--config", default=os.environ.get("PIPELINES_CONFIG", "pipelines.yaml"),
                         help="the pipelines file the gateway runs with (default: $PIPELINES_CONFIG or pipelines.yaml)")
    p_setup.add_argument("--host", default="127.0.0.1", help="where the gateway listens (default 127.0.0.1)")
    p_setup.add_argument("--port", type=int, default=8000, help="its port (default 8000)")
    p_setup.add_argument("--pipeline", help="the pipeline to use (default: the first serving the client)")
    p_setup.add_argument("--write", metavar="PATH",
                         help="claude: a settings.json to merge the env into; codex: a CODEX_HOME directory")
    p_setup.add_argument("--force", action="store_true", help="codex --write: overwrite an existing config.toml")
    args = parser.parse_args(argv)
    if args.command == "setup":
        try:
            sys.stdout.write(setup.run(args.client, config_path=args.config, host=args.host, port=args.port,
                                       pipeline_id=args.pipeline, write=args.write, force=args.force))
        except Exception as exc:  # noqa: BLE001 -- a broken config or an unwritable path: one line
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return 1
        return 0
    if args.command == "check":
        return check(args.file)
    if args.command == "stages":
        return list_stages(args.names)
    return 2


if __name__ == "__main__":
    sys.exit(main())
