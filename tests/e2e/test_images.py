"""Images on a model that cannot see (issue 18), end to end: the official SDKs against the gateway
served by hypercorn on 127.0.0.1, the strict simulator server as both the text-only model
(``deepseek-v4-pro``: an image reaching it is a 400) and the vision model (``deepseek-v4-flash``:
it answers a description naming the image's size and digest).

Two paths: the ``describe_images`` stage replaces each image by the vision model's description
(cached by digest: a screenshot carried by 50 turns is described once), and a route with
``images: true`` sends the request to the vision model, shaped for it (a Chat tool message holds
text only, so a tool result's image reaches it in a user message after the results).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio

from tests.e2e.image_loops import chat_image, claude_read_loop, codex_view_image_loop, png, seen
from tests.e2e.serving import SIM, SIM_KEY, open_gateway
from tests.resilience.dialects import finished_lines, wait_finished
from upstreams.simulator.testing import SimulatorProcess

DESCRIBE = f"{{describe_images: {{upstream: {{{SIM}}}, model: deepseek-v4-flash}}}}"
CONFIG = f"""
upstreams:
  sim: {{{SIM}}}
pipelines:
  claude: &described
    client: anthropic
    mount: /claude
    stages: [thinking_filter, {DESCRIBE}, token_budget, tool_ids]
    upstream: sim
  codex: {{<<: *described, client: responses, mount: /codex}}
  chat: {{<<: *described, client: chat, mount: /chat, stages: [{DESCRIBE}, token_budget, tool_ids]}}
  rclaude: &routed
    client: anthropic
    mount: /rclaude
    stages: [thinking_filter, token_budget, tool_ids]
    upstream: sim
    routes:
      - {{name: screenshots, when: {{images: true}}, upstream: sim, model: deepseek-v4-flash}}
  rcodex: {{<<: *routed, client: responses, mount: /rcodex}}
"""
SHOT = png(64, 48, seed=1)
DESCRIPTION = f"[image described by deepseek-v4-flash: I see {seen(SHOT, 64, 48)}.]"


def images_in(body: dict[str, Any]) -> list[str]:
    """The image URLs of a Chat request body the simulator received."""
    return [p["image_url"]["url"] for m in body["messages"] if isinstance(m.get("content"), list)
            for p in m["content"] if p.get("type") == "image_url"]


def split(requests: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(vision calls, text-model requests) among the simulator's requests."""
    vision = [b for b in requests if b["model"] == "deepseek-v4-flash"]
    return vision, [b for b in requests if b["model"] == "deepseek-v4-pro"]


@pytest.fixture
def strict_sim(sim: SimulatorProcess) -> SimulatorProcess:
    sim.reset(verify_replay=True)
    return sim


async def claude_run(sim: SimulatorProcess, mount: str, script: str, yaml: str = CONFIG,
                     ) -> tuple[list[Any], list[dict[str, Any]]]:
    """Claude Code's Read loop on ``SHOT`` through ``mount``: (its replies, the request_finished lines)."""
    async with open_gateway(yaml, sim=sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            replies = await trio.to_thread.run_sync(claude_read_loop, url + mount, script, SHOT)
            await wait_finished(logs, len(replies))
    assert [r.stop_reason for r in replies] == ["tool_use", "end_turn"]
    return replies, finished_lines(logs)


class TestDescribed:
    async def test_claude_code_read_of_a_png_in_a_tool_loop(self, strict_sim: SimulatorProcess) -> None:
        """Read returns the PNG as an image block in the tool_result; the text-only model gets the
        description in its place and reports it; one vision call; the loss says it was described."""
        replies, lines = await claude_run(strict_sim, "/claude", "SIM:script read shot.png ;; result")
        assert replies[-1].content[-1].text == f"Tool result: {DESCRIPTION}"
        vision, text = split(strict_sim.requests())
        assert len(vision) == 1 and images_in(vision[0]) and len(text) == 2
        assert not any(images_in(b) for b in text)
        tool = next(m for m in text[1]["messages"] if m["role"] == "tool")
        assert tool["content"] == DESCRIPTION
        last = lines[-1]
        assert last["status"] == 200 and [loss.split(":")[0] for loss in last["losses"]] == ["image_described"]

    async def test_codex_view_image_in_a_tool_loop(self, strict_sim: SimulatorProcess) -> None:
        async with open_gateway(CONFIG, sim=strict_sim) as (url, _):
            responses = await trio.to_thread.run_sync(
                codex_view_image_loop, url + "/codex/v1",
                'SIM:script call view_image {"path": "shot.png"} ;; result', SHOT)
        assert [r.status for r in responses] == ["completed", "completed"]
        assert responses[-1].output_text == f"Tool result: {DESCRIPTION}"
        vision, text = split(strict_sim.requests())
        assert len(vision) == 1 and len(text) == 2 and not any(images_in(b) for b in text)

    async def test_a_chat_users_image(self, strict_sim: SimulatorProcess) -> None:
        async with open_gateway(CONFIG, sim=strict_sim) as (url, _):
            answer = await trio.to_thread.run_sync(chat_image, url + "/chat/v1", "SIM:text ok", SHOT)
        assert answer == "ok"
        vision, (body,) = split(strict_sim.requests())
        assert len(vision) == 1 and not images_in(body)
        assert body["messages"][-1]["content"] == f"SIM:text ok\n{DESCRIPTION}"

    async def test_a_screenshot_carried_by_50_turns_is_described_once(self, strict_sim: SimulatorProcess) -> None:
        """50 Reads of the same 20 KB screenshot: the last request carries it 50 times (~1.4 MB of
        base64); the vision model is asked once, every later turn is served from the cache."""
        shot = png(80, 80, seed=7)
        script = "SIM:script " + " ;; ".join(["read shot.png"] * 50) + " ;; text seen them all"
        async with open_gateway(CONFIG, sim=strict_sim) as (url, _):
            with structlog.testing.capture_logs() as logs:
                replies = await trio.to_thread.run_sync(
                    lambda: claude_read_loop(url + "/claude", script, shot, steps=52))
                await wait_finished(logs, 51)
        assert len(replies) == 51 and replies[-1].content[-1].text == "seen them all"
        requests = strict_sim.requests()
        vision, text = split(requests)
        assert len(vision) == 1 and len(text) == 51 and not any(images_in(b) for b in text)
        lines = finished_lines(logs)
        assert [line["status"] for line in lines] == [200] * 51
        assert lines[-1]["losses"] == [
            f"image_described: image sha256:{_digest(shot)[:12]} (50 times in the conversation) described by "
            "deepseek-v4-flash (cached): deepseek-v4-pro has no image input"]
        assert len(_b64(shot)) * 50 > 1_000_000  # what the client sent on its last turn
        assert len(json.dumps(text[-1])) < 100_000  # what the text model got instead

    async def test_a_vision_failure_is_a_placeholder_not_a_failed_request(self, strict_sim: SimulatorProcess) -> None:
        """The vision upstream refuses connections: the text model gets a placeholder, the loss
        says the image was not described, the loop completes."""
        yaml = CONFIG.replace("upstream: {type: openai_chat, base_url: '${SIM_URL}'",
                              "upstream: {type: openai_chat, base_url: 'http://127.0.0.1:9'", 1)
        assert yaml != CONFIG
        replies, lines = await claude_run(strict_sim, "/claude", "SIM:script read shot.png ;; result", yaml)
        assert replies[-1].content[-1].text.startswith("Tool result: [image not described: ")
        vision, text = split(strict_sim.requests())
        assert not vision and not any(images_in(b) for b in text)
        (loss,) = lines[-1]["losses"]
        assert loss.startswith("image_undescribed: ") and "could not describe it" in loss


class TestRouted:
    async def test_claude_code_read_of_a_png_reaches_the_vision_model(self, strict_sim: SimulatorProcess) -> None:
        """The Read's image routes the turn to deepseek-v4-flash, where the image arrives in a user
        message after the tool result (Chat carries no image in a tool message); the model saw it."""
        replies, lines = await claude_run(strict_sim, "/rclaude", "SIM:script read shot.png ;; describe")
        assert replies[-1].content[-1].text == f"I see {seen(SHOT, 64, 48)}."
        first, second = strict_sim.requests()
        assert first["model"] == "deepseek-v4-pro" and second["model"] == "deepseek-v4-flash"
        roles = [m["role"] for m in second["messages"]]
        assert roles[-2:] == ["tool", "user"] and images_in(second) == [f"data:image/png;base64,{_b64(SHOT)}"]
        assert [line["route"] for line in lines] == ["default", "screenshots"]
        assert not lines[-1]["losses"]

    async def test_codex_view_image_reaches_the_vision_model(self, strict_sim: SimulatorProcess) -> None:
        async with open_gateway(CONFIG, sim=strict_sim) as (url, _):
            responses = await trio.to_thread.run_sync(
                codex_view_image_loop, url + "/rcodex/v1",
                'SIM:script call view_image {"path": "shot.png"} ;; describe', SHOT)
        assert responses[-1].output_text == f"I see {seen(SHOT, 64, 48)}."
        assert [b["model"] for b in strict_sim.requests()] == ["deepseek-v4-pro", "deepseek-v4-flash"]


async def test_without_either_path_the_model_gets_a_placeholder(strict_sim: SimulatorProcess) -> None:
    """The baseline the two paths improve on: the encoder keeps the image from the text-only model
    (the strict simulator would refuse it: tests/upstreams/test_simulator_vision.py) and says so."""
    yaml = CONFIG.replace(f"{DESCRIBE}, ", "")
    async with open_gateway(yaml, sim=strict_sim) as (url, _):
        with structlog.testing.capture_logs() as logs:
            answer = await trio.to_thread.run_sync(chat_image, url + "/chat/v1", "SIM:text ok", SHOT)
            await wait_finished(logs)
    assert answer == "ok"
    (body,) = strict_sim.requests()
    assert not images_in(body) and "image omitted" in body["messages"][-1]["content"]
    assert finished_lines(logs)[-1]["losses"] == ["image: deepseek-v4-pro has no image input; sent a placeholder"]


def _digest(image: bytes) -> str:
    import hashlib
    return hashlib.sha256(image).hexdigest()


def _b64(image: bytes) -> str:
    import base64
    return base64.b64encode(image).decode()


def readme_examples() -> list[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Images on models that cannot see", 1)[1].split("\n### ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```yaml\n")[1:]]


@pytest.mark.parametrize("which", ["describe", "route"])
async def test_the_readme_examples_work_as_written(which: str, strict_sim: SimulatorProcess, monkeypatch) -> None:
    """The README's two examples, served as written (DeepSeek's URL and key variable pointed at the
    simulator server): Claude Code's Read and Codex's view_image complete through each."""
    examples = readme_examples()
    assert len(examples) == 2
    monkeypatch.setenv("DEEPSEEK_API_KEY", SIM_KEY)
    yaml = examples[0 if which == "describe" else 1]
    step = "result" if which == "describe" else "describe"
    expected = f"Tool result: {DESCRIPTION}" if which == "describe" else f"I see {seen(SHOT, 64, 48)}."
    async with open_gateway(yaml, env={"DEEPSEEK_BASE_URL": strict_sim.url}) as (url, _):
        replies = await trio.to_thread.run_sync(claude_read_loop, url, f"SIM:script read shot.png ;; {step}", SHOT)
        responses = await trio.to_thread.run_sync(
            codex_view_image_loop, url + "/v1", f'SIM:script call view_image {{"path": "shot.png"}} ;; {step}', SHOT)
    assert replies[-1].content[-1].text == expected and responses[-1].output_text == expected
    vision, text = split(strict_sim.requests())
    assert not any(images_in(b) for b in text)
    # Describing: one vision call per pipeline (each keeps its own descriptions); routing: the two
    # routed turns.
    assert len(vision) == 2 and all(images_in(b) for b in vision)
