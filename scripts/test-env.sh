#!/usr/bin/env bash
# Test environment for latency-sentinel: the Python side (moto, the AWS emulator,
# with scripts/moto_server.py's adapter), Prometheus/Alertmanager, systemd-analyze and
# PostgreSQL's server binaries (each test run starts its own throwaway cluster).
#
#   scripts/test-env.sh install        create the venv and install what is missing (idempotent;
#                                      a second run with everything present is fast and offline)
#   scripts/test-env.sh python         print the venv's python path
#   scripts/test-env.sh moto [ARGS..]  start scripts/moto_server.py on a free port in the
#                                      background; prints MOTO_PORT=, MOTO_PID=, MOTO_ENDPOINT=
#                                      (ARGS go to moto_server.py, e.g. --verbose)
#   scripts/test-env.sh check          run scripts/check_moto_adapter.py (the adapter's self-test)
#   scripts/test-env.sh pg-bindir      print the directory of PostgreSQL's initdb, pg_ctl, postgres
#   scripts/test-env.sh postgres DIR   start a throwaway PostgreSQL cluster in DIR (new, empty) on a
#                                      free loopback port (as nobody when root); prints PG_URL=
#   scripts/test-env.sh postgres-stop DIR   stop that cluster
#
# Environment:
#   SENTINEL_CACHE   cache dir (default ~/.cache/latency-sentinel); the venv is $SENTINEL_CACHE/venv
#   PYTHON           interpreter used to create the venv (default python3)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="${SENTINEL_CACHE:-$HOME/.cache/latency-sentinel}"
VENV="$CACHE_DIR/venv"
VENV_PY="$VENV/bin/python"
MOTO_SPEC='moto[server]>=5.1,<6'
PY_PACKAGES=("$MOTO_SPEC" boto3 cbor2 aws-xray-sdk)
# Debian packages and a command each must provide: promtool and amtool check the deploy/
# files, prometheus and alertmanager run in the alerting and dashboard tests, and
# systemd-analyze verifies the unit, chromium loads the console's pages. A missing one fails
# its test; none is skipped.
APT_TOOLS=(prometheus:promtool prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager prometheus-alertmanager:amtool systemd:systemd-analyze chromium:chromium)

log() { printf 'test-env: %s\n' "$*" >&2; }
die() { printf 'test-env: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

# Succeeds when the venv has every module the harness imports, at moto 5.1+ (<6).
venv_ready() {
  [ -x "$VENV_PY" ] || return 1
  "$VENV_PY" - <<'EOF' >/dev/null 2>&1
import importlib.metadata as md
import boto3, cbor2, aws_xray_sdk, flask, flask_cors, werkzeug  # noqa: F401
from moto.server import DomainDispatcherApplication, create_backend_app  # noqa: F401
major, minor = (int(x) for x in md.version("moto").split(".")[:2])
assert major == 5 and minor >= 1
EOF
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root for: $* (not root, and sudo is not installed)"
  fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
}

install_python() {
  if venv_ready; then
    log "python venv ready: $VENV ($("$VENV_PY" -c 'import importlib.metadata as m; print("moto", m.version("moto"))'))"
    return 0
  fi
  local base_py="${PYTHON:-python3}"
  command -v "$base_py" >/dev/null 2>&1 || die "$base_py not found (set PYTHON=/path/to/python3)"
  if [ ! -x "$VENV_PY" ]; then
    mkdir -p "$CACHE_DIR"
    log "creating venv $VENV with $base_py"
    if ! "$base_py" -m venv "$VENV" >&2; then
      # Debian's python3 lacks ensurepip until python3-venv is installed.
      rm -rf "$VENV"
      apt_install python3-venv
      "$base_py" -m venv "$VENV" >&2 || die "could not create the venv at $VENV"
    fi
  fi
  log "pip install ${PY_PACKAGES[*]}"
  "$VENV_PY" -m pip install --disable-pip-version-check -q --upgrade pip >&2 || log "pip self-upgrade failed; going on"
  "$VENV_PY" -m pip install --disable-pip-version-check -q "${PY_PACKAGES[@]}" >&2 \
    || die "pip install failed (the package index must be reachable for a first install)"
  venv_ready || die "the venv at $VENV still lacks a module after pip install"
  log "python venv ready: $VENV"
}

install_tools() {
  local missing=() entry pkg tool
  for entry in "${APT_TOOLS[@]}"; do
    pkg="${entry%%:*}"
    tool="${entry#*:}"
    command -v "$tool" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    # shellcheck disable=SC2046
    apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
  fi
  for entry in "${APT_TOOLS[@]}"; do
    tool="${entry#*:}"
    command -v "$tool" >/dev/null 2>&1 || die "$tool still missing after apt-get install ${entry%%:*}"
  done
  log "tools present: $(for e in "${APT_TOOLS[@]}"; do printf '%s ' "${e#*:}"; done)"
}

# PostgreSQL's server binaries live in /usr/lib/postgresql/<major>/bin on Debian, off the PATH.
pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { printf '%s\n' "$d"; return 0; }
  done
  return 1
}

install_postgres() {
  pg_bindir >/dev/null || apt_install postgresql
  pg_bindir >/dev/null || die "initdb still missing after apt-get install postgresql"
  log "postgresql binaries: $(pg_bindir)"
}

cmd_install() {
  install_python
  install_tools
  install_postgres
  log "done"
}

cmd_pg_bindir() {
  pg_bindir || die "PostgreSQL's server binaries are not installed: run '$0 install' first"
}

# PostgreSQL refuses to run as root: then the cluster's directory belongs to nobody and its
# commands run through runuser (DIR's parents must be traversable, as /tmp's are).
pg_as() {
  if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi
}

cmd_postgres() {
  local dir="${1:?usage: test-env.sh postgres DIR}" bindir port
  bindir="$(cmd_pg_bindir)"
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown -R nobody "$dir"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  (cd "$dir" && pg_as "$bindir/initdb" -D "$dir/data" -U sentinel -A trust -E UTF8 --no-sync --no-instructions) >"$dir/initdb.log" 2>&1 \
    || die "initdb failed (log: $dir/initdb.log)"
  (cd "$dir" && pg_as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -w -t 60 start) >/dev/null \
    || die "PostgreSQL did not start (log: $dir/server.log)"
  (cd "$dir" && pg_as "$bindir/createdb" -h 127.0.0.1 -p "$port" -U sentinel sentinel) || die "createdb failed"
  printf 'PG_URL=postgres://sentinel@127.0.0.1:%s/sentinel\n' "$port"
}

cmd_postgres_stop() {
  local dir="${1:?usage: test-env.sh postgres-stop DIR}"
  (cd "$dir" && pg_as "$(cmd_pg_bindir)/pg_ctl" -D "$dir/data" -m fast -w stop) >/dev/null 2>&1 || true
}

cmd_python() {
  [ -x "$VENV_PY" ] || die "no venv at $VENV: run '$0 install' first"
  printf '%s\n' "$VENV_PY"
}

cmd_moto() {
  venv_ready || die "the venv at $VENV is missing or incomplete: run '$0 install' first"
  local run_dir port_file log_file pid port=""
  run_dir="$(mktemp -d "${TMPDIR:-/tmp}/sentinel-moto.XXXXXX")"
  port_file="$run_dir/port"
  log_file="$run_dir/moto.log"
  # setsid + nohup: the server outlives this script and its terminal.
  setsid nohup "$VENV_PY" "$SCRIPT_DIR/moto_server.py" --host 127.0.0.1 --port 0 \
    --port-file "$port_file" "$@" >"$log_file" 2>&1 </dev/null &
  pid=$!
  for _ in $(seq 1 300); do
    if [ -s "$port_file" ]; then
      port="$(tr -d '[:space:]' <"$port_file")"
      [ -n "$port" ] && break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log_file" >&2 || true
      die "moto_server.py exited before listening (log: $log_file)"
    fi
    sleep 0.1
  done
  [ -n "$port" ] || { kill "$pid" 2>/dev/null || true; die "moto_server.py did not report a port within 30s (log: $log_file)"; }
  log "moto running; log: $log_file; stop it with: kill $pid"
  printf 'MOTO_PORT=%s\nMOTO_PID=%s\nMOTO_ENDPOINT=http://127.0.0.1:%s\n' "$port" "$pid" "$port"
}

cmd_check() {
  venv_ready || die "the venv at $VENV is missing or incomplete: run '$0 install' first"
  exec "$VENV_PY" "$SCRIPT_DIR/check_moto_adapter.py" "$@"
}

[ $# -ge 1 ] || usage
sub="$1"
shift
case "$sub" in
  install) cmd_install "$@" ;;
  python) cmd_python "$@" ;;
  moto) cmd_moto "$@" ;;
  check) cmd_check "$@" ;;
  pg-bindir) cmd_pg_bindir "$@" ;;
  postgres) cmd_postgres "$@" ;;
  postgres-stop) cmd_postgres_stop "$@" ;;
  -h|--help|help) usage 0 ;;
  *) log "unknown subcommand: $sub"; usage ;;
esac
