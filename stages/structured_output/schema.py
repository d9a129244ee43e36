"""What ``structured_output`` checks an answer with: a JSON Schema, compiled once per request.

The validator is ``jsonschema`` (Draft 2020-12 unless the schema's ``$schema`` names another
draft): the schemas the clients send are whatever their users write (a ``codex exec
--output-schema`` file, an Anthropic tool's ``input_schema``, a Chat ``json_schema``), with
``$ref``/``$defs``, ``anyOf``, patterns and bounds, so a subset written here would sooner or later
pass an answer the client then rejects. ``format`` is an annotation, as the draft says, not
checked. The cost is ~13 µs per JSON value on this machine (a 220 KB answer of 15,000 values:
~0.2 s, once per answer); the answers clients ask a schema for are a few KB.

``Checker.text`` reads an answer's text as the client would: surrounding white space and one
Markdown code fence (```` ```json ... ``` ````, which models without a JSON mode add) are taken
off; what is left must parse and validate. The error names the JSON path of the best-matching
violation (``jsonschema.exceptions.best_match``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from jsonschema import exceptions, validators

_DECODE = msgspec.json.Decoder()
_FENCE = re.compile(r"\A```[A-Za-z0-9_-]*[ \t]*\r?\n(?P<body>.*?)\r?\n?```\Z", re.S)
OBJECT: dict[str, Any] = {"type": "object"}  # a JSON-object answer (json_object) without a schema


class SchemaProblem(ValueError):
    """The schema itself is not a valid JSON Schema (the message says where)."""


class Checker:
    """One schema, checked once (``SchemaProblem``) and compiled for the answers of a request."""

    __slots__ = ("_validator",)

    def __init__(self, schema: dict[str, Any]) -> None:
        cls = validators.validator_for(schema, default=validators.Draft202012Validator)
        try:
            cls.check_schema(schema)
        except exceptions.SchemaError as err:
            where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
            raise SchemaProblem(f"schema{where}: {err.message}") from None
        self._validator = cls(schema)

    def value(self, value: Any) -> str | None:
        """Why ``value`` does not validate (one sentence naming the JSON path), or ``None``."""
        error = exceptions.best_match(self._validator.iter_errors(value))
        if error is None:
            return None
        return f"at {error.json_path}: {error.message}"[:2_000]

    def arguments(self, text: str) -> str | None:
        """A tool call's arguments (JSON text; empty means ``{}``): why they do not validate."""
        try:
            value = _DECODE.decode(text) if text.strip() else {}
        except msgspec.DecodeError as err:
            return f"the arguments are not valid JSON ({err})"
        return self.value(value)

    def text(self, text: str) -> tuple[str, str | None]:
        """``(the JSON text the client gets, why it does not validate or None)``."""
        clean = text.strip()
        fenced = _FENCE.match(clean)
        if fenced is not None:
            clean = fenced.group("body").strip()
        if not clean:
            return clean, "the answer is empty, not a JSON value"
        try:
            value = _DECODE.decode(clean)
        except msgspec.DecodeError as err:
            return clean, f"the answer is not valid JSON ({err})"
        return clean, self.value(value)


__all__ = ["OBJECT", "Checker", "SchemaProblem"]
