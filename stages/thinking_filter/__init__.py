"""The ``thinking_filter`` stage: DeepSeek reasoning shown to the client and replayed upstream exactly.

``stage`` is the stage; ``envelope`` seals the reasoning into the thinking signature (sans-IO, one
key per upstream); ``reasoning_cache`` is rung 2 of the replay ladder (the process's shared stores,
one per configured limits). ``reset_shared_state`` forgets what the stages of a process share (tests).
"""

from stages.thinking_filter.stage import RUNGS, ThinkingFilter, reset_shared_state

__all__ = ["RUNGS", "ThinkingFilter", "reset_shared_state"]
