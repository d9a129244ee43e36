"""Built-in upstream types: YAML ``type`` name → lazy ``module:attr`` (resolved on first use)."""

BUILTIN: dict[str, str] = {
    "openai_chat": "upstreams.openai_chat:OpenAIChatUpstream",
    "simulator": "upstreams.simulated:SimulatorUpstream",
}
