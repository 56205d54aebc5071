#!/usr/bin/env bash
# The demo: moto's server (the AWS emulator) + the seed's Atlas Engine traffic from
# `latency-sentinel simulate` (PROD and Dev aliases, logs and X-Ray traces, with Dev's
# Bedrock call slowed to ~9 s for the last few minutes) + the daemon watching it. Ends with
# the alert, the bottleneck and the Dev/PROD comparison on screen. Ctrl-C stops everything
# it started.
#
# SENTINEL_DEMO_POSTGRES=1 runs it on a shared PostgreSQL history instead of the SQLite file:
# a throwaway cluster, and two daemons splitting the work by leases.
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
PGDIR=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$PGDIR" ]; then bash "$ROOT/scripts/test-env.sh" postgres-stop "$PGDIR"; rm -rf "$PGDIR"; fi
  echo "==> Stopped everything the demo started. (Its files are in $WORK)"
}
trap cleanup EXIT INT TERM

export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

echo "==> Starting the AWS emulator (moto) on 127.0.0.1"
"$PY" scripts/moto_server.py --host 127.0.0.1 --port 0 --port-file "$WORK/moto.port" 2>"$WORK/moto.log" &
PIDS+=($!)
for _ in $(seq 1 150); do [ -s "$WORK/moto.port" ] && break; sleep 0.2; done
[ -s "$WORK/moto.port" ] || { echo "moto did not start; see $WORK/moto.log" >&2; exit 1; }
MOTO="http://127.0.0.1:$(cat "$WORK/moto.port")"

echo "==> Simulating 10 minutes of Atlas Engine traffic: PROD normal, Dev's Bedrock call at ~9 s for the last 4 minutes"
"$BIN" simulate --endpoint-url "$MOTO" --region us-east-1 --duration 10m --rate 12/m --seed 7 \
  --slow 'GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s,from=-4m' >"$WORK/simulate.json" 2>"$WORK/simulate.log" \
  || { cat "$WORK/simulate.log" >&2; exit 1; }
"$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print("    wrote %d workflow executions: %d log events, %d trace documents" % (s["traces"], s["log_events"], s["trace_documents"]))' "$WORK/simulate.json"

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# config/demo.toml, on this run's ports and in its folder.
sed -e "s|http://127.0.0.1:5000|$MOTO|" \
    -e "s|^path = \".*\"|path = \"$WORK/sentinel.db\"|" \
    -e "s|^listen = \".*\"|listen = \"127.0.0.1:$PORT\"|" \
    config/demo.toml > "$WORK/config.toml"

if [ "${SENTINEL_DEMO_POSTGRES:-}" = 1 ]; then
  # Beside $WORK, not in it: the cluster may run as nobody, who cannot enter $WORK.
  PGDIR=$(mktemp -d -t latency-sentinel-pg.XXXXXX)
  echo "==> Starting a throwaway PostgreSQL cluster in $PGDIR"
  PG_URL=$(bash scripts/test-env.sh postgres "$PGDIR" | sed -n 's/^PG_URL=//p')
  sed -i -e "s|^\[storage\]|[storage]\nurl = \"$PG_URL\"|" "$WORK/config.toml"
  printf '\n[cluster]\nnode_id = "demo-a"\nlease_ttl = "10s"\n' >>"$WORK/config.toml"
  PORT_B=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  sed -e "s|^listen = \".*\"|listen = \"127.0.0.1:$PORT_B\"|" -e 's|^node_id = "demo-a"|node_id = "demo-b"|' \
    "$WORK/config.toml" >"$WORK/config-b.toml"
fi
"$BIN" check-config --config "$WORK/config.toml"

echo "==> Starting latency-sentinel"
"$BIN" run --config "$WORK/config.toml" 2>"$WORK/daemon.log" &
PIDS+=($!)
if [ -n "$PGDIR" ]; then
  echo "==> Starting a second latency-sentinel on the same PostgreSQL history"
  "$BIN" run --config "$WORK/config-b.toml" 2>"$WORK/daemon-b.log" &
  PIDS+=($!)
fi
API="http://127.0.0.1:$PORT/api/v1"
echo "==> Waiting for the daemon to read the logs and traces and judge the budgets"
firing=""
for _ in $(seq 1 240); do
  firing=$(curl -sf "$API/alerts" 2>/dev/null | "$PY" -c '
import sys, json
a = [x for x in json.load(sys.stdin)["active"] if x["state"] == "firing"]
for x in a:
    print("    FIRING  %s  %s / %s in %s: p%d = %.2fs over a %.2fs budget (%d samples)" % (
        "LatencyBudgetExceeded", x["function"], x["operation"], x["env"], round(x["quantile"] * 100),
        x["observed_s"], x["budget_s"], x["samples"]))
' 2>/dev/null || true)
  [ -n "$firing" ] && break
  sleep 0.5
done
echo
echo "==> Alerts"
if [ -n "$firing" ]; then echo "$firing"; else echo "    (no alert fired; see $WORK/daemon.log)"; fi
echo
echo "==> latency-sentinel report bottleneck --since 1h"
"$BIN" report bottleneck --config "$WORK/config.toml" --since 1h || true
echo
echo "==> latency-sentinel report compare --baseline PROD --candidate Dev --since 1h"
"$BIN" report compare --config "$WORK/config.toml" --baseline PROD --candidate Dev --since 1h || true
if [ -n "$PGDIR" ]; then
  echo
  echo "==> The fleet (GET /readyz, .cluster)"
  curl -s "http://127.0.0.1:$PORT/readyz" | "$PY" -c '
import sys, json
c = json.load(sys.stdin).get("cluster", {})
for n in c.get("nodes", []):
    print("    node %-8s live=%s leases=%d" % (n["node"], n["live"], n["leases"]))
print("    evaluator held by %s" % c.get("evaluator"))
' || true
fi
echo
echo "==> The daemon is running:"
echo "    console  http://127.0.0.1:$PORT/"
echo "    metrics  http://127.0.0.1:$PORT/metrics"
echo "    ready    http://127.0.0.1:$PORT/readyz"
echo "    API      $API/operations?since=1h   $API/alerts   $API/budgets"
echo "    log      $WORK/daemon.log"
if [ -n "$PGDIR" ]; then
  echo "    second   http://127.0.0.1:$PORT_B/readyz   (log $WORK/daemon-b.log)"
  echo "    history  $PG_URL"
fi
if [ -t 0 ] && [ -z "${CI:-}" ]; then
  echo "==> Ctrl-C to stop."
  wait
fi
