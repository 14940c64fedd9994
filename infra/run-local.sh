#!/usr/bin/env bash
#
# infra/run-local.sh — the whole ticketing service on this machine.
#
# Installs what it needs (moto into .local/, DynamoDB Local from npm), starts the emulators,
# creates the resources declared in template.yaml, serves the template's HTTP routes on
# http://127.0.0.1:${PORT:-3000} with the same handler code the Lambdas run, and seeds a demo
# concert (SEED_DEMO=1). Ctrl-C stops everything it started.
#
# Settings (environment, defaults in brackets): PORT [3000], HOLD_TTL_SECONDS [300],
# QUEUE_ACTIVE_TTL_SECONDS [600], QUEUE_MAX_ACTIVE [100], QUEUE_ADMIT_PER_SECOND [0: no pace],
# QUEUE_ENTRY_SHARDS [1],
# QUEUE_ENTRY_GRACE_MILLIS [5000], ADMIT_INTERVAL_SECONDS [1],
# ADMIN_USERNAMES [admin], SEED_DEMO [1], JWT_SECRET [a random key per run].

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v cargo >/dev/null 2>&1; then
    echo "run-local: cargo is missing; install Rust with rustup (https://rustup.rs) and retry." >&2
    exit 1
fi

echo "[run-local] building the local stack (first build takes a few minutes)"
cargo build --quiet -p local-stack

state="$root/.local/run"
trap 'infra/emulators.sh stop "$state"' EXIT
infra/emulators.sh start "$state"
# shellcheck disable=SC1091
source "$state/env"

export PORT="${PORT:-3000}"
export ADMIT_INTERVAL_SECONDS="${ADMIT_INTERVAL_SECONDS:-1}"
export SEED_DEMO="${SEED_DEMO:-1}"
if [[ -z ${JWT_SECRET:-} ]]; then
    # A fresh signing key each run: tokens from an earlier run stop working, as they should
    # when the in-memory database they refer to is gone.
    JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
    export JWT_SECRET
fi

"$root/target/debug/local-stack"
