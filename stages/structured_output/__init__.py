"""The ``structured_output`` stage: answers that validate against the client's JSON schema on
upstreams that do not enforce one (``stage``; the validator in ``schema``)."""

from stages.structured_output.stage import StructuredOutput

__all__ = ["StructuredOutput"]
