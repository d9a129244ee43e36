"""What the Anthropic request decoder tells the response encoder (client decode → client encode).

Frozen and typed: the runner keeps it beside the request (``pipeline.protocols.base.Reply``) and
hands it to the encoder it builds, so no request stage sees or changes it.
"""

from __future__ import annotations

import msgspec


class AnthropicEcho(msgspec.Struct, frozen=True, kw_only=True):
    """Attributes:
    thinking_display: the client's ``thinking.display``; ``"omitted"``: thinking blocks carry
        only their signature (PROTOCOLS §1.4).
    """

    thinking_display: str | None = None


NO_ECHO = AnthropicEcho()  # a request whose decoder had nothing to tell

__all__ = ["NO_ECHO", "AnthropicEcho"]
