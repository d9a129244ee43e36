"""Sans-IO helpers of the ``tool_ids`` stage: ids, names, schemas, call/result pairing, apply_patch.

Plain functions on neutral values; no trio, no I/O. The stage in ``stages/tool_ids.py`` wires them.
"""
