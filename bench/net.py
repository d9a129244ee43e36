"""Socket set-up shared by the bench's fake upstream and load generator."""

from __future__ import annotations

import asyncio
import socket


def nodelay(transport: asyncio.BaseTransport) -> asyncio.Transport:
    """The transport, with Nagle off: one token per write must leave at once."""
    assert isinstance(transport, asyncio.Transport)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return transport
