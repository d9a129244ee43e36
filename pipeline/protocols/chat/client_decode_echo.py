"""What the Chat Completions request decoder tells the chunk encoder (client decode → client encode).

Frozen and typed: the runner keeps it beside the request (``pipeline.protocols.base.Reply``) and
hands it to the encoder it builds, so no request stage sees or changes it.
"""

from __future__ import annotations

import msgspec


class ChatEcho(msgspec.Struct, frozen=True, kw_only=True):
    """Attributes:
    include_usage: the client sent ``stream_options.include_usage``: a usage chunk ends the stream.
    """

    include_usage: bool = False


NO_ECHO = ChatEcho()  # a request whose decoder had nothing to tell

__all__ = ["NO_ECHO", "ChatEcho"]
