"""The real Codex 0.169.0 and its ``model_reasoning_summary`` (issue 17).

Codex sends ``reasoning.summary`` only when it wants summaries: with ``none`` it leaves the field
out, which the Responses API answers with no summary. Then the gateway shows no reasoning (Codex's
``--json`` stream has no reasoning item and never the reasoning's words) while the reasoning items
still carry the envelope, so every tool turn's reasoning is replayed exactly (the simulator
verifies it). With ``auto`` the same words are shown. Opt-in like the other real-client tests
(``pytest -m clients``, ``GW_CLIENTS``, root).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.harness import assert_loop, assert_replay_verified, client_events, run_client

pytestmark = pytest.mark.clients

PROMPT = "SIM:think hidden-plan {step}\nSIM:script shell echo one > one.txt ;; shell echo two > two.txt ;; text ok"


def reasoning_texts(out: Path) -> list[str]:
    return [e["item"].get("text", "") for e in client_events(out)
            if e.get("type") == "item.completed" and e["item"].get("type") == "reasoning"]


@pytest.mark.parametrize("summary", ["none", "auto"])
def test_codex_summary_setting_decides_what_is_shown(tmp_path: Path, summary: str) -> None:
    code, out, lines = run_client(tmp_path, "codex", PROMPT, codex_config=f'model_reasoning_summary = "{summary}"')
    assert code == 0, (out / "client.err").read_text()[-2000:]
    assert (out / "workdir" / "two.txt").read_text() == "two\n"
    assert_loop(lines, 3)  # every later turn replayed the reasoning from its envelope
    assert_replay_verified(out)
    shown = reasoning_texts(out)
    if summary == "none":
        assert shown == [] and "hidden-plan" not in (out / "client.jsonl").read_text()
    else:
        assert shown == ["hidden-plan 0", "hidden-plan 1", "hidden-plan 2"]
