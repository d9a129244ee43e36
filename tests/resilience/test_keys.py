"""Keys: gateway keys per pipeline (401 in each dialect), passthrough of the client's key to the
upstream (the simulator server, which checks it), and no key ever in a log line or an error
message (upstream texts echoing it included).
"""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
import structlog
import trio

from tests.e2e.serving import SIM, open_gateway
from tests.resilience.dialects import DIALECTS, auth_headers, call, key_errors, wait_finished

GW_KEY = "gw-key-7f3a9c1e5b2d"
GW_KEY_2 = "gw-key-second-0a1b2c3d"
UPSTREAM_KEY = "sk-upstream-0123456789abcdef"
WRONG_KEY = "sk-wrong-key-9876543210zyxw"
ODD_KEY = "tok.Client.Secret.Q9W8E7R6"  # no sk- shape: only the known-secret redaction catches it

GATEWAY_KEYS = """
upstreams:
  sim: {%s}
pipelines:
  anthropic: {client: anthropic, upstream: sim, api_keys_env: [GW_KEY, GW_KEY_2], mount: /anthropic}
  responses: {client: responses, upstream: sim, api_keys_env: [GW_KEY], mount: /responses}
  chat: {client: chat, upstream: sim, api_keys_env: [GW_KEY], mount: /chat}
""" % SIM

PASSTHROUGH = f"""
upstreams:
  sim: {{{SIM}, key_passthrough: true}}
  echo:
    type: openai_chat
    base_url: ${{ECHO_URL}}
    key_passthrough: true
    api_key_env: ECHO_FALLBACK_KEY
    models: {{default: deepseek-v4-pro}}
pipelines:
""" + "".join(f"  {d}: {{client: {d}, upstream: sim, mount: /{d}}}\n"
              f"  {d}_echo: {{client: {d}, upstream: echo, mount: /{d}/echo}}\n" for d in DIALECTS)

AUTH_ERROR = {"anthropic": "authentication_error", "responses": "invalid_api_key", "chat": "invalid_api_key"}


@pytest.fixture
def gateway_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_KEY", GW_KEY)
    monkeypatch.setenv("GW_KEY_2", GW_KEY_2)
    monkeypatch.setenv("ECHO_FALLBACK_KEY", "sk-fallback-from-env-000111")


def assert_no_key(keys: tuple[str, ...], *texts: object) -> None:
    for text in texts:
        for key in keys:
            assert key not in str(text), f"key {key[:6]}… leaked into {str(text)[:300]}"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_gateway_key_is_checked(dialect: str, gateway_env: None, sim) -> None:
    """Missing or wrong key: 401 in the dialect; the right key (either header form) passes; keys
    never reach the logs."""
    async with open_gateway(GATEWAY_KEYS, sim=sim) as (url, _):
        base = f"{url}/{dialect}"
        with structlog.testing.capture_logs() as logs:
            async with httpx.AsyncClient(timeout=10) as http:
                missing = await call(http, base, dialect, "SIM:text hi", key=None)
                wrong = await call(http, base, dialect, "SIM:text hi", key=GW_KEY[:-1] + "x")
                good = await call(http, base, dialect, "SIM:text hi", key=GW_KEY)
                bearer = await http.get(base + "/v1/models", headers={"authorization": f"Bearer {GW_KEY}"})
                models = await http.get(base + "/v1/models", headers=auth_headers(dialect, None))
            await wait_finished(logs, 3)
    for reply in (missing, wrong):
        assert (reply.status, reply.error_kind) == (401, AUTH_ERROR[dialect])
        assert "invalid or missing API key" in reply.error["message"]
    assert good.status == 200 and good.complete and good.text == "hi"
    assert models.status_code == 401 and bearer.status_code == 200
    assert len([e for e in logs if e.get("event") == "request_finished"]) == 3 and sim.chat_requests == 1
    assert_no_key((GW_KEY, GW_KEY[:-1] + "x"), logs, missing.raw, wrong.raw)


async def test_gateway_key_through_the_sdks(gateway_env: None, sim) -> None:
    """The SDKs raise their AuthenticationError; a second configured key works too."""

    def calls(url: str) -> list[object]:
        outcomes: list[object] = []
        for key in ("nope", GW_KEY_2):
            client = anthropic.Anthropic(base_url=f"{url}/anthropic", api_key=key, max_retries=0)
            try:
                outcomes.append(client.messages.create(model="m", max_tokens=100,
                                                       messages=[{"role": "user", "content": "SIM:text ok"}]))
            except anthropic.AuthenticationError as exc:
                outcomes.append(exc)
        for mount in ("responses", "chat"):
            client = openai.OpenAI(base_url=f"{url}/{mount}/v1", api_key="nope", max_retries=0)
            try:
                client.models.list()
            except openai.AuthenticationError as exc:
                outcomes.append(exc)
        return outcomes

    async with open_gateway(GATEWAY_KEYS, sim=sim) as (url, _):
        denied, allowed, responses_denied, chat_denied = await trio.to_thread.run_sync(calls, url)
    assert isinstance(denied, anthropic.AuthenticationError)
    assert allowed.content[-1].text == "ok"
    assert isinstance(responses_denied, openai.AuthenticationError)
    assert isinstance(chat_denied, openai.AuthenticationError)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_passthrough_forwards_the_clients_key(dialect: str, gateway_env: None, sim) -> None:
    """The client's key reaches the upstream; a wrong one becomes the dialect's authentication
    error with the upstream's message, the key itself nowhere."""
    sim.reset(api_key=UPSTREAM_KEY)
    async with open_gateway(PASSTHROUGH, sim=sim, env={"ECHO_URL": "http://127.0.0.1:9"}) as (url, _):  # echo unused
        with structlog.testing.capture_logs() as logs:
            async with httpx.AsyncClient(timeout=10) as http:
                good = await call(http, f"{url}/{dialect}", dialect, "SIM:text passed", key=UPSTREAM_KEY)
                bad = await call(http, f"{url}/{dialect}", dialect, "SIM:text passed", key=WRONG_KEY)
                other_header = None
                if dialect == "anthropic":  # Claude Code with ANTHROPIC_AUTH_TOKEN sends a Bearer
                    other_header = await http.post(f"{url}/anthropic/v1/messages", headers={
                        "authorization": f"Bearer {UPSTREAM_KEY}", "anthropic-version": "2023-06-01"},
                        json={"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "x"}]})
            await wait_finished(logs, 3 if other_header is not None else 2)
    assert good.status == 200 and good.text == "passed"
    assert bad.status == 401 and bad.error_kind == AUTH_ERROR[dialect]
    assert "Authentication Fails, Your api key: ****zyxw is invalid" in bad.error["message"]
    if other_header is not None:
        assert other_header.status_code == 200
    assert_no_key((UPSTREAM_KEY, WRONG_KEY), logs, bad.raw)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_echoed_key_is_redacted(dialect: str, gateway_env: None, sim, nursery) -> None:
    """An upstream that quotes the whole key (HTTP error and in-stream error chunk): the client
    and the logs see ``[redacted]``; without a client key the env key is used."""
    echo = key_errors(echo_key=True)
    env = {"ECHO_URL": await echo.serve(nursery)}
    async with open_gateway(PASSTHROUGH, sim=sim, env=env) as (url, _):
        base = f"{url}/{dialect}/echo"
        with structlog.testing.capture_logs() as logs:
            async with httpx.AsyncClient(timeout=10) as http:
                http_error = await call(http, base, dialect, "STATUS:401", key=ODD_KEY)
                in_stream = await call(http, base, dialect, "STREAMERR", key=ODD_KEY)
                await call(http, base, dialect, "STATUS:401", key=None)
            await wait_finished(logs, 3)
    assert echo.seen_keys == [ODD_KEY, ODD_KEY, "sk-fallback-from-env-000111"]
    assert http_error.status == 401 and "Incorrect API key provided: [redacted]" in http_error.error["message"]
    assert in_stream.status == 200 and in_stream.in_stream
    assert "Incorrect API key provided: [redacted]" in in_stream.error["message"]
    assert_no_key((ODD_KEY, "sk-fallback-from-env-000111"), logs, http_error.raw, in_stream.raw)


UNICODE_KEY = "gw-schl\u00fcssel-\u043a\u043b\u044e\u0447-\u2603-7f3a"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_non_ascii_gateway_key_matches_its_utf8(dialect: str, gateway_env: None, sim,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A key with non-ASCII characters matches when the client sends its UTF-8 bytes, in
    x-api-key or as a Bearer token (headers reach the app as bytes: they are compared as
    bytes); one byte off, or the key's Latin-1-looking mojibake, is still a 401."""
    monkeypatch.setenv("GW_KEY", UNICODE_KEY)
    raw = UNICODE_KEY.encode()
    base = {"anthropic-version": "2023-06-01"} if dialect == "anthropic" else {}
    async with open_gateway(GATEWAY_KEYS, sim=sim) as (url, _):
        async with httpx.AsyncClient(timeout=10) as http:
            async def status(**headers: bytes) -> int:
                response = await http.get(f"{url}/{dialect}/v1/models", headers={**base, **headers})
                return response.status_code

            as_api_key = await status(**{"x-api-key": raw})
            as_bearer = await status(authorization=b"Bearer " + raw)
            off_by_one = await status(**{"x-api-key": raw[:-1] + b"b"})
            mojibake = await status(**{"x-api-key": raw.decode("latin-1").encode()})
    assert (as_api_key, as_bearer, off_by_one, mojibake) == (200, 200, 401, 401)


METRICS = GATEWAY_KEYS.replace("upstreams:", "server: {metrics_require_key: %s}\nupstreams:", 1)
OPEN = """
upstreams:
  sim: {%s}
pipelines:
  chat: {client: chat, upstream: sim, mount: /chat}
""" % SIM


async def metrics_statuses(url: str) -> tuple[int, ...]:
    """/metrics without a key, with a wrong one, with GW_KEY (Bearer), with GW_KEY_2 (x-api-key:
    it opens only the Anthropic pipeline, and any pipeline's key opens /metrics)."""
    async with httpx.AsyncClient(timeout=10) as http:
        answers = [await http.get(f"{url}/metrics", headers=h) for h in (
            {}, {"authorization": f"Bearer {WRONG_KEY}"}, {"authorization": f"Bearer {GW_KEY}"}, {"x-api-key": GW_KEY_2})]
    for answer in answers:
        if answer.status_code == 200:
            assert answer.headers["content-type"].startswith("text/plain")
        else:
            assert answer.json()["error"]["type"] == "authentication_error"
    return tuple(a.status_code for a in answers)


async def test_metrics_need_a_key_when_pipelines_have_keys(gateway_env: None, sim) -> None:
    """Default: pipelines with gateway keys make /metrics need one of them; /healthz stays open."""
    async with open_gateway(GATEWAY_KEYS, sim=sim) as (url, _):
        statuses = await metrics_statuses(url)
        async with httpx.AsyncClient(timeout=10) as http:
            health = await http.get(f"{url}/healthz")
    assert statuses == (401, 401, 200, 200) and health.status_code == 200


@pytest.mark.parametrize(("text", "expected"), [
    (METRICS % "false", (200, 200, 200, 200)),  # opened explicitly
    (METRICS % "true", (401, 401, 200, 200)),
    (OPEN, (200, 200, 200, 200)),  # no gateway keys anywhere: open, as before
])
async def test_metrics_key_is_a_choice(text: str, expected: tuple[int, ...], gateway_env: None, sim) -> None:
    async with open_gateway(text, sim=sim) as (url, _):
        assert await metrics_statuses(url) == expected
