"""Routing by request traits: a pipeline's ``routes:``, evaluated in order, first match wins, the
pipeline's own ``upstream`` the default after them.

A rule's ``when`` (``pipeline.config.RouteWhen``) lists traits; all that are given must hold. Each
trait is read off the decoded request (and the client's headers) once, and only if a rule asks:

- ``model``: the client's model name matches a glob (``fnmatchcase``; Claude Code's ``[1m]``
  marker is not part of the name matched).
- ``small``: a background call (titles, summaries, classifiers). Claude Code marks those it
  sends as ``x-claude-code-request-class: auxiliary``; without the mark, a request that offers no
  tools, asks for no thinking and at most ``SMALL_MAX_OUTPUT_TOKENS`` output tokens.
- ``thinking``: the client asked for thinking (``enabled``, or an effort other than ``none``).
- ``effort``: the client's effort is one of the listed levels (a request that names none has none).
- ``prompt_tokens_over``: the raw prompt estimate (``pipeline.tokens``, before any upstream's
  calibration: the route picks the upstream) exceeds the threshold.
- ``images``: an image anywhere in the conversation, tool results included.
- ``web_search``: the client offers its hosted web search tool (``ChatRequest.server_tools``).
- ``subagent``: a sub-agent's request: Claude Code sends ``x-claude-code-agent-id`` (and a
  ``x-claude-code-request-class`` of ``subagent`` or ``workflow``) on those.

The chosen route's upstream list replaces the pipeline's for this request (each attempt shaped for
its own target by the retry loop), its ``model``, when set, is the upstream model.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.config import RouteWhen
from pipeline.model import ChatRequest, ImagePart, ToolResultPart
from pipeline.tokens import raw_estimate
from pipeline.upstream import Upstream

SMALL_MAX_OUTPUT_TOKENS = 2_048
REQUEST_CLASS = "x-claude-code-request-class"
AGENT_ID = "x-claude-code-agent-id"
_MARKER = re.compile(r"\[[^\]]*\]$")


@dataclass(frozen=True, slots=True)
class Route:
    """A rule with its upstreams resolved (``default`` is the pipeline's own ``upstream``)."""

    name: str
    when: RouteWhen
    upstreams: tuple[Upstream, ...]
    model: str | None = None


class Traits:
    """The traits of one request, each computed on first use."""

    __slots__ = ("_headers", "_images", "_prompt", "_request")

    def __init__(self, request: ChatRequest, headers: Mapping[str, str]) -> None:
        self._request = request
        self._headers = headers
        self._images: bool | None = None
        self._prompt: float | None = None

    def model(self, globs: str | Sequence[str]) -> bool:
        sent = self._request.model
        name = _MARKER.sub("", sent)
        patterns = (globs,) if isinstance(globs, str) else globs
        return any(p in (sent, name) or fnmatch.fnmatchcase(name, p) for p in patterns)

    @property
    def small(self) -> bool:
        marked = self._headers.get(REQUEST_CLASS)
        if marked is not None:
            return marked == "auxiliary"
        request = self._request
        limit = request.max_output_tokens
        return (not request.tools and not request.server_tools and not self.thinking
                and limit is not None and limit <= SMALL_MAX_OUTPUT_TOKENS)

    @property
    def thinking(self) -> bool:
        asked = self._request.thinking
        if asked.enabled is not None:
            return asked.enabled
        return asked.effort is not None and asked.effort != "none"

    @property
    def effort(self) -> str | None:
        return self._request.thinking.effort

    @property
    def prompt_tokens(self) -> float:
        if self._prompt is None:
            self._prompt = raw_estimate(self._request)
        return self._prompt

    @property
    def images(self) -> bool:
        if self._images is None:
            self._images = any(_has_image(part) for m in self._request.messages for part in m.parts)
        return self._images

    @property
    def web_search(self) -> bool:
        return any(tool.is_web_search for tool in self._request.server_tools)

    @property
    def subagent(self) -> bool:
        return AGENT_ID in self._headers or self._headers.get(REQUEST_CLASS) in ("subagent", "workflow")


def _has_image(part: object) -> bool:
    if isinstance(part, ImagePart):
        return True
    return isinstance(part, ToolResultPart) and any(isinstance(p, ImagePart) for p in part.content)


def matches(when: RouteWhen, traits: Traits) -> bool:
    """Whether every trait ``when`` gives holds for the request."""
    if when.model is not None and not traits.model(when.model):
        return False
    for flag in ("small", "thinking", "images", "web_search", "subagent"):
        wanted = getattr(when, flag)
        if wanted is not None and getattr(traits, flag) != wanted:
            return False
    if when.effort is not None and traits.effort not in when.effort:
        return False
    return when.prompt_tokens_over is None or traits.prompt_tokens > when.prompt_tokens_over


def choose(routes: Sequence[Route], request: ChatRequest, headers: Mapping[str, str]) -> Route:
    """The first route whose rule the request matches; the last route (the default) matches all."""
    traits = Traits(request, headers)
    for route in routes[:-1]:
        if matches(route.when, traits):
            return route
    return routes[-1]


def describe(route: Route) -> str:
    """One line for ``python -m pipeline check``: the rule, its upstreams and model."""
    given = {f: getattr(route.when, f) for f in route.when.__struct_fields__ if getattr(route.when, f) is not None}
    rule = ", ".join(f"{k}={v}" for k, v in given.items()) or "every request"
    target = " -> ".join(u.id for u in route.upstreams)
    return f"{route.name}: {rule} => {target}" + (f" (model {route.model})" if route.model else "")


__all__ = ["AGENT_ID", "REQUEST_CLASS", "SMALL_MAX_OUTPUT_TOKENS", "Route", "Traits", "choose", "describe", "matches"]
