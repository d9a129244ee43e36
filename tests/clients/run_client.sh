#!/usr/bin/env bash
# Run one real client against the gateway, both inside a loopback-only network namespace.
# usage (as root): unshare --net -- bash -c 'ip link set lo up && exec "$@"' x run_client.sh \
#                  CLIENTS_DIR CONFIG OUT_DIR claude|codex BASE_PATH PROMPT
# Writes OUT_DIR/{gateway.log,client.jsonl,client.err,workdir/...}; exit status = the client's.
set -u
clients=$1 config=$2 out=$3 which=$4 base=$5 prompt=$6
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${GW_PYTHON:-python3}
mkdir -p "$out/workdir" "$out/home"
cd "$repo"
PIPELINES_CONFIG=$config "$python" -m hypercorn -k trio -b 127.0.0.1:8000 pipeline:app > "$out/gateway.log" 2>&1 &
gw=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null && break; sleep 0.1; done
cd "$out/workdir" && git init -q .
export HOME=$out/home
if [ "$which" = claude ]; then
  export ANTHROPIC_BASE_URL=http://127.0.0.1:8000$base ANTHROPIC_API_KEY=dummy IS_SANDBOX=1
  export DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
  timeout 240 "$clients/node_modules/.bin/claude" -p --output-format stream-json --verbose \
    --dangerously-skip-permissions -- "$prompt" > "$out/client.jsonl" 2> "$out/client.err"
else
  export CODEX_HOME=$out/home GW_API_KEY=dummy
  cat > "$CODEX_HOME/config.toml" <<TOML
model = "deepseek-v4-pro"
model_provider = "gw"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
model_supports_reasoning_summaries = true
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
request_max_retries = 0
stream_max_retries = 0
TOML
  timeout 240 "$clients/node_modules/.bin/codex" exec --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox \
    --color never --json -C "$out/workdir" -o "$out/last_message.txt" "$prompt" < /dev/null > "$out/client.jsonl" 2> "$out/client.err"
fi
status=$?
kill "$gw" 2>/dev/null; wait "$gw" 2>/dev/null
exit $status
