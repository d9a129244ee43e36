"""Built-in stages: YAML name → lazy ``module:attr`` (nothing is imported until used)."""

BUILTIN: dict[str, str] = {
    "thinking_filter": "stages.thinking_filter:ThinkingFilter",
}
