#!/usr/bin/env bash
#
# infra/test.sh — every test: unit tests, adapter tests against the emulators, end-to-end
# tests through HTTP, the crash tests, the browser test, the OpenAPI document checked against
# the running service (infra/api-check.sh), and a short on-sale under faults (infra/perf.sh
# chaos, failing on any broken invariant). Installs what it needs, starts its own emulators on
# free loopback ports, and stops them when the tests end, pass or fail. Extra arguments go to
# `cargo test` (and skip the OpenAPI check and the chaos run).

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v cargo >/dev/null 2>&1; then
    echo "test: cargo is missing; install Rust with rustup (https://rustup.rs) and retry." >&2
    exit 1
fi

# Compile first, so the emulators are not kept waiting through a cold build.
cargo test --workspace --no-run --quiet

# The browser test drives Debian's chromium through chromedriver.
# shellcheck source=infra/tools.sh
source infra/tools.sh
ensure_browser

state="$(mktemp -d "${TMPDIR:-/tmp}/ticketing-test.XXXXXX")"
trap 'infra/emulators.sh stop "$state"; rm -rf "$state"' EXIT
infra/emulators.sh start "$state"
# shellcheck disable=SC1091
source "$state/env"

# cargo prints one "test result" line per test binary; add them up into one closing line.
log="$state/cargo-test.log"
status=0
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "\ntests: %d passed, %d failed\n", passed, failed }' "$log"

# The OpenAPI document against the running service (schemathesis, bounded and seeded), and a
# short seeded on-sale under every kind of fault at once and with the service killed
# (docs/RELIABILITY.md), when the whole suite runs.
if [[ $# -eq 0 ]]; then
    infra/api-check.sh || status=1
    PERF_PROFILE=dev PERF_WRITE=0 infra/perf.sh chaos --fans 60 --seats 40 --runs all,kill \
        --kills 2 --seed "${CHAOS_SEED:-7}" --fault-seconds 120 --seconds 300 || status=1
fi
exit "$status"
