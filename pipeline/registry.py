"""Resolve names from pipelines.yaml into objects: stages, upstream types and client codecs.

A bare name goes through a built-in table (``STAGES``, ``UPSTREAMS``, ``CLIENTS``: YAML name →
``module:attr``, nothing imported until used, so this floor never imports the stages and
upstreams above it); a name containing ``:`` is ``module:attr`` (``pkgutil.resolve_name``). Each stage validates its
own ``Config``; every error names the pipeline, the stage index and the field.
"""

from __future__ import annotations

import inspect
import os
import pkgutil
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec
import structlog

from pipeline.config import GatewayConfig, PipelineConfig, RouteWhen
from pipeline.errors import ConfigError
from pipeline.protocols.base import Codec
from pipeline.routing import Route
from pipeline.stage import Stage
from pipeline.upstream import Upstream, UpstreamConfig

STAGES: dict[str, str] = {
    "describe_images": "stages.describe_images:DescribeImages",
    "thinking_filter": "stages.thinking_filter:ThinkingFilter",
    "structured_output": "stages.structured_output:StructuredOutput",
    "token_budget": "stages.token_budget:TokenBudget",
    "tool_ids": "stages.tool_ids:ToolIdMap",
    "web_search": "stages.web_search:WebSearch",
}
UPSTREAMS: dict[str, str] = {
    "openai_chat": "upstreams.openai_chat:OpenAIChatUpstream",
    "openai_responses": "upstreams.openai_responses:OpenAIResponsesUpstream",
    "anthropic_messages": "upstreams.anthropic_messages:AnthropicMessagesUpstream",
    "simulator": "upstreams.simulator.upstream:SimulatorUpstream",
}
CLIENTS: dict[str, str] = {
    "anthropic": "pipeline.protocols.anthropic:AnthropicCodec",
    "responses": "pipeline.protocols.responses:ResponsesCodec",
    "chat": "pipeline.protocols.chat:ChatCodec",
}


def _resolve(name: str, table: dict[str, str], what: str) -> Any:
    target = name if ":" in name else table.get(name)
    if target is None:
        raise ConfigError(f"unknown {what} {name!r} (built-in: {', '.join(sorted(table))}; or use module:attr)")
    try:
        return pkgutil.resolve_name(target)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"cannot import {what} {name!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- the module's own code ran: a SyntaxError, anything it raises
        raise ConfigError(f"cannot import {what} {name!r}: {_fault(exc)}") from None


def resolve(name: str, what: str) -> Any:
    """The object a ``module:attr`` name names (a stage's pluggable part, e.g. a search provider).

    Raises:
        ConfigError: not ``module:attr``, or it cannot be imported.
    """
    return _resolve(name, {}, what)


def _fault(exc: BaseException) -> str:
    """An exception from an operator's module or constructor, as one line with its type."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


@dataclass
class Pipeline:
    """One configured pipeline, built at startup and shared by all its requests."""

    id: str
    config: PipelineConfig
    codec: Codec
    stages: list[Stage]
    upstreams: list[Upstream]
    api_keys: tuple[bytes, ...] = ()
    request_stages: list[Stage] = field(default_factory=list)
    # The routing rules in order, the default (``upstream``) last; see ``pipeline.routing``.
    routing: tuple[Route, ...] = ()

    def __post_init__(self) -> None:
        self.request_stages = [s for s in self.stages if type(s).has_request_hook()]
        if not self.routing:
            self.routing = (Route("default", RouteWhen(), tuple(self.upstreams)),)

    def request_order(self) -> list[str]:
        return [s.id for s in self.stages if type(s).has_request_hook()]

    def response_order(self) -> list[str]:
        return [s.id for s in reversed(self.stages) if type(s).has_event_hook() or type(s).has_task_hook()]


def _stage_entry(entry: str | dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if len(entry) != 1:
        raise ConfigError(f"{where}: a stage entry is a name or a one-key mapping {{name: {{options}}}}, "
                          f"got keys {sorted(entry)}")
    (name, options), = entry.items()
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where} ({name}): options must be a mapping, got {type(options).__name__}")
    return name, options


def resolve_stage(name: str) -> type[Stage]:
    """The ``Stage`` subclass a YAML stage name (built-in or ``module:attr``) names; ``ConfigError``."""
    cls = _resolve(name, STAGES, "stage")
    if not (isinstance(cls, type) and issubclass(cls, Stage)):
        raise ConfigError(f"{name!r} is not a pipeline.Stage subclass")
    return cls


def build_stage(entry: str | dict[str, Any], *, pipeline_id: str, index: int) -> Stage:
    where = f"pipeline {pipeline_id!r} stage {index}"
    name, options = _stage_entry(entry, where)
    try:
        cls = resolve_stage(name)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    fault = cls.check_hooks()
    if fault is not None:
        raise ConfigError(f"{where} ({name}): {fault}")
    config = stage_options(cls, options, f"{where} ({name})")
    try:
        return cls(config, stage_id=f"{pipeline_id}.{index}.{cls.name}")
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where} ({name}): {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- a stage's __init__ is operator code
        raise ConfigError(f"{where} ({name}): {_fault(exc)}") from None


def stage_options(cls: type[Stage], options: dict[str, Any], where: str) -> msgspec.Struct:
    """``options`` validated by ``cls.Config``. An unknown top-level key is refused whatever the
    Config declares (a plain ``msgspec.Struct`` is held to the README's promise too)."""
    schema = cls.Config
    if not (isinstance(schema, type) and issubclass(schema, msgspec.Struct)):
        raise ConfigError(f"{where}: Config must be a pipeline.StageConfig (msgspec.Struct) subclass")
    known = set(schema.__struct_encode_fields__)
    unknown = [key for key in options if key not in known]
    if unknown:
        raise ConfigError(f"{where}: Object contains unknown field `{unknown[0]}` "
                          f"(options: {', '.join(sorted(known)) or 'none'})")
    try:
        return msgspec.convert(options, type=schema)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def build_upstream(upstream_id: str, raw: dict[str, Any]) -> Upstream:
    where = f"upstream {upstream_id!r}"
    try:
        config = msgspec.convert(raw, type=UpstreamConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        cls = _resolve(config.type, UPSTREAMS, "upstream type")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if isinstance(cls, type) and issubclass(cls, Upstream):
        legacy = {"out", "task_status"} & set(inspect.signature(cls.stream).parameters)
        if legacy:
            raise ConfigError(f"{where}: type {config.type!r} implements the old stream(request, out, ctx, *, "
                              "task_status); write stream(request, attempt, ctx) and hand events over with "
                              "`await attempt.emit([...])` (README: custom upstreams)")
    if not config.base_url and config.type in ("openai_chat", "openai_responses", "anthropic_messages"):
        raise ConfigError(f"{where}: `base_url` is required for type {config.type}")
    if config.base_url and not _is_http_url(config.base_url):
        raise ConfigError(f"{where}: base_url {config.base_url!r} is not an http:// or https:// URL with a host")
    try:
        return cls(config, upstream_id=upstream_id)
    except (ValueError, TypeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- a module:attr upstream's __init__ is operator code
        raise ConfigError(f"{where}: {_fault(exc)}") from None


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range or not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def build_codec(name: str, pipeline_id: str) -> Codec:
    try:
        cls = _resolve(name, CLIENTS, "client")
    except ConfigError as exc:
        raise ConfigError(f"pipeline {pipeline_id!r}: {exc}") from None
    try:
        return cls()
    except Exception as exc:  # noqa: BLE001 -- a module:attr codec is operator code
        raise ConfigError(f"pipeline {pipeline_id!r}: client {name!r}: {_fault(exc)}") from None


def build_pipelines(config: GatewayConfig, *,
                    env: dict[str, str] | None = None) -> tuple[dict[str, Pipeline], dict[str, Upstream]]:
    """Build every upstream (once, by id) and every pipeline. Raises ``ConfigError``."""
    env = dict(os.environ) if env is None else env
    upstreams = {uid: build_upstream(uid, raw) for uid, raw in config.upstreams.items()}
    pipelines: dict[str, Pipeline] = {}
    for pid, pconf in config.pipelines.items():
        codec = build_codec(pconf.client, pid)
        stages = [build_stage(entry, pipeline_id=pid, index=i) for i, entry in enumerate(pconf.stages)]
        ids = _ids(pconf.upstream)
        keys: list[bytes] = []
        for var in pconf.api_keys_env:
            value = env.get(var)
            if not value:
                raise ConfigError(f"pipeline {pid!r}: api_keys_env: environment variable {var} is not set")
            keys.append(value.encode("utf-8", "surrogateescape"))  # the variable's own bytes
        rules = [Route(r.name, r.when, tuple(upstreams[u] for u in _ids(r.upstream)), r.model) for r in pconf.routes]
        rules.append(Route("default", RouteWhen(), tuple(upstreams[u] for u in ids)))
        for uid in {u.id for rule in rules for u in rule.upstreams}:
            if keys and upstreams[uid].config.key_passthrough:
                raise ConfigError(f"pipeline {pid!r}: api_keys_env with upstream {uid!r}'s key_passthrough would "
                                  "forward the gateway's own key upstream; use one or the other")
        pipelines[pid] = Pipeline(pid, pconf, codec, stages, [upstreams[u] for u in ids], tuple(keys),
                                  routing=tuple(rules))
    routes(pipelines)
    return pipelines, upstreams


def _ids(upstream: str | list[str]) -> list[str]:
    return [upstream] if isinstance(upstream, str) else list(upstream)


async def open_upstreams(upstreams: dict[str, Upstream]) -> None:
    """Open each upstream's network resources; a failure is a ``ConfigError`` naming the upstream."""
    for uid, up in upstreams.items():
        try:
            await up.open()
        except Exception as exc:  # noqa: BLE001 -- a module:attr upstream's open() is operator code
            raise ConfigError(f"upstream {uid!r}: cannot open: {_fault(exc)}") from None


def _stages(pipelines: dict[str, Pipeline]) -> list[Stage]:
    return [stage for pipe in pipelines.values() for stage in pipe.stages]


async def open_stages(pipelines: dict[str, Pipeline]) -> None:
    """Run each stage's ``open`` (after the upstreams'); a failure is a ``ConfigError`` naming the
    stage, after closing the ones already opened."""
    opened: list[Stage] = []
    for stage in _stages(pipelines):
        try:
            await stage.open()
        except Exception as exc:  # noqa: BLE001 -- a stage's open() is operator code
            await close_stages_of(opened)
            raise ConfigError(f"stage {stage.id!r}: cannot open: {_fault(exc)}") from None
        opened.append(stage)


async def close_stages(pipelines: dict[str, Pipeline]) -> None:
    """Run each stage's ``aclose`` (at shutdown, before the upstreams close)."""
    await close_stages_of(_stages(pipelines))


async def close_stages_of(stages: list[Stage]) -> None:
    """``aclose`` each of ``stages`` in reverse order; one failing does not keep the others open
    (its fault is logged)."""
    for stage in reversed(stages):
        try:
            await stage.aclose()
        except Exception as exc:  # noqa: BLE001 -- a stage's aclose() is operator code
            structlog.get_logger("gateway").error("stage_close_failed", stage=stage.id, error=_fault(exc))


# Kinds several pipelines may share on one path: ``app._choose`` answers ``/v1/models`` in
# Anthropic's shape when asked by header, else in the first other pipeline's.
SHARED_KINDS = ("models", "hello")


def routes(pipelines: dict[str, Pipeline]) -> dict[tuple[str, str], list[tuple[Pipeline, str]]]:
    """``(method, mount + path)`` to the pipelines serving it, in config order. Raises ``ConfigError``
    for a route one pipeline would never get: its generate endpoint taken by an earlier pipeline
    (two pipelines of one client on one mount)."""
    table: dict[tuple[str, str], list[tuple[Pipeline, str]]] = {}
    for pipe in pipelines.values():
        for ep in pipe.codec.endpoints:
            key = (ep.method, pipe.config.mount + ep.path)
            taken = table.setdefault(key, [])
            if taken and ep.kind not in SHARED_KINDS:
                raise ConfigError(f"pipeline {pipe.id!r}: {ep.method} {key[1]} is already served by pipeline "
                                  f"{taken[0][0].id!r}, so this one would never be reached (give it another mount)")
            taken.append((pipe, ep.kind))
    return table


__all__ = [
    "CLIENTS", "Pipeline", "build_codec", "build_pipelines", "build_stage", "build_upstream", "close_stages",
    "open_stages", "open_upstreams", "resolve", "resolve_stage", "routes", "stage_options",
]
