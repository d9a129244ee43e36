"""The ``thinking_filter`` stage: DeepSeek reasoning shown to the client and replayed upstream exactly.

``stage`` is the stage; ``envelope`` seals the reasoning into the thinking signature (sans-IO, one
key per upstream); ``reasoning_cache`` is rung 2 of the replay ladder (the process's shared stores).
"""

from stages.thinking_filter.stage import RUNGS, ThinkingFilter

__all__ = ["RUNGS", "ThinkingFilter"]
