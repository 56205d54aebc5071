#!/usr/bin/env bash
# The demo: moto's server (the AWS emulator) + simulated Atlas Engine traffic with a slow
# Bedrock call in Dev + the daemon tailing it; prints what the daemon found.
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash scripts/test-env.sh install
PY=$(bash scripts/test-env.sh python)
echo "==> Building latency-sentinel"
cargo build --quiet
BIN="$ROOT/target/debug/latency-sentinel"

WORK=$(mktemp -d -t latency-sentinel-demo.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "==> Stopped. (Files were in $WORK)"
}
trap cleanup EXIT INT TERM

export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

echo "==> Starting the AWS emulator (moto) on 127.0.0.1"
"$PY" scripts/moto_server.py --host 127.0.0.1 --port 0 --port-file "$WORK/moto.port" 2>"$WORK/moto.log" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$WORK/moto.port" ] && break; sleep 0.2; done
MOTO="http://127.0.0.1:$(cat "$WORK/moto.port")"

echo "==> Writing simulated traffic: PROD normal, Dev with a slow Bedrock call (~9 s)"
"$PY" - "$MOTO" <<'PYEOF'
import sys, time, random, boto3
sys.path.insert(0, 'tests/support')
import lambda_traffic as t
kw = dict(endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='demo', aws_secret_access_key='demo')
logs, lam, iam = (boto3.client(n, **kw) for n in ('logs', 'lambda', 'iam'))
random.seed(7)
versions = {f: t.setup_function(lam, iam, f) for f in ['GenerateDynamicScenarioHandler', 'InvokeOutboundCallHandler']}
w = t.Writer(logs)
now = int(time.time() * 1000)
for env, base in (('PROD', 2.6), ('Dev', 9.0)):
    v = versions['GenerateDynamicScenarioHandler'][env]
    s = t.stream_name(v)
    for i in range(40):
        w.text_invocation('GenerateDynamicScenarioHandler', 'GDSH', env, v, s, now - 600_000 + i * 10_000,
                          round(random.gauss(base, 0.3), 3), i == 0)
    v = versions['InvokeOutboundCallHandler'][env]
    s = t.stream_name(v)
    for i in range(40):
        w.json_invocation('InvokeOutboundCallHandler', 'IOCH', env, v, s, now - 600_000 + i * 10_000, i == 0)
print(f"    wrote {sum(w.expected.values())} timing events' worth of log lines")
PYEOF

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/config.toml" <<TOML
[aws]
region = "us-east-1"
endpoint_url = "$MOTO"
[storage]
path = "$WORK/sentinel.db"
[http]
listen = "127.0.0.1:$PORT"
[logs]
log_group_prefixes = ["/aws/lambda/"]
poll_interval = "2s"
discovery_interval = "5s"
ingestion_delay = "30s"
start_lookback = "1h"
[xray]
enabled = false
TOML
"$BIN" check-config --config "$WORK/config.toml"

echo "==> Starting latency-sentinel"
"$BIN" run --config "$WORK/config.toml" 2>"$WORK/daemon.log" &
PIDS+=($!)
for _ in $(seq 1 300); do
  n=$(curl -sf "http://127.0.0.1:$PORT/api/v1/status" 2>/dev/null | "$PY" -c 'import sys,json; print(json.load(sys.stdin)["events_stored"])' 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 400 ] && break
  sleep 0.5
done
echo "    events stored: $n"
echo
echo "==> latency-sentinel report top --since 1h  (slowest first; exact percentiles)"
"$BIN" report top --db "$WORK/sentinel.db" --since 1h
echo
echo "    Read the BedrockCallDuration rows: Dev against PROD, same function, same operation."
echo
echo "==> The daemon is running:"
echo "    metrics  http://127.0.0.1:$PORT/metrics"
echo "    ready    http://127.0.0.1:$PORT/readyz"
echo "    API      http://127.0.0.1:$PORT/api/v1/status"
echo "    log      $WORK/daemon.log"
if [ -t 0 ] && [ -z "${CI:-}" ]; then
  echo "==> Ctrl-C to stop."
  wait
fi
