"""The client version matrix: every Claude Code and Codex version of tests/clients/matrix.json
(the latest on the registry, the pinned ones, and the versions that each broke DeepSeek users in
their own way), each through every upstream type to the strict DeepSeek simulator.

Opt-in (``pytest -m clients``, root): ``GW_CLIENTS_MATRIX`` names the folder where
``.ci/clients-matrix`` installed each version into ``<client>-<version>``. One representative
loop per version, thinking on, every earlier tool turn's thinking verified byte for byte by the
simulator, with a sub-agent (the shape that broke 2.1.166):

- Claude Code: Bash, then the Agent tool (a general-purpose sub-agent, in the foreground, that
  runs Bash itself), then the final text;
- Codex: exec_command, then ``multi_agent_v1.spawn_agent`` and ``multi_agent_v1.wait_agent`` (its
  namespace tools, the shape that broke 0.142 and 0.147) on a sub-agent that runs exec_command,
  then the final message.

Each run records what the client sent (``tests.clients.capture_app``) and, for each behaviour
DeepSeek would refuse, asserts on the requests the simulator received that the gateway fixed it,
keyed on the behaviour and never on the version. The result files feed the README table
(``tests.clients.matrix_table``); ``.ci/run`` fails when the table is not what was measured.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.clients.harness import assert_replay_verified, client_events, run_client, sim_stats
from tests.clients.matrix_observe import (
    CLAUDE_SCRIPT, CODEX_SCRIPT, NAMESPACE, Run, claude_sends, client_effort, codex_sends, echoed_calls,
    echoed_thinking, effort_shape, late_system, load_run, tool_outputs, upstream_effort, upstream_thinking_off,
    upstream_tool_names,
)
from tests.clients.matrix_table import UPSTREAMS, cases, results_dir, write_result

pytestmark = pytest.mark.clients

MATRIX_ROOT = os.environ.get("GW_CLIENTS_MATRIX", "")
BINARY = {"claude": "claude", "codex": "codex"}
DEEPSEEK_UPSTREAMS: dict[str, dict[str, Any] | None] = {
    "chat": None,  # the harness's openai_chat upstream, profile deepseek
    "anthropic": {"type": "anthropic_messages", "profile": "deepseek_anthropic", "base_url": "${GW_SIM_URL}/anthropic",
                  "models": {"default": "deepseek-v4-pro", "claude-opus*": "deepseek-v4-pro",
                             "claude-haiku*": "deepseek-v4-flash", "claude-sonnet*": "deepseek-v4-flash"}},
    "responses": {"type": "openai_responses", "profile": "deepseek_responses"},
}
# DeepSeek's Chat endpoint refuses a system message after the conversation has started.
SIM_OPTIONS = {"chat": {"reject_mid_system": True}, "anthropic": {}, "responses": {}}
assert set(DEEPSEEK_UPSTREAMS) == set(UPSTREAMS)


def _prefix(which: str, version: str) -> str:
    prefix = Path(MATRIX_ROOT) / f"{which}-{version}"
    assert (prefix / "node_modules" / ".bin" / BINARY[which]).exists(), f"{prefix}: not installed (.ci/clients-matrix)"
    return str(prefix)


def _run(tmp_path: Path, which: str, version: str, upstream: str) -> tuple[int, Path, Run]:
    capture = tmp_path / "capture.jsonl"
    code, out, lines = run_client(
        tmp_path, which, CLAUDE_SCRIPT if which == "claude" else CODEX_SCRIPT, clients=_prefix(which, version),
        upstream=DEEPSEEK_UPSTREAMS[upstream], sim_options=SIM_OPTIONS[upstream], timeout=180,
        env={"GW_APP": "tests.clients.capture_app:app", "GW_CAPTURE": str(capture)})
    return code, out, load_run(which, out, capture, lines)


def _exited(out: Path, code: int) -> str:
    """Why the client failed, in one line: its own error event (Codex's ``turn.failed``, Claude
    Code's error result), else its last stderr line."""
    events = [e for e in client_events(out) if e.get("type") in ("turn.failed", "error")
              or e.get("type") == "result" and e.get("is_error")]
    lines = [line for line in (out / "client.err").read_text().splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line]
    if errors:
        said = errors[-1]
    elif events:
        said = str(events[-1].get("error") or events[-1].get("message") or events[-1].get("result"))
    else:
        said = lines[-1] if lines else "without a word"
    return f"the client exited {code}: {said}"


def _common(out: Path, run: Run, main_requests: int, tool_turns: int) -> str:
    """All requests answered; the main agent's and the sub-agent's requests as scripted; every
    tool turn of every thinking request verified, the last main request's ``tool_turns`` of them."""
    generate = [line for line in run.lines if line["endpoint"] == "generate"]
    assert all(line["status"] == 200 and not line["error_code"] for line in generate), [
        (line["status"], line["error_code"]) for line in generate]
    main, sub = run.main(run.generate), run.sub(run.generate)
    assert (len(main), len(sub)) == (main_requests, 2), [len(main), len(sub)]
    assert len(generate) == len(run.generate) == len(run.upstream)
    assert any("hello" in output for output in tool_outputs(sub[-1])), tool_outputs(sub[-1])  # the sub-agent's own call
    assert_replay_verified(out)
    verified = [check["verified_turns"] for check in sim_stats(out)["replay"]]
    assert max(verified) == tool_turns, verified
    assert not any(upstream_thinking_off(body) for body in run.main(run.upstream))
    assert [line["replay_rung"] for line in generate].count("envelope") >= main_requests - 1
    echoed = echoed_thinking(main[-1])
    assert len(echoed) == tool_turns and all(token.startswith("gw2.") for token in echoed), echoed
    kind = ("thinking blocks echoed with the gateway's `gw2.` signature" if run.which == "claude"
            else "reasoning items echoed with the gateway's `gw2.` `encrypted_content`")
    run.needs.append(f"{kind}: DeepSeek's exact reasoning restored on every turn "
                     f"({tool_turns}/{tool_turns} tool turns verified)")
    return f"{main_requests}+2 requests, {tool_turns}/{tool_turns} tool turns replayed"


def _system_folded(run: Run, upstream: str, sent: bool) -> None:
    """No upstream request has a system message where DeepSeek refuses one (whatever the client sent)."""
    late = {i: found for i, body in enumerate(run.upstream) if (found := late_system(body, upstream))}
    assert late == {}, late
    if sent:
        run.needs.append("its `system` message inside `messages[]` (a DeepSeek 400): folded into the system prompt")


def _effort_with_thinking_off(run: Run) -> None:
    """DeepSeek 400s an effort with thinking off: no upstream request has both, and every client
    request whose effort could not go (thinking off upstream) has its ``effort`` loss. Requests
    pair up in order within the main agent's and within the sub-agent's (each one at a time)."""
    assert not any(upstream_thinking_off(body) and upstream_effort(body) is not None for body in run.upstream)
    dropped: list[tuple[str, str]] = []
    for agent, group in (("main agent", run.main), ("sub-agents", run.sub)):
        sent, got = group(run.generate), group(run.upstream)
        assert len(sent) == len(got)
        dropped += [(agent, effort_shape(body)) for body, up in zip(sent, got)
                    if upstream_thinking_off(up) and client_effort(body)]
    losses = [loss for line in run.lines for loss in line["losses"] if loss.startswith("effort:")]
    assert len(losses) == len(dropped), (losses, dropped)
    for agent, shape in dict.fromkeys(dropped):
        run.needs.append(f"{agent}: {shape} (thinking off upstream, and DeepSeek 400s an effort with it): "
                         "the effort not sent, recorded as a loss")


def _claude(tmp_path: Path, version: str, upstream: str, result: dict[str, Any]) -> None:
    code, out, run = _run(tmp_path, "claude", version, upstream)
    assert code == 0, _exited(out, code)
    final = client_events(out)[-1]
    assert final["type"] == "result" and final["subtype"] == "success" and not final["is_error"], final
    assert final["result"] == "All done: out.txt says hello."
    assert (out / "workdir" / "out.txt").read_text() == "hello\n"
    shapes = claude_sends(run)
    result["detail"] = _common(out, run, main_requests=3, tool_turns=2)
    agent_result = tool_outputs(run.main(run.generate)[-1])[-1]
    assert "done" in agent_result, agent_result  # the sub-agent's answer came back through Agent
    _system_folded(run, upstream, shapes["system_in_messages"])
    _effort_with_thinking_off(run)
    for record in run.captured:
        assert record.get("status") is not None and record["status"] < 500, record
    result.update(sends=run.sends, needs=run.needs)


def _codex(tmp_path: Path, version: str, upstream: str, result: dict[str, Any]) -> None:
    code, out, run = _run(tmp_path, "codex", version, upstream)
    assert code == 0, _exited(out, code)
    assert (out / "last_message.txt").read_text().strip() == "All done."
    assert (out / "workdir" / "out.txt").read_text() == "hello\n"
    shapes = codex_sends(run)
    result["detail"] = _common(out, run, main_requests=4, tool_turns=3)
    _system_folded(run, upstream, False)
    _effort_with_thinking_off(run)
    last = run.main(run.generate)[-1]
    assert '"completed"' in tool_outputs(last)[-1], tool_outputs(last)  # wait_agent saw the sub-agent finish
    if shapes["namespaces"]:
        flat = {name for body in run.upstream for name in upstream_tool_names(body)}
        assert {f"{NAMESPACE}__spawn_agent", f"{NAMESPACE}__wait_agent"} <= flat, sorted(flat)
        assert not any(t.get("type") == "namespace" for body in run.upstream for t in body.get("tools", []))
        namespaced = [call for call in echoed_calls(last) if call[0]]
        assert namespaced == [(NAMESPACE, "spawn_agent"), (NAMESPACE, "wait_agent")], namespaced
        run.needs.append(f"namespace tools ({', '.join(f'`{n}`' for n in shapes['namespaces'])}): flattened to "
                         "`<namespace>__<name>` upstream, each call handed back with its namespace "
                         "(spawn_agent and wait_agent ran)")
    hosted = [t["type"] for t in run.generate[0].get("tools", [])
              if t.get("type") in ("web_search", "web_search_preview")]
    if hosted:
        assert all(any(loss.startswith("server_tool:") for loss in line["losses"]) for line in run.lines
                   if line["endpoint"] == "generate"), [line["losses"] for line in run.lines]
        assert not any(name.startswith("web_search") for body in run.upstream for name in upstream_tool_names(body))
        run.needs.append(f"hosted `{hosted[0]}`: not offered to DeepSeek, recorded as a loss")
    result.update(sends=run.sends, needs=run.needs)


@pytest.mark.parametrize(("which", "version", "upstream"), cases(),
                         ids=[f"{c}-{v}-{u}" for c, v, u in cases()])
def test_version(tmp_path: Path, which: str, version: str, upstream: str) -> None:
    result: dict[str, Any] = {"client": which, "version": version, "upstream": upstream, "passed": False}
    if not MATRIX_ROOT:  # a skip, before any result is written
        pytest.skip("GW_CLIENTS_MATRIX does not name the folder .ci/clients-matrix installed the versions into")
    try:
        (_claude if which == "claude" else _codex)(tmp_path, version, upstream, result)
        result["passed"] = True
    except AssertionError as exc:
        result["error"] = (str(exc).strip().splitlines() or ["assertion failed"])[0][:240]
        raise
    finally:
        write_result(results_dir(), result)
