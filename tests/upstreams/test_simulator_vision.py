"""The simulator as a vision model (Flash describes what it is shown, exactly) and as a strict
text-only one (an image to Pro is a 400), and the scripts of a tool loop whose tool results'
images come back in a user message after the results."""

from __future__ import annotations

import hashlib

from tests.e2e.image_loops import data_url, png
from tests.upstreams.simulator_helpers import chat, collect, error_of, frames, request, tool_turn, user
from upstreams.simulator import Simulator
from upstreams.simulator.directives import find_prompt
from upstreams.simulator.vision import describe_image

SHOT = png(40, 30, seed=2)


def with_image(text: str, url: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]}


def test_a_vision_model_describes_an_image_without_a_directive() -> None:
    got = collect(frames(chat(Simulator(), request([with_image("Describe this.", data_url(SHOT))],
                                                   model="deepseek-v4-flash"))))
    digest = hashlib.sha256(SHOT).hexdigest()[:16]
    assert got["content"] == f"I see image/png 40x30, {len(SHOT)} bytes, sha256 {digest}."


def test_a_text_only_model_refuses_an_image() -> None:
    status, message = error_of(Simulator(), request([with_image("SIM:text ok", data_url(SHOT))]))
    assert status == 400 and message == "messages[0]: the model `deepseek-v4-pro` does not support image input"


def test_describe_step_names_the_newest_image_and_the_prompt_survives_the_image_message() -> None:
    """A tool loop on Flash: the tool result's image in a user message after it (the gateway's
    Chat shape); the script's prompt is still the first user message, the step the second."""
    messages = [user("SIM:script shell ls ;; describe"), *tool_turn()[1:],
                with_image("[image 1, returned by tool call call_1]", data_url(SHOT))]
    assert find_prompt(messages) == 0
    got = collect(frames(chat(Simulator(), request(messages, model="deepseek-v4-flash"))))
    assert got["content"] == f"I see {describe_image(data_url(SHOT))}."


def test_descriptions_of_what_is_not_a_png() -> None:
    assert describe_image("https://h/x.jpg") == "an image at https://h/x.jpg"
    assert describe_image("data:image/jpeg;base64,AAAA").startswith("image/jpeg, 3 bytes, sha256 ")
