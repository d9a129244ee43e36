#!/usr/bin/env bash
# Run one real client against the gateway and the simulator server, all inside a loopback-only
# network namespace.
# usage (as root): unshare --net -- bash -c 'ip link set lo up && exec "$@"' x run_client.sh \
#                  CLIENTS_DIR CONFIG OUT_DIR claude|codex BASE_PATH PROMPT
# The simulator runs as its own process (`python -m upstreams.simulator`) on 127.0.0.1:9100
# ($GW_SIM_URL), requiring the Bearer key $SIM_API_KEY; CONFIG's upstream points there through
# the production transport (type: openai_chat, api_key_env: SIM_API_KEY).
# Environment knobs:
#   GW_SIM_ARGS        more simulator flags, shell-quoted words (e.g. --fault-on 2:429 --options '{...}')
#   GW_CODEX_CONFIG    extra top-level lines for Codex's config.toml (e.g. model_context_window = 60000)
#   GW_CODEX_REQUEST_RETRIES, GW_CODEX_STREAM_RETRIES  the provider's retry counts (0)
#   GW_CODEX_ARGS      more `codex exec` flags, shell-quoted words (e.g. --output-schema FILE)
#   GW_CLIENT_TIMEOUT  seconds the client may run (240)
#   GW_PYTHON          the Python with the gateway installed (python3)
#   GW_APP             the ASGI app to serve (pipeline:app; tests.clients.capture_app:app records
#                      every client request to $GW_CAPTURE)
#   GW_SETUP=1         the client's settings are the ones `python -m pipeline setup` wrote into
#                      OUT_DIR/home (Claude: .claude/settings.json; Codex: config.toml + catalog):
#                      nothing of the client's configuration is set here
# A fake SearXNG (tests/fake_searxng.py) answers on 127.0.0.1:9200 ($GW_SEARXNG_URL) for a
# pipeline with the web_search stage; the queries it got are OUT_DIR/searxng_queries.txt.
# Writes OUT_DIR/{gateway.log,simulator.log,simulator_stats.json,simulator_requests.json,client.jsonl,
#   client.err,workdir/}
# (a prepared OUT_DIR/workdir is kept); exit status = the client's.
set -u
clients=$1 config=$2 out=$3 which=$4 base=$5 prompt=$6
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${GW_PYTHON:-python3}
eval "sim_args=(${GW_SIM_ARGS:-})"
export SIM_API_KEY=sim-key-for-tests GW_SIM_URL=http://127.0.0.1:9100 GW_SEARXNG_URL=http://127.0.0.1:9200
mkdir -p "$out/workdir" "$out/home"
cd "$repo"

wait_port() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
"$python" -m upstreams.simulator --port 9100 --api-key "$SIM_API_KEY" --control "${sim_args[@]}" \
  > "$out/simulator.log" 2>&1 &
sim=$!
"$python" -m tests.fake_searxng 9200 "$out/searxng_queries.txt" > "$out/searxng.log" 2>&1 &
searxng=$!
wait_port 9100 || { echo "simulator did not start" >&2; cat "$out/simulator.log" >&2; exit 97; }
PIPELINES_CONFIG=$config "$python" -m hypercorn -k trio -b 127.0.0.1:8000 "${GW_APP:-pipeline:app}" > "$out/gateway.log" 2>&1 &
gw=$!
wait_port 9200 || { echo "fake searxng did not start" >&2; cat "$out/searxng.log" >&2; exit 97; }
wait_port 8000 || { echo "gateway did not start" >&2; cat "$out/gateway.log" >&2; exit 98; }

cd "$out/workdir" && { [ -d .git ] || git init -q .; }
export HOME=$out/home
limit=${GW_CLIENT_TIMEOUT:-240}
if [ "$which" = claude ] && [ "${GW_SETUP:-}" = 1 ]; then
  export IS_SANDBOX=1  # root may skip permissions only in a sandbox; the rest is settings.json's
  timeout "$limit" "$clients/node_modules/.bin/claude" -p --output-format stream-json --verbose \
    --dangerously-skip-permissions -- "$prompt" > "$out/client.jsonl" 2> "$out/client.err"
elif [ "$which" = claude ]; then
  export ANTHROPIC_BASE_URL=http://127.0.0.1:8000$base ANTHROPIC_API_KEY=dummy IS_SANDBOX=1
  export DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
  timeout "$limit" "$clients/node_modules/.bin/claude" -p --output-format stream-json --verbose \
    --dangerously-skip-permissions -- "$prompt" > "$out/client.jsonl" 2> "$out/client.err"
else
  export CODEX_HOME=$out/home GW_API_KEY=dummy
  [ "${GW_SETUP:-}" = 1 ] || cat > "$CODEX_HOME/config.toml" <<TOML
model = "deepseek-v4-pro"
model_provider = "gw"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
model_supports_reasoning_summaries = true
${GW_CODEX_CONFIG:-}
[analytics]
enabled = false
[feedback]
enabled = false
[otel]
exporter = "none"
trace_exporter = "none"
metrics_exporter = "none"
[features]
plugins = false
apps = false
[model_providers.gw]
name = "gw"
base_url = "http://127.0.0.1:8000$base/v1"
wire_api = "responses"
env_key = "GW_API_KEY"
request_max_retries = ${GW_CODEX_REQUEST_RETRIES:-0}
stream_max_retries = ${GW_CODEX_STREAM_RETRIES:-0}
TOML
  eval "codex_args=(${GW_CODEX_ARGS:-})"
  timeout "$limit" "$clients/node_modules/.bin/codex" exec --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox \
    --color never --json -C "$out/workdir" -o "$out/last_message.txt" "${codex_args[@]}" "$prompt" \
    < /dev/null > "$out/client.jsonl" 2> "$out/client.err"
fi
status=$?
"$python" - "$GW_SIM_URL" "$SIM_API_KEY" "$out" <<'PY' || true
import sys, urllib.request
def get(path):
    req = urllib.request.Request(sys.argv[1] + path, headers={"authorization": f"Bearer {sys.argv[2]}"})
    return urllib.request.urlopen(req, timeout=10).read().decode()
open(sys.argv[3] + "/simulator_stats.json", "w").write(get("/_sim/stats"))
open(sys.argv[3] + "/simulator_requests.json", "w").write(get("/_sim/requests?last=0"))
PY
kill "$gw" "$sim" "$searxng" 2>/dev/null; wait "$gw" "$sim" "$searxng" 2>/dev/null
exit $status
