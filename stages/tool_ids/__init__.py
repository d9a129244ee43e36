"""The ``tool_ids`` stage: tool calls that survive any backend, both ways (``stage``).

Its helpers are sans-IO (plain functions on neutral values, no trio, no I/O): ``ids`` (call ids),
``names`` (tool names), ``schemas``, ``pairing`` (call/result pairing) and ``apply_patch``;
``stream`` is the response way.
"""

from stages.tool_ids.stage import ToolIdMap

__all__ = ["ToolIdMap"]
