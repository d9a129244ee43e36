"""Screenshots on a text-only model, with the real clients (issue 18): Claude Code's ``Read`` of a
PNG in its work dir and Codex's ``view_image`` each complete a tool loop on ``deepseek-v4-pro``
(the strict simulator refuses any image sent to it), through the description path (the
``describe_images`` stage, the simulator's Flash as the vision model) and through the routing path
(a route with ``images: true`` to Flash, which describes what it was shown).

Opt-in like the other real-client tests (``pytest -m clients``, ``GW_CLIENTS``, root).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.clients.harness import STAGES, run_client, sim_requests
from tests.e2e.image_loops import png, seen

pytestmark = pytest.mark.clients

SIM = {"type": "openai_chat", "base_url": "${GW_SIM_URL}", "api_key_env": "SIM_API_KEY", "profile": "deepseek",
       "models": {"default": "deepseek-v4-pro", "*haiku*": "deepseek-v4-flash"}}
SHOT = png(64, 48, seed=5)
DESCRIBED = f"[image described by deepseek-v4-flash: I see {seen(SHOT, 64, 48)}.]"


def config(path: str) -> dict[str, Any]:
    """Both clients under ``/sim`` on deepseek-v4-pro, ``path`` (``describe`` or ``route``) giving them sight."""
    stages: list[Any] = list(STAGES)
    routes: list[Any] = []
    if path == "describe":
        stages.insert(1, {"describe_images": {"upstream": SIM, "model": "deepseek-v4-flash"}})
    else:
        routes = [{"name": "screenshots", "when": {"images": True}, "upstream": "sim", "model": "deepseek-v4-flash"}]
    pipeline = {"mount": "/sim", "stages": stages, "upstream": "sim", "routes": routes}
    return {"upstreams": {"sim": SIM}, "pipelines": {"claude": {**pipeline, "client": "anthropic"},
                                                    "codex": {**pipeline, "client": "responses"}}}


def put_shot(workdir: Path) -> None:
    (workdir / "shot.png").write_bytes(SHOT)


def images_in(body: dict[str, Any]) -> int:
    return sum(1 for m in body["messages"] if isinstance(m.get("content"), list)
               for p in m["content"] if p.get("type") == "image_url")


def check_upstream(out: Path, path: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The image reached only Flash (as a vision call, or as the routed turn); never Pro."""
    bodies = sim_requests(out)
    flash = [b for b in bodies if b["model"] == "deepseek-v4-flash" and images_in(b)]
    pro = [b for b in bodies if b["model"] == "deepseek-v4-pro"]
    assert flash and pro, [(b["model"], images_in(b)) for b in bodies]
    assert not any(images_in(b) for b in pro)
    if path == "describe":
        assert len(flash) == 1  # described once, however many turns carry it
    return flash, pro


def claude_result(out: Path) -> str:
    result = json.loads((out / "client.jsonl").read_text().splitlines()[-1])
    assert result["type"] == "result" and result["subtype"] == "success" and not result["is_error"], result
    return str(result["result"])


@pytest.mark.parametrize("path", ["describe", "route"])
def test_claude_code_reads_a_png(tmp_path: Path, path: str) -> None:
    step = "result" if path == "describe" else "describe"
    code, out, lines = run_client(tmp_path, "claude", f"SIM:script read shot.png ;; {step}", config=config(path),
                                  prepare=put_shot)
    assert code == 0, (out / "client.err").read_text()[-2000:]
    text = claude_result(out)
    check_upstream(out, path)
    generate = [line for line in lines if line["endpoint"] == "generate" and line["status"] == 200]
    if path == "describe":
        assert text == f"Tool result: {DESCRIBED}", text
        assert any(loss.startswith("image_described:") for line in generate for loss in line["losses"])
    else:
        assert text == f"I see {seen(SHOT, 64, 48)}.", text  # Flash saw the very bytes of the file
        assert "screenshots" in [line.get("route") for line in generate]


@pytest.mark.parametrize("path", ["describe", "route"])
def test_codex_views_an_image(tmp_path: Path, path: str) -> None:
    step = "result" if path == "describe" else "describe"
    code, out, lines = run_client(tmp_path, "codex", f'SIM:script call view_image {{"path": "shot.png"}} ;; {step}',
                                  config=config(path), prepare=put_shot)
    assert code == 0, (out / "client.err").read_text()[-2000:]
    text = (out / "last_message.txt").read_text().strip()
    check_upstream(out, path)
    assert text == (f"Tool result: {DESCRIBED}" if path == "describe" else f"I see {seen(SHOT, 64, 48)}."), text


@pytest.mark.parametrize("path", ["describe", "route"])
def test_codex_with_the_written_home_views_an_image(tmp_path: Path, path: str) -> None:
    """With the catalog ``setup codex`` writes, Codex 0.169 runs view_image only for a model whose
    entry has image input ("view_image is not allowed because you do not support image inputs"
    otherwise, and it strips images from its history): the pipeline's sight makes Pro one."""
    step = "result" if path == "describe" else "describe"
    code, out, _ = run_client(tmp_path, "codex", f'SIM:script call view_image {{"path": "shot.png"}} ;; {step}',
                              config=config(path), prepare=put_shot, setup=True)
    assert code == 0, (out / "client.err").read_text()[-2000:]
    catalog = json.loads((out / "home" / "gateway-models.json").read_text())
    assert {m["slug"]: m["input_modalities"] for m in catalog["models"]}["deepseek-v4-pro"] == ["text", "image"]
    text = (out / "last_message.txt").read_text().strip()
    assert text == (f"Tool result: {DESCRIBED}" if path == "describe" else f"I see {seen(SHOT, 64, 48)}."), text
    check_upstream(out, path)
