#!/usr/bin/env bash
# The whole test suite: installs the test servers once (moto's server, Prometheus,
# Alertmanager; cached), then runs every unit, property and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-env.sh install
export AWS_EC2_METADATA_DISABLED=true
# Integration tests each start their own servers on free loopback ports; two at a time
# suits a 2-core machine.
cargo test --locked -- --test-threads=2 "$@"
