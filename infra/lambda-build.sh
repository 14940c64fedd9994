#!/usr/bin/env bash
#
# infra/lambda-build.sh — build every function for AWS Lambda, as `sam build` does: one
# binary per endpoint, arm64 (the template's Architectures), with cargo-lambda and Zig.
#
#   infra/lambda-build.sh                  # release profile -> target/lambda/<function>/bootstrap
#   infra/lambda-build.sh --profile fat    # another Cargo profile -> target/lambda-fat/...
#
# Installs cargo-lambda and Zig from PyPI into .local/lambda-venv and rustup's
# aarch64-unknown-linux-gnu target on first use (infra/tools.sh ensure_cargo_lambda). Checks
# that every binary in functions/src/bin came out as an arm64 executable, then prints each
# one's size and gzipped size (about what Lambda's zip upload weighs) and the build time.
# CI runs it on every change (.ci/run); docs/PERFORMANCE.md, "Lambda builds", has the
# measurements behind the release profile.

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=infra/tools.sh
source infra/tools.sh

say() { echo "[lambda-build] $*" >&2; }

profile=release
case "${1:-}" in
"") ;;
--profile)
    profile="${2:?--profile needs a name}"
    shift 2
    ;;
*)
    echo "usage: infra/lambda-build.sh [--profile NAME]" >&2
    exit 2
    ;;
esac
[[ $# -eq 0 ]] || {
    echo "usage: infra/lambda-build.sh [--profile NAME]" >&2
    exit 2
}

ensure_cargo_lambda

target="${CARGO_TARGET_DIR:-$root/target}"
if [[ $profile == release ]]; then
    lambda_dir="$target/lambda"
    profile_args=(--release)
else
    lambda_dir="$target/lambda-$profile"
    profile_args=(--profile "$profile")
fi

say "building every function for arm64 ($profile profile) into ${lambda_dir#"$root"/}"
start=$SECONDS
# One cargo invocation for all binaries: the dependencies are compiled once and each
# endpoint is then linked on its own, as the template deploys them.
cargo lambda build "${profile_args[@]}" --arm64 --quiet -p functions --bins --lambda-dir "$lambda_dir"
took=$((SECONDS - start))

# Every binary must be there and be an aarch64 ELF executable (ELF e_machine 0xb7).
failed=0
count=0
printf '| function | bootstrap | gzipped |\n|---|---:|---:|\n'
for source in functions/src/bin/*.rs; do
    name="$(basename "$source" .rs)"
    bootstrap="$lambda_dir/$name/bootstrap"
    if [[ ! -f $bootstrap ]]; then
        say "missing: ${bootstrap#"$root"/}"
        failed=1
        continue
    fi
    magic="$(od -An -tx1 -N4 "$bootstrap" | tr -d ' ')"
    machine="$(od -An -tx1 -j18 -N2 "$bootstrap" | tr -d ' ')"
    if [[ $magic != 7f454c46 || $machine != b700 ]]; then
        say "not an arm64 executable: ${bootstrap#"$root"/}"
        failed=1
        continue
    fi
    size=$(stat -c %s "$bootstrap")
    gzipped=$(gzip -c "$bootstrap" | wc -c)
    awk -v n="$name" -v s="$size" -v g="$gzipped" \
        'BEGIN { printf "| `%s` | %.1f MB | %.1f MB |\n", n, s / 1e6, g / 1e6 }'
    count=$((count + 1))
done
[[ $failed == 0 ]] || exit 1
say "built $count functions for arm64 in ${took} s"
