"""The sans-IO simulator: ``Simulator.respond(method, path, headers, body) -> SimResponse``.

Routes DeepSeek's endpoints, checks auth, validates (``validate``), plans the answer
(``directives``), spends the budget and encodes (``render``), then applies faults (``faults``).
DeepSeek's Anthropic endpoint, ``POST /anthropic/v1/messages``, goes the same way with its own
validation (``anthropic_validate``: the rules and 400s of that endpoint, its own signatures) and
encoding (``anthropic_render``), so the same directives script the same tool loops.
It keeps small state (request counter, prompt-cache prefixes, emitted tool calls, recent request
bodies) behind a lock; the I/O adapters are ``transport`` (httpx) and ``server`` (ASGI).
"""

from __future__ import annotations

import random
import secrets
import string
import threading
import time
from collections import OrderedDict, deque
from typing import Any

import msgspec

from upstreams.simulator.anthropic_render import BAD_EVENT as MESSAGES_BAD_EVENT
from upstreams.simulator.anthropic_render import ERROR_EVENT as MESSAGES_ERROR_EVENT
from upstreams.simulator.anthropic_render import MessagesRenderer
from upstreams.simulator.anthropic_validate import (
    MessagesCall,
    check_redacted,
    endpoint_secret,
    redact,
    sign,
    validate_messages,
)
from upstreams.simulator.config import (
    DEEPSEEK_MODELS,
    HTTP_FAULTS,
    SimConfig,
    fault_schedule,
)
from upstreams.simulator.directives import Plan, plan_answer, spoil
from upstreams.simulator.faults import http_fault, json_fault, stream_fault
from upstreams.simulator.render import Answer, Renderer, apply_budget, usage
from upstreams.simulator.responses import ResponsesCall, Sealer, convert
from upstreams.simulator.responses_render import BAD_EVENT, ERROR_EVENT, ResponsesRenderer
from upstreams.simulator.validate import ChatCall, SimError, bad, validate

_DECODE = msgspec.json.Decoder()
_ENCODE = msgspec.json.Encoder()
_CHAT_PATHS = ("/chat/completions", "/v1/chat/completions")
_RESPONSES_PATHS = ("/responses", "/v1/responses")
_MODEL_PATHS = ("/models", "/v1/models")
_MESSAGES_PATHS = ("/anthropic/v1/messages",)
_STATS_PATH = "/_sim/stats"
_ALNUM = string.ascii_letters + string.digits
_CACHE_UNIT = 64
_REMEMBERED = 1024


class SimResponse(msgspec.Struct, kw_only=True):
    """What to write: status, headers, then ``chunks`` in order, each after its delay.

    Attributes:
        drop_after: close the connection abruptly after this many chunks (``None``: never).
    """

    status: int
    headers: list[tuple[bytes, bytes]]
    chunks: list[tuple[float, bytes]]
    drop_after: int | None = None


class ReplayCheck(msgspec.Struct, kw_only=True):
    """What ``verify_replay`` compared in one chat request.

    Attributes:
        tool_turns: assistant messages with tool calls in the request.
        verified_turns: of those, turns whose every call this simulator emitted and whose
            reasoning matched byte for byte (a mismatch is a 400, not a count).
        unknown_turns: turns with a call id this simulator never emitted (not comparable).
        verified_bytes: UTF-8 bytes of reasoning compared.
    """

    request: int
    tool_turns: int = 0
    verified_turns: int = 0
    unknown_turns: int = 0
    verified_bytes: int = 0


class SimStats(msgspec.Struct, kw_only=True):
    """Counters for ``GET /_sim/stats``; ``replay`` has one entry per checked chat request."""

    chat_requests: int = 0
    emitted_calls: int = 0
    verified_calls: int = 0  # distinct emitted calls echoed back and compared at least once
    max_request_bytes: int = 0
    last_request_bytes: int = 0
    reasoning_items: int = 0  # Responses mode: reasoning items received back
    sealed_items: int = 0  # of those, carrying this simulator's verified encrypted_content
    replay: list[ReplayCheck] = msgspec.field(default_factory=list)


def _json_response(body: bytes) -> SimResponse:
    return SimResponse(status=200, headers=[
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode())], chunks=[(0.0, body)])


def error_response(error: SimError) -> SimResponse:
    body = error.body()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), *error.headers]
    return SimResponse(status=error.status, headers=headers, chunks=[(0.0, body)])


def anthropic_error_response(error: SimError) -> SimResponse:
    """The error as the real Anthropic API shapes it (``messages_flavour = "anthropic"``)."""
    kind = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error",
            529: "overloaded_error"}.get(error.status, "invalid_request_error" if error.status < 500 else "api_error")
    body = _ENCODE.encode({"type": "error", "error": {"type": kind, "message": error.message}})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *error.headers]
    return SimResponse(status=error.status, headers=headers, chunks=[(0.0, body)])


class Simulator:
    """An in-process DeepSeek. Use sequentially (a lock makes concurrent calls wait in turn).

    Attributes:
        config: the frozen ``SimConfig``.
        chat_requests: how many chat requests were received (scheduled faults count these).
        requests: the last ``config.history`` decoded chat request bodies.
        stats: counters served at ``GET /_sim/stats`` (JSON): requests, request sizes, and the
            replay checks (``verify_replay``) per chat request, so a test can prove every
            assistant tool-call turn was compared with what was emitted.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self._schedule = fault_schedule(self.config)
        self._models = tuple(dict.fromkeys((*DEEPSEEK_MODELS, *self.config.models)))
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self.chat_requests = 0
        self.requests: deque[Any] = deque(maxlen=self.config.history)
        self._prefixes: OrderedDict[bytes, bytes] = OrderedDict()
        # call id -> (its turn's reasoning, name, arguments, whether it was made thinking)
        self._emitted: OrderedDict[str, tuple[str, str, Any, bool]] = OrderedDict()
        self._redactions: dict[str, str] = {}  # tool call id → the redacted_thinking data answered with it
        self._faulted_once: set[str] = set()
        self._spoiled_once: set[str] = set()
        self.stats = SimStats()
        self._verified: set[str] = set()
        # What the Anthropic endpoint signs its thinking with: one per flavour and seed, so a reset keeps it.
        self._secret = endpoint_secret(self.config)
        self._sealer = Sealer(self.config.responses_flavour, secrets.token_bytes(32))  # the rng's ids stay as seeded

    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> SimResponse:
        """Answer one HTTP request; never raises for bad input (that is a 4xx response)."""
        with self._lock:
            path = path.split("?", 1)[0].rstrip("/") or "/"
            lowered = {k.lower(): v for k, v in headers.items()}
            try:
                if path in _CHAT_PATHS and method.upper() == "POST":
                    self._check_auth(lowered)
                    return self._chat(body)
                if path in _RESPONSES_PATHS and method.upper() == "POST":
                    self._check_auth(lowered)
                    return self._responses(body)
                if path in _MESSAGES_PATHS and method.upper() == "POST":
                    try:
                        self._check_auth(lowered)
                        return self._messages(body)
                    except SimError as error:
                        if self.config.messages_flavour != "anthropic":
                            raise
                        return anthropic_error_response(error)
                if path in _MODEL_PATHS and method.upper() == "GET":
                    self._check_auth(lowered)
                    return self._models_list()
                if path == _STATS_PATH and method.upper() == "GET":
                    self._check_auth(lowered)
                    return _json_response(_ENCODE.encode(self.stats))
                raise SimError(404, f"Not Found: {method.upper()} {path}",
                               type="invalid_request_error", code="not_found")
            except SimError as error:
                return error_response(error)

    def _check_auth(self, headers: dict[str, str]) -> None:
        key = self.config.api_key
        if key is None:
            return
        auth = headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get("x-api-key", "")
        if given != key:
            shown = f"****{given[-4:]}" if given else "(none)"
            raise SimError(401, f"Authentication Fails, Your api key: {shown} is invalid",
                           type="authentication_error", code="invalid_request_error")

    def _models_list(self) -> SimResponse:
        return _json_response(_ENCODE.encode({"object": "list", "data": [
            {"id": m, "object": "model", "owned_by": "deepseek"} for m in self._models]}))

    def _chat(self, raw: bytes) -> SimResponse:
        scheduled, answer_or_body = self._intake(raw)
        if isinstance(answer_or_body, SimResponse):
            return answer_or_body
        call = validate(answer_or_body, self.config)
        return self._answer(call, scheduled, None)

    def _responses(self, raw: bytes) -> SimResponse:
        """``POST /responses``: the Responses mode (``responses``), the same plans as Chat."""
        scheduled, answer_or_body = self._intake(raw)
        if isinstance(answer_or_body, SimResponse):
            return answer_or_body
        wire = convert(answer_or_body, self.config, self._sealer)
        self.stats.reasoning_items += wire.reasoning_items
        self.stats.sealed_items += wire.sealed_items
        return self._answer(validate(wire.chat, self.config), scheduled, wire)

    def _messages(self, raw: bytes) -> SimResponse:
        """``POST /anthropic/v1/messages``: DeepSeek's Anthropic endpoint."""
        scheduled, answer_or_body = self._intake(raw)
        if isinstance(answer_or_body, SimResponse):
            return answer_or_body
        call = validate_messages(answer_or_body, self.config, self._secret)
        if self.config.verify_replay and call.thinking:
            self.stats.replay.append(self._verify_messages(call))
            del self.stats.replay[:-_REMEMBERED]
        plan = plan_answer(call.messages, call.tools, call.tool_choice, False)
        fault = scheduled or self._directive_fault(plan)
        if fault in HTTP_FAULTS:
            return error_response(http_fault(fault))
        answer = apply_budget(plan, call.budget, thinking=call.thinking, overload=fault == "overload")
        call_ids = [f"toolu_{i:02d}_{self._random(22)}" for i in range(len(answer.calls))]
        self._remember(answer, call_ids, call.thinking)
        self.stats.emitted_calls += len(call_ids)
        redacted = redact(self._secret, plan.redacted) if plan.redacted is not None and call.thinking and \
            self.config.messages_flavour == "anthropic" else None
        self._redactions.update(dict.fromkeys(call_ids, redacted) if redacted is not None else {})
        renderer = MessagesRenderer(
            message_id=f"msg_{self._random(24)}", model=call.model, thinking=call.thinking, redacted=redacted,
            signature=sign(self._secret, answer.reasoning), prompt_tokens=call.prompt_tokens,
            cached=self._cached_prefix(call.tools, call.wire[:1], call.prompt_bytes, call.prompt_tokens))
        cfg = self.config
        if not call.stream:
            chunks, drop_after, length = json_fault(fault, [(cfg.chunk_delay_s, renderer.body(answer, call_ids))], cfg)
            headers = [(b"content-type", b"application/json")]
            if length is not None:
                headers.append((b"content-length", str(length).encode()))
            return SimResponse(status=200, headers=headers, chunks=chunks, drop_after=drop_after)
        frames, finish_at = renderer.stream(answer, call_ids)
        chunks = [(cfg.keepalive_interval_s, b": keep-alive\n\n")] * cfg.keepalive_comments
        chunks += [(cfg.chunk_delay_s, f) for f in frames]
        chunks, drop_after = stream_fault(fault, chunks, len(chunks) - len(frames) + finish_at, cfg,
                                          bad_chunk=MESSAGES_BAD_EVENT, error_chunk=MESSAGES_ERROR_EVENT)
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
        return SimResponse(status=200, headers=headers, chunks=chunks, drop_after=drop_after)

    def _verify_messages(self, call: MessagesCall) -> ReplayCheck:
        """``verify_replay`` for the Anthropic endpoint: every echoed tool_use this simulator
        emitted comes back with its turn's thinking block, the exact text and this endpoint's own
        signature for it, and the same call."""
        check = ReplayCheck(request=self.chat_requests)
        for i, msg in enumerate(call.wire):
            blocks = msg["content"] if msg["role"] == "assistant" else []
            uses = [b for b in blocks if b["type"] == "tool_use"]
            if not uses:
                continue
            check.tool_turns += 1
            known = [(b, self._emitted[b["id"]]) for b in uses if b["id"] in self._emitted]
            if len(known) < len(uses):
                check.unknown_turns += 1
                continue
            thoughts = [b for b in blocks if b["type"] == "thinking"]
            text = "".join(b["thinking"] for b in thoughts)
            for block, (reasoning, name, args, thought) in known:
                if text.encode() != reasoning.encode():
                    raise bad(f"messages[{i}]: the thinking differs from what was generated with tool call "
                              f"{block['id']}: expected {reasoning!r}, got {text!r}")
                # A call made with thinking off had no thinking block, so no signature to come back
                # with: its empty block (the presence the thinking mode checks) is all there is.
                if len(thoughts) != 1 or (thought and not thoughts[0].get("signature")):
                    raise bad(f"messages[{i}]: the thinking block of tool call {block['id']} came back without "
                              "its signature")
                if block["name"] != name or block["input"] != args:
                    raise bad(f"messages[{i}]: tool call {block['id']} differs from what was generated: expected "
                              f"{name} {args!r}, got {block['name']} {block['input']!r}")
                check_redacted(i, blocks, self._redactions.get(block["id"]), block["id"])
            check.verified_turns += 1
            check.verified_bytes += len(text.encode())
            for block in uses:
                if block["id"] not in self._verified:
                    self._verified.add(block["id"])
                    self.stats.verified_calls += 1
        return check

    def _intake(self, raw: bytes) -> tuple[str | None, Any]:
        """Count the request; its scheduled fault and decoded body (or an HTTP fault's answer)."""
        self.chat_requests += 1
        self.stats.chat_requests = self.chat_requests
        self.stats.max_request_bytes = max(self.stats.max_request_bytes, len(raw))
        self.stats.last_request_bytes = len(raw)
        scheduled = self._schedule.get(self.chat_requests)
        if scheduled in HTTP_FAULTS:
            return scheduled, error_response(http_fault(scheduled))
        try:
            body = _DECODE.decode(raw)
        except msgspec.DecodeError as exc:
            raise bad(f"Failed to parse the request body as JSON: {exc}") from None
        self.requests.append(body)
        return scheduled, body

    def _answer(self, call: ChatCall, scheduled: str | None, wire: ResponsesCall | None) -> SimResponse:
        if self.config.verify_replay and call.thinking:
            self.stats.replay.append(self._verify_replay(call.messages, wire))
            del self.stats.replay[:-_REMEMBERED]
        plan = plan_answer(call.messages, call.tools, call.tool_choice, call.json_mode)
        if plan.invalid is not None and self._first_time(plan.step_key, plan.invalid_once, self._spoiled_once):
            plan = spoil(plan)
        fault = scheduled or self._directive_fault(plan)
        if fault in HTTP_FAULTS:
            return error_response(http_fault(fault))
        answer = apply_budget(plan, call.budget, thinking=call.thinking,
                              overload=fault == "overload")
        call_ids = [f"call_{i:02d}_{self._random(24)}" for i in range(len(answer.calls))]
        self._remember(answer, call_ids, call.thinking)
        self.stats.emitted_calls += len(call_ids)
        use = usage(call.prompt_tokens, self._cached(call), answer)
        if wire is not None:
            return self._responses_answer(call, wire, answer, call_ids, use, fault)
        renderer = Renderer(
            completion_id=self._uuid(), created=int(time.time()), model=call.model,
            fingerprint="fp_sim_prod0425", reasoning_field=self.config.reasoning_field,
            thinking=call.thinking, include_usage=call.include_usage,
            usage_on_finish=self.config.usage_on_finish_chunk)
        if call.stream:
            return self._stream(renderer, answer, call_ids, use, fault)
        return self._json(renderer, answer, call_ids, use, fault)

    def _responses_answer(self, call: ChatCall, wire: ResponsesCall, answer: Answer, call_ids: list[str],
                          use: dict[str, Any], fault: str | None) -> SimResponse:
        renderer = ResponsesRenderer(
            response_id=f"resp_{self._random(24)}", created=int(time.time()), model=call.model,
            flavour=self.config.responses_flavour, custom=wire.custom,
            seal=self._sealer.seal if wire.encrypted else None,
            item_ids=[f"{p}_{self._random(20)}" for p in ("rs", "msg", *["fc"] * len(call_ids))])
        if not call.stream:
            return self._json(renderer, answer, call_ids, use, fault)
        frames, finish_at = renderer.stream(answer, call_ids, use)
        cfg = self.config
        chunks = [(cfg.keepalive_interval_s, b": keep-alive\n\n")] * cfg.keepalive_comments
        chunks += [(cfg.chunk_delay_s, f) for f in frames]
        chunks, drop_after = stream_fault(fault, chunks, len(chunks) - len(frames) + finish_at, cfg,
                                          bad_chunk=BAD_EVENT, error_chunk=ERROR_EVENT)
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
        return SimResponse(status=200, headers=headers, chunks=chunks, drop_after=drop_after)

    def _stream(self, renderer: Renderer, answer: Answer, call_ids: list[str],
                use: dict[str, Any], fault: str | None) -> SimResponse:
        frames, finish_at = renderer.stream(answer, call_ids, use,
                                            interleave=self.config.interleave_parallel)
        cfg = self.config
        chunks = [(cfg.keepalive_interval_s, b": keep-alive\n\n")] * cfg.keepalive_comments
        chunks += [(cfg.chunk_delay_s, f) for f in frames]
        chunks, drop_after = stream_fault(fault, chunks, len(chunks) - len(frames) + finish_at,
                                          cfg)
        headers = [(b"content-type", b"text/event-stream; charset=utf-8"),
                   (b"cache-control", b"no-cache"), (b"x-ds-trace-id", self._random(32).encode())]
        return SimResponse(status=200, headers=headers, chunks=chunks, drop_after=drop_after)

    def _json(self, renderer: Renderer | ResponsesRenderer, answer: Answer, call_ids: list[str],
              use: dict[str, Any], fault: str | None) -> SimResponse:
        cfg = self.config
        body = renderer.body(answer, call_ids, use)
        chunks = [(cfg.keepalive_interval_s, b"\n")] * cfg.keepalive_comments
        chunks.append((cfg.chunk_delay_s, body))
        chunks, drop_after, length = json_fault(fault, chunks, cfg)
        headers = [(b"content-type", b"application/json")]
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        return SimResponse(status=200, headers=headers, chunks=chunks, drop_after=drop_after)

    def _directive_fault(self, plan: Plan) -> str | None:
        if plan.fault is None or not self._first_time(plan.step_key, plan.fault_once, self._faulted_once):
            return None
        return plan.fault

    @staticmethod
    def _first_time(key: str, once: bool, seen: set[str]) -> bool:
        """Whether a directive applies now: always, or (``once``) the first time ``key`` is seen."""
        if not once:
            return True
        if key in seen:
            return False
        if len(seen) >= _REMEMBERED:
            seen.clear()
        seen.add(key)
        return True

    def _cached(self, call: ChatCall) -> int:
        return self._cached_prefix(call.tools, call.messages[:1], call.prompt_bytes, call.prompt_tokens)

    def _cached_prefix(self, tools: dict[str, Any], first: list[Any], prompt_bytes: bytes, prompt_tokens: int) -> int:
        """Prompt-cache hits: the byte prefix shared with the last request that began the same
        way, in whole 64-token units, always below ``prompt_tokens``."""
        key = _ENCODE.encode([sorted(tools), first[0] if first else None])
        previous = self._prefixes.pop(key, None)
        self._prefixes[key] = prompt_bytes
        if len(self._prefixes) > self.config.history:
            self._prefixes.popitem(last=False)
        if previous is None:
            return 0
        shared = _common_prefix(previous, prompt_bytes) // 4
        hit = (shared // _CACHE_UNIT) * _CACHE_UNIT
        return min(hit, ((prompt_tokens - 1) // _CACHE_UNIT) * _CACHE_UNIT)

    def _remember(self, answer: Answer, call_ids: list[str], thinking: bool) -> None:
        for call, call_id in zip(answer.calls, call_ids, strict=True):
            try:
                args = _DECODE.decode(call.arguments)
            except msgspec.DecodeError:
                args = call.arguments
            self._emitted[call_id] = (answer.reasoning, call.name, args, thinking)
            if len(self._emitted) > _REMEMBERED:
                oldest = self._emitted.popitem(last=False)[0]
                self._verified.discard(oldest)
                self._redactions.pop(oldest, None)

    def _verify_replay(self, messages: list[dict[str, Any]], wire: ResponsesCall | None = None) -> ReplayCheck:
        """Every echoed tool call this simulator emitted must come back with its turn's exact
        reasoning text and the same call; counts what was compared (and what was unknown). In
        Responses mode (``wire``) a difference is told in terms of the input items."""
        field = self.config.reasoning_field
        check = ReplayCheck(request=self.chat_requests)
        for i, msg in enumerate(messages):
            calls = msg.get("tool_calls") if msg["role"] == "assistant" else None
            if not calls:
                continue
            check.tool_turns += 1
            known_calls = [(tc, known) for tc in calls if (known := self._emitted.get(tc["id"])) is not None]
            if len(known_calls) < len(calls):
                check.unknown_turns += 1
                continue
            for tc, known in known_calls:
                reasoning, name, args, _ = known  # made with thinking off: its reasoning is ""
                got_reasoning = msg.get(field)
                if not isinstance(got_reasoning, str) or (
                        got_reasoning.encode() != reasoning.encode()):
                    raise wire.reasoning_differs(tc["id"], reasoning, got_reasoning) if wire else bad(
                        f"messages[{i}].{field} differs from what was generated with tool "
                        f"call {tc['id']}: expected {reasoning!r}, got {got_reasoning!r}")
                try:
                    got = _DECODE.decode(tc["function"]["arguments"])
                except msgspec.DecodeError:
                    got = tc["function"]["arguments"]
                if (tc["function"]["name"] != name or got != args) and wire:
                    raise wire.call_differs(tc["id"], f"{name} {args!r}", f"{tc['function']['name']} {got!r}")
                if tc["function"]["name"] != name or got != args:
                    raise bad(f"messages[{i}]: tool call {tc['id']} differs from what was "
                              f"generated: expected {name} {args!r}, got "
                              f"{tc['function']['name']} {got!r}")
            check.verified_turns += 1
            check.verified_bytes += len(msg[field].encode())
            for tc in calls:
                if tc["id"] not in self._verified:
                    self._verified.add(tc["id"])
                    self.stats.verified_calls += 1
        return check

    def _random(self, n: int) -> str:
        return "".join(self._rng.choice(_ALNUM) for _ in range(n))

    def _uuid(self) -> str:
        h = f"{self._rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _common_prefix(a: bytes, b: bytes) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # binary search on slice equality: fast for long prompts
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


__all__ = ["ReplayCheck", "SimResponse", "SimStats", "Simulator", "error_response"]
