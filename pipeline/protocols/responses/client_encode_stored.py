"""Stored Responses, sans-IO: the record kept for each response, and the bodies of
``GET /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items`` and ``DELETE /v1/responses/{id}``.

A ``Record`` holds one response's own input items (as the client sent them: a string ``input``
becomes the user message item the API shows for it), its output items as the client got them
(reasoning items with their ``encrypted_content`` envelope, whatever ``include`` said, so that a
chained turn replays the reasoning exactly) and the Response object itself. A conversation is a
chain of records by ``previous``; its history is every record's input then output, oldest first
(``pipeline.stored_responses`` walks it). Items stay raw JSON: nothing is decoded to store or to
replay them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from pipeline.errors import RequestError
from pipeline.protocols.responses.output_models import ResponseObject

_ENCODER = msgspec.json.Encoder()
STORED_STATUSES = ("completed", "incomplete")  # a failed response is not kept: nothing chains on it


class Record(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    previous: str | None = None
    input: list[msgspec.Raw] = []
    output: list[msgspec.Raw] = []
    response: msgspec.Raw


RECORD_DECODER = msgspec.json.Decoder(Record)


def input_items(given: str | list[msgspec.Raw] | None) -> list[msgspec.Raw]:
    """The request's own ``input`` as raw items (a string: one user message)."""
    if isinstance(given, str):
        message = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": given}]}
        return [msgspec.Raw(_ENCODER.encode(message))]
    return list(given or ())


def record(final: ResponseObject, previous: str | None, items: list[msgspec.Raw]) -> bytes | None:
    """The stored form of a finished response (``None``: a status that is not kept)."""
    if final.status not in STORED_STATUSES:
        return None
    output = [msgspec.Raw(_ENCODER.encode(item)) for item in final.output]
    return _ENCODER.encode(Record(id=final.id, previous=previous, input=items, output=output,
                                  response=msgspec.Raw(_ENCODER.encode(final))))


def history_of(chain: Sequence[Record]) -> list[msgspec.Raw]:
    """Every item of ``chain`` (oldest first): each response's input, then its output."""
    items: list[msgspec.Raw] = []
    for rec in chain:
        items += rec.input
        items += rec.output
    return items


def listed_items(chain: Sequence[Record]) -> list[dict[str, Any]]:
    """What the last response of ``chain`` took as input: the earlier responses' input and
    output, then its own input, oldest first; an item the client sent without an ``id`` gets one
    (stable: from the response and position), so that ``after`` can name it, and an easy input
    message (``role`` and ``content`` only) is shown as the message item it stands for."""
    *earlier, last = chain
    raw = [*history_of(earlier), *last.input]
    items = []
    for i, item in enumerate(raw):
        value = msgspec.json.decode(item)
        if isinstance(value, dict):
            if "type" not in value and "role" in value:  # an easy input message, shown as the API shows it
                value = {"type": "message", **value}
                if isinstance(value.get("content"), str):
                    value["content"] = [{"type": "input_text", "text": value["content"]}]
            if not value.get("id"):
                value = {"id": f"item_{last.id.removeprefix('resp_')}_{i}", **value}
        items.append(value)
    return items


def render_input_items(items: list[dict[str, Any]], query: dict[str, str]) -> bytes:
    """The list body for ``GET .../input_items`` (``order`` desc by default, ``limit`` 1-100, 20
    by default, ``after`` an item id), as the SDK's cursor page reads it.

    Raises:
        RequestError: a bad query parameter.
    """
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise RequestError(f"order: expected asc or desc, got {order!r}")
    limit_text = query.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        raise RequestError(f"limit: expected an integer from 1 to 100, got {limit_text!r}")
    ordered = items if order == "asc" else items[::-1]
    after = query.get("after")
    if after is not None:
        at = next((i for i, item in enumerate(ordered) if item.get("id") == after), None)
        if at is None:
            raise RequestError(f"after: no input item {after!r} in this response")
        ordered = ordered[at + 1:]
    page = ordered[:int(limit_text)]
    body = {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": len(ordered) > len(page)}
    return _ENCODER.encode(body)


def render_deleted(response_id: str) -> bytes:
    return _ENCODER.encode({"id": response_id, "object": "response", "deleted": True})


def not_found(response_id: str) -> str:
    return f"Response with id '{response_id}' not found."


__all__ = ["RECORD_DECODER", "STORED_STATUSES", "Record", "history_of", "input_items", "listed_items",
           "not_found", "record", "render_deleted", "render_input_items"]
