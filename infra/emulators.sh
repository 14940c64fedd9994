#!/usr/bin/env bash
#
# infra/emulators.sh — start/stop the local AWS emulators used by the tests.
#
#   infra/emulators.sh start STATE_DIR   # install if needed, start, wait until both answer
#   infra/emulators.sh stop  STATE_DIR   # stop both; never fails, also when already stopped
#
# Two servers, both on the loopback address:
#   * DynamoDB: AWS's DynamoDB Local (Java, in memory)
#   * SQS, EventBridge, Secrets Manager: moto, single-threaded (infra/moto_server.py)
#
# STATE_DIR (created if missing) receives:
#   dynamodb.log, dynamodb.pid, moto.log, moto.pid
#   env — `export` lines pointing the AWS SDKs at the emulators; use it as
#         `source STATE_DIR/env`. Region and credentials are always the dummy
#         us-east-1 / test / test: the emulators accept anything, and real ones
#         must never be sent there.
#
# Ports are free loopback ports picked at start, unless DYNAMODB_PORT and/or
# MOTO_PORT are set. Extra JVM options for DynamoDB Local: DYNAMODB_JAVA_OPTS.
# Readiness timeout: EMULATORS_READY_TIMEOUT seconds (default 60).
#
# Typical caller:
#   dir=$(mktemp -d)
#   trap 'infra/emulators.sh stop "$dir"' EXIT
#   infra/emulators.sh start "$dir"
#   source "$dir/env"
#
# Both servers run in their own session (setsid), so a Ctrl-C in the terminal
# does not reach them: the caller's EXIT trap (or `stop`) ends them. A failed or
# interrupted `start` stops whatever it had started before exiting. A `start` on a
# STATE_DIR whose emulators are still running stops those first.

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
READY_TIMEOUT="${EMULATORS_READY_TIMEOUT:-60}"
HOST=127.0.0.1

say() { echo "[emulators] $*" >&2; }
die() {
    echo "[emulators] ERROR: $*" >&2
    exit 1
}

usage() {
    sed -n '3,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# --- process helpers ------------------------------------------------------------

# What each server's command line must contain; checked before signalling a pid read
# from a pid file, so that a recycled pid of some unrelated process is never killed.
declare -A MARKER=([dynamodb]="DynamoDBLocal.jar" [moto]="moto_server.py")

# is_running PID NAME: the process exists, is not a zombie, and is ours.
is_running() {
    local pid=$1 name=$2
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/stat ]]; then
        # Field 3 after the ")" of "(comm)" is the state; Z = exited, not yet reaped
        # (the parent of a detached server may be an init that is slow to reap).
        local stat state cmdline
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
        state="${stat##*) }"
        [[ ${state:0:1} != Z ]] || return 1
        cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
        [[ $cmdline == *"${MARKER[$name]}"* ]] || return 1
    fi
    return 0
}

# read_pid STATE_DIR NAME: the pid recorded for NAME, or nothing.
read_pid() {
    local f="$1/$2.pid"
    if [[ -f $f ]]; then tr -dc '0-9' <"$f" || true; fi
}

# stop_one STATE_DIR NAME: SIGTERM the server's process group, wait, SIGKILL if needed.
stop_one() {
    local dir=$1 name=$2 pid i
    pid="$(read_pid "$dir" "$name")"
    if [[ -n $pid ]] && is_running "$pid" "$name"; then
        # The server leads its own process group (setsid): signal the whole group.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do # up to 10 s
            is_running "$pid" "$name" || break
            sleep 0.1
        done
        if is_running "$pid" "$name"; then
            say "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                is_running "$pid" "$name" || break
                sleep 0.1
            done
        fi
        if is_running "$pid" "$name"; then
            say "WARNING: $name (pid $pid) is still running"
            return 0
        fi
        say "stopped $name (pid $pid)"
    fi
    rm -f "$dir/$name.pid"
}

# spawn STATE_DIR NAME WORKDIR CMD...: start CMD in the background in a new session,
# stdout+stderr to NAME.log. The child writes its own pid (which is also its process
# group id) before exec'ing CMD, so the pid file is right however setsid forks.
spawn() {
    local dir=$1 name=$2 workdir=$3 i
    shift 3
    rm -f "$dir/$name.pid"
    (
        cd "$workdir"
        # shellcheck disable=SC2016 # $$, $0 and $@ are for the inner sh
        exec setsid sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' \
            "$dir/$name.pid" "$@"
    ) </dev/null >"$dir/$name.log" 2>&1 &
    for ((i = 0; i < 100; i++)); do # the pid file appears within milliseconds
        [[ -s $dir/$name.pid ]] && return 0
        sleep 0.05
    done
    die "$name did not start; log $dir/$name.log:
$(tail -n 20 "$dir/$name.log" 2>/dev/null)"
}

# answers_http PORT: something on HOST:PORT answers an HTTP request (any status).
# Pure bash (/dev/tcp), so it costs no process start per poll.
answers_http() {
    local port=$1 line=""
    (
        exec 3<>"/dev/tcp/$HOST/$port" || exit 1
        printf 'GET / HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$HOST" "$port" >&3
        IFS= read -r -t 5 line <&3 || exit 1
        [[ $line == HTTP/* ]]
    ) 2>/dev/null
}

# port_in_use PORT: a TCP connect to HOST:PORT succeeds.
port_in_use() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# wait_ready STATE_DIR NAME PORT: until the server answers; fails if it dies or times out.
wait_ready() {
    local dir=$1 name=$2 port=$3 pid deadline
    pid="$(read_pid "$dir" "$name")"
    deadline=$((SECONDS + READY_TIMEOUT))
    until answers_http "$port"; do
        if ! is_running "$pid" "$name"; then
            die "$name exited during startup; last lines of $dir/$name.log:
$(tail -n 30 "$dir/$name.log")"
        fi
        if ((SECONDS >= deadline)); then
            die "$name did not answer on port $port within ${READY_TIMEOUT}s; last lines of $dir/$name.log:
$(tail -n 30 "$dir/$name.log")"
        fi
        sleep 0.2
    done
}

# free_ports N: N distinct free TCP ports on HOST, one a line (the kernel picks them).
free_ports() {
    python3 - "$1" "$HOST" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind((sys.argv[2], 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
}

# --- commands --------------------------------------------------------------------

cmd_stop() {
    local dir=$1
    [[ -d $dir ]] || return 0
    stop_one "$dir" moto
    stop_one "$dir" dynamodb
    rm -f "$dir/env"
}

# on_start_exit: EXIT trap of `start`; on failure or interruption, stop what was started.
on_start_exit() {
    local rc=$?
    trap - EXIT
    if ((rc != 0)); then cmd_stop "$START_DIR" || true; fi
    exit "$rc"
}

cmd_start() {
    local dir=$1

    START_DIR=$dir
    trap on_start_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    # Leftovers of an earlier run in the same STATE_DIR (e.g. its caller was killed).
    local name pid
    for name in dynamodb moto; do
        pid="$(read_pid "$dir" "$name")"
        if [[ -n $pid ]] && is_running "$pid" "$name"; then
            say "$name from an earlier run is still running in $dir; stopping it"
        fi
    done
    cmd_stop "$dir"

    # shellcheck source=infra/tools.sh
    source "$HERE/tools.sh"
    ensure_dynamodb_local
    ensure_moto

    local ddb_port="${DYNAMODB_PORT:-}" moto_port="${MOTO_PORT:-}" picked
    if [[ -z $ddb_port || -z $moto_port ]]; then
        picked="$(free_ports 2)"
        [[ -n $ddb_port ]] || ddb_port="$(sed -n 1p <<<"$picked")"
        [[ -n $moto_port ]] || moto_port="$(sed -n 2p <<<"$picked")"
    fi
    local port
    for port in "$ddb_port" "$moto_port"; do
        if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
            die "invalid port: $port"
        fi
        if port_in_use "$port"; then
            die "port $port on $HOST is already in use"
        fi
    done
    [[ $ddb_port != "$moto_port" ]] || die "DYNAMODB_PORT and MOTO_PORT are both $ddb_port"

    # DynamoDB Local flags:
    #   -inMemory          nothing on disk; every start is empty
    #   -sharedDb          one database whatever the credentials/region of a request
    #                      (without it, each access key + region sees its own tables)
    #   -disableTelemetry  it would otherwise try to send usage data to AWS
    # It has no option to choose the bind address: it listens on all interfaces.
    # shellcheck disable=SC2086 # DYNAMODB_JAVA_OPTS is a list of options
    spawn "$dir" dynamodb "$dir" \
        java ${DYNAMODB_JAVA_OPTS:-} \
        "-Djava.library.path=$DYNAMODB_LOCAL_LIB" -jar "$DYNAMODB_LOCAL_JAR" \
        -inMemory -sharedDb -disableTelemetry -port "$ddb_port"

    spawn "$dir" moto "$dir" \
        "$MOTO_VENV/bin/python" "$HERE/moto_server.py" --host "$HOST" --port "$moto_port"

    wait_ready "$dir" dynamodb "$ddb_port"
    wait_ready "$dir" moto "$moto_port"

    # Written last and atomically: its presence means both servers answered.
    cat >"$dir/env.tmp" <<EOF
# Written by infra/emulators.sh start; \`source\` it to point AWS SDKs at the local emulators.
export AWS_ENDPOINT_URL_DYNAMODB=http://$HOST:$ddb_port
export AWS_ENDPOINT_URL=http://$HOST:$moto_port
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
EOF
    mv "$dir/env.tmp" "$dir/env"

    echo "DynamoDB Local: http://$HOST:$ddb_port (pid $(read_pid "$dir" dynamodb), log $dir/dynamodb.log)"
    echo "moto:           http://$HOST:$moto_port (pid $(read_pid "$dir" moto), log $dir/moto.log)"
    echo "environment:    source $dir/env"
}

# --- main --------------------------------------------------------------------------

(($# == 2)) || usage
action=$1
state_dir=$2
[[ -n $state_dir ]] || usage

case $action in
start)
    mkdir -p "$state_dir"
    state_dir="$(cd "$state_dir" && pwd)"
    cmd_start "$state_dir"
    ;;
stop)
    # Never fails: a missing STATE_DIR or dead servers are fine.
    if [[ -d $state_dir ]]; then
        state_dir="$(cd "$state_dir" && pwd)"
        cmd_stop "$state_dir" || true
    fi
    ;;
*) usage ;;
esac
