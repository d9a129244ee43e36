"""Built-in stages: YAML name → lazy ``module:attr`` (nothing is imported until used)."""

BUILTIN: dict[str, str] = {
    "thinking_filter": "stages.thinking_filter:ThinkingFilter",
    "token_budget": "stages.token_budget:TokenBudget",
    "tool_ids": "stages.tool_ids:ToolIdMap",
}
