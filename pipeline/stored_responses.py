"""Stored Responses: ``store`` and ``previous_response_id`` on the Responses client codec, over
the gateway's store (``pipeline.store``: embedded SQLite by default, Redis for several replicas).

A request whose ``store`` is not ``false`` (the API's default is true; Codex sends false, and
nothing is written for it) is recorded when it finishes completed or incomplete: its own input
items, its output items and the Response (``responses/client_encode_stored.py`` has the record).
The record is written before the client gets the terminal event (``Responder.gate``), so the
next turn, on any replica, finds it. A request with ``previous_response_id`` has the chain it
names walked back (each record names its previous one) and its items put before its ``input``:
the upstream gets the whole history, reasoning items with their envelopes included, so the
reasoning replay is as exact as when the client resends everything. A missing or expired id is a
400 there, and a 404 on ``GET`` / ``DELETE /v1/responses/{id}`` and ``GET .../input_items``.
Each record lives ``store.responses_ttl_s`` from its own creation; a chain whose older record
expired is not found either (the message names which).
"""

from __future__ import annotations

from typing import Any

import msgspec

from pipeline.errors import GatewayError, RequestError
from pipeline.model import ChatRequest
from pipeline.protocols.base import Collector, Reply, StreamEncoder
from pipeline.protocols.responses.client_encode_stored import (
    RECORD_DECODER,
    Record,
    history_of,
    input_items,
    listed_items,
    not_found,
    record,
    render_deleted,
    render_input_items,
)
from pipeline.protocols.responses.codec import ResponsesCodec
from pipeline.stage import RequestContext
from pipeline.store import Store
from pipeline.store.base import StoreError

KEY = "resp:"
MAX_CHAIN = 100_000  # records walked for one history, at most (a chain never loops: ids are new)


def unavailable(exc: StoreError) -> GatewayError:
    return GatewayError(f"the response store is unavailable: {exc}", code="overloaded", blame="gateway")


class Kept:
    """A ``Reply`` that remembers the encoder or collector it built, so that the finished
    Response can be recorded (``save``, the responder's gate)."""

    __slots__ = ("_built", "_ctx", "_items", "_previous", "_reply", "_state")

    def __init__(self, reply: Reply, state: StoredResponses, ctx: RequestContext, previous: str | None,
                 items: list[msgspec.Raw]) -> None:
        self._reply, self._state, self._ctx = reply, state, ctx
        self._previous, self._items = previous, items
        self._built: Any = None

    @property
    def echo(self) -> object:
        return self._reply.echo

    def stream_encoder(self, request: ChatRequest, *, prompt_estimate: int | None = None) -> StreamEncoder:
        self._built = self._reply.stream_encoder(request, prompt_estimate=prompt_estimate)
        return self._built

    def collector(self, request: ChatRequest, *, prompt_estimate: int | None = None) -> Collector:
        self._built = self._reply.collector(request, prompt_estimate=prompt_estimate)
        return self._built

    async def save(self) -> None:
        """Record the finished Response (a failure of the store is logged: the client still gets
        its answer, without a stored id to chain on)."""
        final = getattr(self._built, "final", None)
        data = record(final, self._previous, self._items) if final is not None else None
        if final is None or data is None:
            return
        try:
            await self._state.store.put(KEY + final.id, data, self._state.ttl_s)
        except StoreError as exc:
            self._ctx.log.error("response_not_stored", response_id=final.id, error=str(exc))
            return
        self._ctx.log.debug("response_stored", response_id=final.id, bytes=len(data))


class StoredResponses:
    def __init__(self, store: Store, ttl_s: float) -> None:
        self.store = store
        self.ttl_s = ttl_s

    @staticmethod
    def serves(codec: object) -> bool:
        return isinstance(codec, ResponsesCodec)

    async def decode(self, codec: ResponsesCodec, body: bytes, ctx: RequestContext
                     ) -> tuple[ChatRequest, Reply, Kept | None]:
        """The request with its stored history, the reply, and what records it (``None``:
        ``store: false``)."""
        read = codec.read(body, ctx.recall)
        wire = read.wire
        prior = None
        previous = wire.previous_response_id
        if previous is not None:
            chain = await self._chain(previous, "previous_response_id")
            prior = history_of(chain)
        request, reply = codec.decode_chained(read, prior, ctx.recall)
        if wire.store is False:
            return request, reply, None
        kept = Kept(reply, self, ctx, previous, input_items(read.input(ctx.recall)))
        return request, kept, kept

    async def _record(self, response_id: str) -> Record | None:
        try:
            data = await self.store.get(KEY + response_id)
        except StoreError as exc:
            raise unavailable(exc) from None
        return RECORD_DECODER.decode(data) if data is not None else None

    async def _chain(self, response_id: str, field: str | None) -> list[Record]:
        """The records from the first of the conversation to ``response_id``."""
        chain: list[Record] = []
        wanted: str | None = response_id
        while wanted is not None and len(chain) < MAX_CHAIN:
            rec = await self._record(wanted)
            if rec is None:
                message = not_found(response_id) if wanted == response_id else (
                    f"{not_found(response_id)[:-1]}: the earlier response {wanted!r} it continues has expired "
                    "or was deleted.")
                if field is None:
                    raise GatewayError(message, code="not_found", blame="client")
                raise RequestError(f"{field}: {message}")
            chain.append(rec)
            wanted = rec.previous
        chain.reverse()
        return chain

    async def get(self, response_id: str) -> bytes:
        rec = await self._record(response_id)
        if rec is None:
            raise GatewayError(not_found(response_id), code="not_found", blame="client")
        return bytes(rec.response)

    async def input_items(self, response_id: str, query: dict[str, str]) -> bytes:
        return render_input_items(listed_items(await self._chain(response_id, None)), query)

    async def delete(self, response_id: str) -> bytes:
        try:
            found = await self.store.delete(KEY + response_id)
        except StoreError as exc:
            raise unavailable(exc) from None
        if not found:
            raise GatewayError(not_found(response_id), code="not_found", blame="client")
        return render_deleted(response_id)


__all__ = ["KEY", "Kept", "StoredResponses"]
