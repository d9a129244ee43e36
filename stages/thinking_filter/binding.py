"""Which assistant turn an envelope of ours may restore its reasoning on (``bound_turn``).

An envelope is sealed with the tool call ids its thinking preceded; the client may echo it on
that turn, move it, copy it or drop the calls. ``bound_turn`` finds the turn from the calls alone;
``alone`` says whether that answer depends on the envelope's own turn only (the conversation
memory reuses such a turn's result when the rest of the history changes).
"""

from __future__ import annotations

from pipeline.model import Message, ToolCallPart


def alone(sealed: tuple[str, ...], message: Message) -> bool:
    """Whether ``bound_turn`` decides an envelope sealed with ``sealed`` in ``message`` from that
    message alone (no calls sealed, or its own calls carry the first)."""
    return not sealed or sealed[0] in call_ids(message)


def call_ids(message: Message) -> tuple[str, ...]:
    return tuple(p.id for p in message.parts if isinstance(p, ToolCallPart))


def bound_turn(sealed: tuple[str, ...], index: int, messages: list[Message]) -> int | None:
    """The assistant turn an envelope sealed before the tool calls ``sealed`` may be replayed on,
    found from ``index`` (the turn it sits in), or ``None``.

    The envelope is sealed when its turn's first tool call starts (its thinking block must end
    before the call does), so ``sealed`` is the start of that turn's calls: the turn carrying
    ``sealed[0]`` (where the client echoed it, else the one it was moved away from) must begin with
    exactly those ids. An envelope sealed before any call (a turn without tools, or one whose text
    passed ``holdback_chars`` first) stays on its own turn, and only if that turn has no calls.
    """
    own = call_ids(messages[index])
    if sealed and sealed[0] in own:  # where the client echoed it (what follows finds the same, in O(turns))
        return index if own[:len(sealed)] == sealed else None
    if sealed and not any(sealed[0] in call_ids(m) for m in messages if m.role == "assistant"):
        # Calls the client did not keep (a Responses client keeps a gateway-run search as a
        # web_search_call without its call id): the envelope is bound by the calls it kept.
        kept = {c for m in messages if m.role == "assistant" for c in call_ids(m)}
        sealed = tuple(c for c in sealed if c in kept)
    if not sealed:
        return None if own else index
    first = sealed[0]
    if first in own:
        return index if own[:len(sealed)] == sealed else None
    target = next((j for j, m in enumerate(messages) if m.role == "assistant" and first in call_ids(m)), None)
    if target is None:
        return None
    if split_turn(sealed, target, index, messages):  # a later round of the answer that made the calls
        return index
    return target if call_ids(messages[target])[:len(sealed)] == sealed else None


def split_turn(sealed: tuple[str, ...], start: int, index: int, messages: list[Message]) -> bool:
    """Whether the envelope at ``index`` was sealed inside one answer that the client's history
    splits into several turns at the results of calls the gateway ran itself (``web_search``):
    turns ``start`` … ``index`` with only tool results between them, whose calls begin with
    ``sealed``, and the envelope's own turn begins with its last call (or, a turn without calls
    after the last result, ``sealed`` is all of them)."""
    if not start < index or any(m.role not in ("assistant", "tool") for m in messages[start:index + 1]):
        return False
    calls = [c for m in messages[start:index + 1] if m.role == "assistant" for c in call_ids(m)]
    own = call_ids(messages[index])
    if tuple(calls[:len(sealed)]) != sealed:
        return False
    return own[:1] == sealed[-1:] if own else len(calls) == len(sealed)


__all__ = ["alone", "bound_turn", "call_ids", "split_turn"]
