"""Tool schemas a backend accepts: ``sanitise_schema`` drops the profile's rejected keywords (as
keywords only), inlines ``$ref`` (recursive → ``{}``), rewrites ``type: [x, "null"]`` as an
equivalent ``anyOf`` (Ollama 0.6 rejects type arrays, ollama#10328) and makes the top ``type:
object`` with ``properties``. A top-level non-object schema becomes an empty object schema with a
loss, not a wrapper: every client protocol sends object arguments, so it could never be honoured.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any
from urllib.parse import unquote

import msgspec

# Keywords whose value is a map name → subschema, one subschema, or a list of subschemas.
_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_ONE = frozenset({
    "items", "additionalProperties", "additionalItems", "contains", "propertyNames", "not", "if", "then",
    "else", "unevaluatedItems", "unevaluatedProperties",
})
_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
_DEFS = ("$defs", "definitions")
# Annotations that stay on the outer schema when a type array is split into anyOf branches.
_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "deprecated", "readOnly", "writeOnly",
                          "$comment"})
# Dropping these loses nothing the model or the server uses: not reported.
_SILENT = frozenset({"$schema", "$id", "$comment"})
MAX_REF_EXPANSIONS = 2_000
EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


class _Walk:
    __slots__ = ("budget", "drop", "dropped", "inline", "notes", "root")

    def __init__(self, root: dict[str, Any], drop: frozenset[str], inline: bool) -> None:
        self.root = root
        self.drop = drop
        self.inline = inline
        self.dropped: Counter[str] = Counter()
        self.notes: list[str] = []
        self.budget = MAX_REF_EXPANSIONS

    def node(self, node: Any, stack: tuple[str, ...]) -> Any:
        if not isinstance(node, dict):
            return node  # boolean schemas and malformed values pass as they are
        if self.inline and isinstance(node.get("$ref"), str):
            return self._ref(node, stack)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in self.drop:
                self.dropped[key] += 1
            elif self.inline and key in _DEFS:
                continue  # inlined where used
            elif key in _MAPS and isinstance(value, dict):
                out[key] = {name: self.node(sub, stack) for name, sub in value.items()}
            elif key in _ONE and isinstance(value, dict):
                out[key] = self.node(value, stack)
            elif key in _LISTS and isinstance(value, list):
                out[key] = [self.node(sub, stack) for sub in value]
            else:
                out[key] = value
        if isinstance(out.get("type"), list):
            out = self._type_array(out)
        return out

    def _ref(self, node: dict[str, Any], stack: tuple[str, ...]) -> Any:
        ref: str = node["$ref"]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if ref in stack:
            self.notes.append(f"recursive $ref {ref} replaced by {{}}")
            target: Any = {}
        elif self.budget <= 0:
            self.notes.append(f"$ref {ref} not inlined (over {MAX_REF_EXPANSIONS} expansions), replaced by {{}}")
            target = {}
        else:
            found = resolve_pointer(self.root, ref)
            if found is None:
                self.notes.append(f"unresolvable $ref {ref} replaced by {{}}")
                target = {}
            else:
                self.budget -= 1
                target = self.node(found, (*stack, ref))
        if not siblings:
            return target
        rest = self.node(siblings, stack)
        return {**target, **rest} if isinstance(target, dict) else rest

    def _type_array(self, node: dict[str, Any]) -> dict[str, Any]:
        types = list(dict.fromkeys(t for t in node["type"] if isinstance(t, str)))
        if not types:
            self.notes.append("empty type array removed")
            return {k: v for k, v in node.items() if k != "type"}
        if len(types) == 1:
            return {**node, "type": types[0]}
        if "anyOf" in node:
            return node  # already a union of its own: leave the array rather than guess
        outer = {k: v for k, v in node.items() if k in _ANNOTATIONS}
        inner = {k: v for k, v in node.items() if k not in _ANNOTATIONS and k != "type"}
        outer["anyOf"] = [{"type": t} if t == "null" else {"type": t, **inner} for t in types]
        return outer


def resolve_pointer(root: dict[str, Any], ref: str) -> Any | None:
    """The value a local ``$ref`` (``#``, ``#/$defs/X``, ``#/properties/a~1b``) points at, or None."""
    if not ref.startswith("#"):
        return None  # external documents and relative URIs cannot be fetched
    pointer = unquote(ref[1:])
    if pointer == "":
        return root
    if not pointer.startswith("/"):
        return None  # "#anchor" form
    value: Any = root
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return None
    return value


_CACHE: OrderedDict[tuple[bytes, tuple[str, ...] | frozenset[str], bool], tuple[Any, tuple[str, ...]]] = OrderedDict()
CACHE_SIZE = 1024  # distinct tool schemas remembered (an agent sends the same tools every turn)
_KEY = msgspec.json.Encoder()


def sanitise_cached(schema: Any, *, drop: tuple[str, ...] | frozenset[str],
                    inline_refs: bool) -> tuple[Any, tuple[str, ...]]:
    """``sanitise_schema`` remembered by the schema's JSON: ``(schema to send, notes)``, where the
    schema is the given object itself when nothing changed. A returned new schema is shared
    between requests: never modify it."""
    key: tuple[bytes, tuple[str, ...] | frozenset[str], bool] | None
    try:
        key = (_KEY.encode(schema), drop, inline_refs)
    except (TypeError, msgspec.EncodeError):  # not JSON (a decoder never makes one): not remembered
        key = None
    hit = _CACHE.get(key) if key is not None else None
    if hit is None:
        out, found = sanitise_schema(schema, drop=drop, inline_refs=inline_refs)
        hit = (None if out == schema else out), tuple(found)
        if key is not None:
            _CACHE[key] = hit
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
    elif key is not None:  # always, when there is a hit
        _CACHE.move_to_end(key)
    changed, notes = hit
    return (schema if changed is None else changed), notes


def sanitise_schema(schema: Any, *, drop: tuple[str, ...] | frozenset[str] = (), inline_refs: bool = False
                    ) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``schema`` the backend accepts, and notes for each loss of information."""
    if not isinstance(schema, dict):
        note = [] if schema is None else [f"parameters of type {type(schema).__name__} replaced by an object schema"]
        return dict(EMPTY_OBJECT, properties={}), note
    notes: list[str] = []
    top = schema
    kind = top.get("type")
    if isinstance(kind, list) and "object" in kind:
        top = {**top, "type": "object"}  # arguments are never null
        kind = "object"
    if kind is not None and kind != "object":
        notes.append(f"top-level schema of type {kind!r} is not an object; replaced by an empty object schema")
        return dict(EMPTY_OBJECT, properties={}), notes
    walk = _Walk(top, frozenset(drop), inline_refs)
    out = walk.node(top, ("#",))
    notes.extend(dict.fromkeys(walk.notes))  # each distinct problem once
    for key, count in sorted(walk.dropped.items()):
        if key not in _SILENT:
            notes.append(f"dropped keyword {key}" + (f" ({count}x)" if count > 1 else ""))
    if not isinstance(out, dict):
        return dict(EMPTY_OBJECT, properties={}), notes
    if out.get("type") != "object":
        out = {"type": "object", **{k: v for k, v in out.items() if k != "type"}}
    if not isinstance(out.get("properties"), dict):
        if "properties" in out:
            notes.append("top-level properties was not an object; replaced by {}")
        out["properties"] = {}
    return out, notes


__all__ = ["CACHE_SIZE", "EMPTY_OBJECT", "MAX_REF_EXPANSIONS", "resolve_pointer", "sanitise_cached", "sanitise_schema"]
