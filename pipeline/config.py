"""pipelines.yaml: msgspec Structs for the file, ``${VAR}`` interpolation, and ``load_config``.

The top level is validated strictly (unknown keys are errors). Stage options and upstream
options stay raw here; each stage/upstream class validates its own ``Config`` in
``pipeline.registry`` so errors name the pipeline, the stage index and the field.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from pipeline.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class RetryConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Retries before the first byte (connect errors, 429, 5xx, an early upstream failure)."""

    # Attempts on one upstream before moving to the next of the fallback list (1 = no retry).
    attempts_per_upstream: Annotated[int, msgspec.Meta(ge=1)] = 3
    # Attempts in total for one request across every upstream: the per-request retry budget.
    budget: Annotated[int, msgspec.Meta(ge=1)] = 6
    # Backoff before retry n (0-based) is uniform(0, min(backoff_cap_s, backoff_base_s * 2**n)).
    backoff_base_s: Annotated[float, msgspec.Meta(ge=0)] = 0.25
    # Largest backoff between two attempts, seconds.
    backoff_cap_s: Annotated[float, msgspec.Meta(ge=0)] = 4.0
    # Longest upstream Retry-After the gateway waits out, seconds; a longer one ends the retries
    # on that upstream (next fallback, else the client gets the 429 with its Retry-After).
    retry_after_cap_s: Annotated[float, msgspec.Meta(ge=0)] = 8.0


Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


class RouteWhen(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The traits a route matches (all that are given must hold; none given: every request).
    ``pipeline.routing`` says how each is read off a request."""

    # The client's model name: a glob or a list of globs (any matches).
    model: str | list[str] | None = None
    # A small background call (titles, summaries): true | false.
    small: bool | None = None
    # The client asked for thinking (or an effort other than none): true | false.
    thinking: bool | None = None
    # The client's reasoning effort is one of these.
    effort: list[Effort] | None = None
    # The prompt is estimated at more than this many tokens (long context).
    prompt_tokens_over: Annotated[int, msgspec.Meta(ge=0)] | None = None
    # An image anywhere in the conversation (user turns, tool results): true | false.
    images: bool | None = None
    # The client offers its hosted web search tool: true | false.
    web_search: bool | None = None
    # A sub-agent's request (Claude Code marks them with x-claude-code-agent-id): true | false.
    subagent: bool | None = None


class RouteConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One routing rule: requests with the traits of ``when`` go to ``upstream``."""

    # Named in the request_finished log line and the metrics (route label).
    name: str
    when: RouteWhen = RouteWhen()
    # Upstream id, or an ordered fallback list of ids.
    upstream: str | list[str]
    # Upstream model name for every request of this route (default: the upstream's models map).
    model: str | None = None


class KeyLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits per gateway key (``api_keys_env``), counted in the store: across every replica that
    shares it (pipeline/usage.py). Unset: no limit."""

    # Requests of one key in flight at once.
    concurrent: Annotated[int, msgspec.Meta(ge=1)] | None = None
    # Requests of one key started in one calendar minute.
    per_minute: Annotated[int, msgspec.Meta(ge=1)] | None = None


class PipelineConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Client protocol served: anthropic | responses | chat.
    client: str
    # Upstream id, or an ordered fallback list of ids: the default route, after every rule of routes.
    upstream: str | list[str]
    # Routing rules, evaluated in order before the default (`upstream`); first match wins.
    routes: list[RouteConfig] = []
    # Stage entries: a bare name, or a one-key mapping {name: {options}}.
    stages: list[str | dict[str, Any]] = []
    # URL prefix the client endpoints are served under ("" = root).
    mount: str = ""
    # Overall deadline for one request, seconds.
    deadline_s: Annotated[float, msgspec.Meta(gt=0)] = 900.0
    # Optional gateway keys: names of env vars holding accepted keys (x-api-key or Bearer).
    api_keys_env: list[str] = []
    # Limits per gateway key across replicas (needs api_keys_env): concurrent, per_minute.
    key_limits: KeyLimits = KeyLimits()
    # Retry policy before the first byte (see RetryConfig).
    retry: RetryConfig = RetryConfig()


class ServerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Largest accepted request body, bytes (Claude Code histories reach several MB).
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1)] = 32 * 1024 * 1024
    # Longest wait for the next piece of a request body, seconds (a no-progress limit: a large
    # body on a slow link keeps going; the pipeline's deadline_s bounds the whole request). 408.
    body_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    # Deepest JSON nesting ([ and { levels) accepted in a request body; 0 = no check.
    max_json_depth: Annotated[int, msgspec.Meta(ge=0)] = 64
    # Memory of each conversation's last requests, MiB (0 = off): a session's next request
    # decodes, shapes and re-encodes only what is new in its history (pipeline/conversation.py).
    conversation_memory_mb: Annotated[int, msgspec.Meta(ge=0)] = 256
    # At most this many remembered requests (least recently used out).
    conversation_entries: Annotated[int, msgspec.Meta(ge=0)] = 256
    # structlog level: debug | info | warning | error.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Render logs as JSON lines (true) or human-readable key=value (false).
    log_json: bool = True
    # GET /metrics needs a gateway key (any pipeline's, x-api-key or Bearer): true | false; unset:
    # required as soon as any pipeline sets api_keys_env, open otherwise.
    metrics_require_key: bool | None = None
    # Longest a client may leave the response unread (each 64 KiB of it), seconds; then the
    # connection is aborted and the request ends (pipeline/hypercorn_patch.py).
    write_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    # How often the pipelines file is checked for a change that reloads it, seconds (0 = only on
    # SIGHUP); open streams finish on the configuration they began with (pipeline/reload.py).
    reload_poll_s: Annotated[float, msgspec.Meta(ge=0)] = 2.0


class StoreConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where state that outlives a request lives (stored Responses): ``pipeline.store``."""

    # sqlite: embedded, one file in data_dir (the default) | memory: this process only (tests) |
    # redis: a Redis or Valkey server, shared by several replicas (README "Store").
    backend: Literal["sqlite", "memory", "redis"] = "sqlite"
    # sqlite: the directory of store.sqlite3, created if needed; unset: $GATEWAY_DATA_DIR, else
    # ./gateway-data.
    data_dir: str | None = None
    # redis: redis://[[user]:password@]host[:port][/db] (e.g. ${REDIS_URL}).
    url: str | None = None
    # redis: prefix of every key, so that several gateways can share one server.
    key_prefix: str = "gw:"
    # redis: longest wait for one call, seconds.
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    # Stored Responses (store: true, the API's default) are kept this long, seconds (OpenAI's
    # retention: 30 days); then GET is a 404 and previous_response_id a 400.
    responses_ttl_s: Annotated[float, msgspec.Meta(gt=0)] = 30 * 86400.0


class GatewayConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    upstreams: dict[str, dict[str, Any]]
    pipelines: dict[str, PipelineConfig]
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()


def interpolate(value: Any, env: dict[str, str], path: str = "$") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a decoded YAML tree."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{path}: environment variable {name} is not set "
                              f"(use ${{{name}:-default}} to default it)")

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def parse_config(text: str | bytes, *, env: dict[str, str] | None = None,
                 source: str = "pipelines.yaml") -> GatewayConfig:
    """Parse and validate the top level of a pipelines file.

    Raises:
        ConfigError: YAML syntax, a missing env var, or a schema violation, with its path.
    """
    try:
        raw = msgspec.yaml.decode(text)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with `upstreams` and `pipelines`")
    raw = interpolate(raw, dict(os.environ) if env is None else env)
    pipelines_raw = raw.get("pipelines")
    if isinstance(pipelines_raw, dict):  # validated one by one so errors name the pipeline
        checked: dict[str, PipelineConfig] = {}
        for pid, body in pipelines_raw.items():
            try:
                checked[str(pid)] = msgspec.convert(body, type=PipelineConfig)
            except msgspec.ValidationError as exc:
                raise ConfigError(f"{source}: pipeline {pid!r}: {exc}") from None
        raw = {**raw, "pipelines": {}}
    try:
        config = msgspec.convert(raw, type=GatewayConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if isinstance(pipelines_raw, dict):
        config = msgspec.structs.replace(config, pipelines=checked)
    for pid, pipe in config.pipelines.items():
        _check_upstreams(pipe.upstream, config, f"{source}: pipeline {pid!r}", "`upstream`")
        names: set[str] = {"default"}
        for i, route in enumerate(pipe.routes):
            where = f"{source}: pipeline {pid!r}: routes[{i}] ({route.name!r})"
            if route.name in names:
                raise ConfigError(f"{where}: the name is already used (`default` is the last route's)")
            names.add(route.name)
            _check_upstreams(route.upstream, config, where, "`upstream`")
        if pipe.mount and (not pipe.mount.startswith("/") or pipe.mount.endswith("/")):
            raise ConfigError(f"{source}: pipeline {pid!r}: mount {pipe.mount!r} "
                              "must start with '/' and not end with '/'")
    for pid, pipe in config.pipelines.items():
        limited = pipe.key_limits.concurrent is not None or pipe.key_limits.per_minute is not None
        if limited and not pipe.api_keys_env:
            raise ConfigError(f"{source}: pipeline {pid!r}: key_limits needs api_keys_env (the keys it limits)")
    if config.server.metrics_require_key and not any(p.api_keys_env for p in config.pipelines.values()):
        raise ConfigError(f"{source}: server.metrics_require_key is true but no pipeline sets api_keys_env, "
                          "so no key could open /metrics")
    _check_store(config.store, source)
    return config


def _check_store(store: StoreConfig, source: str) -> None:
    if store.backend == "redis":
        if not store.url:
            raise ConfigError(f"{source}: store: backend redis needs `url` (redis://host:port/db)")
        if not store.url.startswith("redis://"):
            raise ConfigError(f"{source}: store.url {store.url!r}: expected redis://[[user]:password@]host[:port][/db]")
    elif store.url is not None:
        raise ConfigError(f"{source}: store.url is for backend redis (backend is {store.backend})")
    if store.data_dir is not None and store.backend != "sqlite":
        raise ConfigError(f"{source}: store.data_dir is for backend sqlite (backend is {store.backend})")


def _check_upstreams(upstream: str | list[str], config: GatewayConfig, where: str, field: str) -> None:
    ups = [upstream] if isinstance(upstream, str) else upstream
    if not ups:
        raise ConfigError(f"{where}: {field} is empty")
    for up in ups:
        if up not in config.upstreams:
            raise ConfigError(f"{where}: unknown upstream {up!r} (defined: {', '.join(sorted(config.upstreams))})")


def load_config(path: str | os.PathLike[str], *, env: dict[str, str] | None = None) -> GatewayConfig:
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    return parse_config(text, env=env, source=str(p))


__all__ = [
    "GatewayConfig", "KeyLimits", "PipelineConfig", "RetryConfig", "RouteConfig", "RouteWhen", "ServerConfig",
    "StoreConfig", "interpolate", "load_config", "parse_config",
]
