#!/usr/bin/env bash
#
# infra/perf.sh — the performance instruments. Each builds what it needs (release profile),
# starts its own emulators on free loopback ports, prints its figures and writes them into its
# section of docs/PERFORMANCE.md (PERF_WRITE=0: print only).
#
#   infra/perf.sh cold-start [--runs 5] [--only a,b] [--tls off]
#                                                      init, first invocation and peak memory of
#                                                      every Lambda binary, beside a hello-world
#   infra/perf.sh calls                                AWS requests and round trips per endpoint
#   infra/perf.sh onsale [--fans 500] [--seats 200] [--dates 1] [--seconds 300]
#                        [--sqs moto|localstack] [--section onsale]
#                                                      the on-sale run: outcomes, double bookings,
#                                                      5xx, latency, money check, partition heat,
#                                                      CPU split; `--sqs localstack` serves SQS
#                                                      and EventBridge from LocalStack
#                                                      (infra/localstack.sh serve) for sizes
#                                                      past moto's (one request at a time)
#   infra/perf.sh chaos [--fans 500] [--seats 200] [--rate 0.15] [--seed 1] [--kills 3]
#                       [--fault-seconds 240] [--seconds 600]
#                       [--runs throttle,lost,latency,stall,duplicate,all,kill]
#                       (PERF_PROFILE=dev: the debug build, as the test command runs it)
#                                                      the on-sale under each kind of fault, all
#                                                      together, and with the service killed:
#                                                      every answer, position and invariant
#                                                      checked (docs/RELIABILITY.md)
#   infra/perf.sh simulate [--fans 1000000] [--first-second 60000] [--shards 256]
#                          [--admit-interval S] [--admit-per-second N]
#                          [--entry function-url|api-gateway] ...
#                                                      the whole on-sale on a virtual clock
#                                                      against a model of AWS's limits (no
#                                                      emulator); with no arguments, a million
#                                                      fans as the service admits by default
#                                                      and paced, beside 100,000; and the
#                                                      model against the on-sale run's figures
#   infra/perf.sh lambda-builds [--profiles release,fat]
#                                                      every function built for arm64 with
#                                                      cargo-lambda, each profile from scratch
#                                                      (as on a clean clone): time and sizes
#   infra/perf.sh all                                  the first three, in that order
#
# PERF_DOC=FILE writes the sections into FILE instead of docs/PERFORMANCE.md; PERF_WRITE=0
# prints only.
#
# The on-sale run serves the API with the local stack (release build) behind which a meter
# (`perf meter`) counts every AWS request on its way to the emulators. Its settings can be
# changed through the environment as for infra/run-local.sh; it defaults HOLD_TTL_SECONDS to 15
# so that abandoned holds expire while the run goes on, and QUEUE_ENTRY_SHARDS to 8 (the
# sharded queue entry is what an on-sale runs with; QUEUE_ENTRY_SHARDS=1 shows the unsharded
# heat).

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

doc="${PERF_DOC:-$root/docs/PERFORMANCE.md}"
write=()
if [[ ${PERF_WRITE:-1} != 0 ]]; then write=(--write "$doc"); fi
target="${CARGO_TARGET_DIR:-$root/target}"

say() { echo "[perf] $*" >&2; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

state=""
pids=()
localstack_pid=""
cleanup() {
    local pid
    if [[ -n $state && -f $state/stack.pid ]]; then
        touch "$state/stop-stack"
        kill "$(cat "$state/stack.pid")" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
    if [[ -n $localstack_pid ]]; then
        # infra/localstack.sh stops LocalStack on its way out.
        kill "$localstack_pid" 2>/dev/null || true
        wait "$localstack_pid" 2>/dev/null || true
        localstack_pid=""
    fi
    if [[ -n $state ]]; then
        infra/emulators.sh stop "$state"
        rm -rf "$state"
        state=""
    fi
}
trap cleanup EXIT

emulators() {
    state="$(mktemp -d "${TMPDIR:-/tmp}/ticketing-perf.XXXXXX")"
    infra/emulators.sh start "$state" >/dev/null
    # shellcheck disable=SC1091
    source "$state/env"
}

cold_start() {
    say "building every function and the hello-world floor (release profile)"
    # One invocation each, so that cargo does not unify their dependencies' features: the
    # functions are built exactly as for deployment.
    cargo build --release --quiet -p functions --bins
    cargo build --release --quiet -p hello-lambda
    cargo build --release --quiet -p perf
    emulators
    "$target/release/perf" cold-start --bin-dir "$target/release" "${write[@]}" "$@"
    cleanup
}

calls() {
    say "building the calls walk"
    cargo build --release --quiet -p perf
    emulators
    "$target/release/perf" calls "${write[@]}" "$@"
    cleanup
}

# Starts the local stack (release build) on a free port behind the meter, restarting it
# whenever it dies until "$state/stop-stack" exists; its pid is kept in "$state/stack.pid".
# Sets api_port.
start_stack() {
    api_port="$(free_port)"
    rm -f "$state/stop-stack"
    (
        export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$meter_port"
        export AWS_ENDPOINT_URL="http://127.0.0.1:$meter_port"
        export PORT="$api_port" SEED_DEMO=0 RUST_LOG="${RUST_LOG:-warn}"
        while [[ ! -f $state/stop-stack ]]; do
            "$onsale_bin/local-stack" >>"$state/local-stack.log" 2>&1 &
            echo $! >"$state/stack.pid"
            wait $! || true
        done
    ) &
    stack_loop=$!
    pids+=("$stack_loop")
    local i
    for ((i = 0; i < 300; i++)); do
        if curl -fsS "http://127.0.0.1:$api_port/health" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$stack_loop" 2>/dev/null; then
            cat "$state/local-stack.log" >&2
            say "the local stack exited"
            exit 1
        fi
        sleep 0.2
    done
    say "the local stack did not answer /health"
    exit 1
}

stop_stack() {
    touch "$state/stop-stack"
    kill "$(cat "$state/stack.pid")" 2>/dev/null || true
    wait "$stack_loop" 2>/dev/null || true
}

# LocalStack serving SQS and EventBridge (infra/localstack.sh serve), for the meter to forward
# them to instead of moto. Sets AWS_ENDPOINT_URL and sqs_pid (for the CPU split).
serve_queues_from_localstack() {
    say "starting LocalStack for SQS and EventBridge"
    LOCALSTACK_SERVICES=sqs,events infra/localstack.sh serve "$state/localstack.env" \
        >"$state/localstack-serve.log" 2>&1 &
    localstack_pid=$!
    local i
    for ((i = 0; i < 600; i++)); do
        [[ -f $state/localstack.env ]] && break
        if ! kill -0 "$localstack_pid" 2>/dev/null; then
            cat "$state/localstack-serve.log" >&2
            say "LocalStack did not start"
            exit 1
        fi
        sleep 0.5
    done
    [[ -f $state/localstack.env ]] || {
        say "LocalStack not ready after 300 s"
        exit 1
    }
    AWS_ENDPOINT_URL="$(sed -n 's/^export AWS_ENDPOINT_URL=//p' "$state/localstack.env")"
    sqs_pid="$(sed -n 's/^export LOCALSTACK_PID=//p' "$state/localstack.env")"
    sqs_name="LocalStack (SQS and EventBridge)"
    # Named in the report's first line by the load tool.
    export SQS_SERVED_BY="LocalStack $(sed -n 's/^LOCALSTACK_VERSION="\(.*\)"/\1/p' infra/localstack.sh)"
}

# The emulators, the meter in front of them, and the service's shared settings.
# `onsale_setup localstack`: SQS and EventBridge from LocalStack instead of moto.
onsale_setup() {
    local queues=${1:-moto}
    # PERF_PROFILE=dev: the debug build the test command has just made most of (for the short
    # chaos run of infra/test.sh); the figures are for the release build.
    local profile=(--release)
    onsale_bin="$target/release"
    if [[ ${PERF_PROFILE:-release} == dev ]]; then
        profile=()
        onsale_bin="$target/debug"
    fi
    say "building the local stack, the meter and the load tool (${PERF_PROFILE:-release} profile)"
    cargo build "${profile[@]}" --quiet -p local-stack
    cargo build "${profile[@]}" --quiet -p perf -p load
    emulators
    sqs_pid="$(cat "$state/moto.pid")"
    sqs_name="moto (SQS and EventBridge)"
    case $queues in
    moto) ;;
    localstack) serve_queues_from_localstack ;;
    *)
        say "--sqs takes moto or localstack, not $queues"
        exit 2
        ;;
    esac
    meter_port="$(free_port)"
    # The meter forwards DynamoDB to AWS_ENDPOINT_URL_DYNAMODB and the rest to AWS_ENDPOINT_URL.
    "$onsale_bin/perf" meter --port "$meter_port" >"$state/meter.log" 2>&1 &
    pids+=($!)
    meter_pid=$!
    # Seen by the stack and by the load tool, which names them in its report.
    export HOLD_TTL_SECONDS="${HOLD_TTL_SECONDS:-15}"
    export QUEUE_ENTRY_SHARDS="${QUEUE_ENTRY_SHARDS:-8}"
    # The emulators on two cores answer a crowd in seconds what AWS answers in milliseconds
    # (moto serves one request at a time). Time limits sized for AWS would turn that slowness
    # into timeouts, and their retries into more load: the service runs with its time limits
    # scaled up about three times.
    export FUNCTION_TIMEOUT_SECONDS="${FUNCTION_TIMEOUT_SECONDS:-30}"
    export AWS_ATTEMPT_TIMEOUT_MILLIS="${AWS_ATTEMPT_TIMEOUT_MILLIS:-10000}"
    export AWS_CALL_TIMEOUT_MILLIS="${AWS_CALL_TIMEOUT_MILLIS:-25000}"
    export QUEUE_ENTRY_GRACE_MILLIS="${QUEUE_ENTRY_GRACE_MILLIS:-15000}"
    JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
    export JWT_SECRET
}

onsale() {
    local queues=moto args=()
    while [[ $# -gt 0 ]]; do
        case $1 in
        --sqs) queues=${2:?--sqs needs moto or localstack} ;;
        *) args+=("$1" "${2:-}") ;;
        esac
        shift 2
    done
    onsale_setup "$queues"
    start_stack
    say "API on http://127.0.0.1:$api_port, meter on http://127.0.0.1:$meter_port"
    "$onsale_bin/load" --url "http://127.0.0.1:$api_port" \
        --meter "http://127.0.0.1:$meter_port" \
        --cpu "local stack (our handlers)=$(cat "$state/stack.pid"),DynamoDB Local=$(cat "$state/dynamodb.pid"),$sqs_name=$sqs_pid,meter=$meter_pid" \
        "${write[@]}" "${args[@]}"
    stop_stack
    cleanup
}

# The on-sale under faults, once per fault kind, once with all of them together and once with
# the service killed mid-run; each run on a table of its own, written to docs/RELIABILITY.md.
chaos() {
    local fans=500 seats=200 seed=1 rate=0.15 runs="throttle lost latency stall duplicate all kill" kills=3
    # Faults for the first 240 s of each on-sale, then 360 s more for the line to drain and
    # every hold to end: liveness is judged once the faults stop.
    local fault_seconds=240 seconds=600
    local extra=()
    while [[ $# -gt 0 ]]; do
        case $1 in
        --fans) fans=$2 ;;
        --seats) seats=$2 ;;
        --seed) seed=$2 ;;
        --rate) rate=$2 ;;
        --runs) runs=${2//,/ } ;;
        --kills) kills=$2 ;;
        --fault-seconds) fault_seconds=$2 ;;
        --seconds) seconds=$2 ;;
        *) extra+=("$1" "$2") ;;
        esac
        shift 2
    done
    onsale_setup
    # A stall holds a request longer than the function's timeout.
    local stall_ms=$(((FUNCTION_TIMEOUT_SECONDS + 5) * 1000))
    local reliability="$root/docs/RELIABILITY.md" run spec failed=()
    local chaos_write=()
    if [[ ${PERF_WRITE:-1} != 0 ]]; then chaos_write=(--write "$reliability"); fi
    for run in $runs; do
        local kill_flags=()
        case $run in
        # A lost answer's caller may wait as long as a stall before giving up.
        throttle | duplicate | latency) spec="$run=$rate" ;;
        lost) spec="lost=$rate,stall_ms=$stall_ms" ;;
        # A stall holds a request longer than a function's timeout: rarer, or the run is
        # mostly waiting.
        stall) spec="stall=$(python3 -c "print(round($rate / 3, 4))"),stall_ms=$stall_ms" ;;
        all) spec="throttle=$rate,lost=$rate,latency=$rate,stall=$(python3 -c "print(round($rate / 3, 4))"),duplicate=$rate,stall_ms=$stall_ms" ;;
        kill)
            spec=""
            kill_flags=(--kills "$kills" --kill-pid-file "$state/stack.pid")
            ;;
        *)
            say "unknown run $run (throttle lost latency stall duplicate all kill)"
            exit 2
            ;;
        esac
        export TABLE_NAME="chaos-$run-$RANDOM"
        start_stack
        say "run $run: ${spec:-no injected faults}${kill_flags[*]:+, $kills kills}"
        local faults=()
        if [[ -n $spec ]]; then
            faults=(--faults "$spec" --seed "$seed" --fault-seconds "$fault_seconds")
        fi
        if ! "$onsale_bin/load" --url "http://127.0.0.1:$api_port" \
            --meter "http://127.0.0.1:$meter_port" --fans "$fans" --seats "$seats" \
            --seconds "$seconds" "${faults[@]}" "${kill_flags[@]}" --section "chaos-$run" \
            "${chaos_write[@]}" \
            "${extra[@]}"; then
            failed+=("$run")
        fi
        stop_stack
    done
    cleanup
    if [[ ${#failed[@]} -gt 0 ]]; then
        say "broken under: ${failed[*]}"
        exit 1
    fi
}

# The simulated on-sale (infra/perf/src/simulate.rs): no emulator, a few seconds a run.
simulate() {
    say "building the simulation"
    cargo build --release --quiet -p perf
    if [[ $# -gt 0 ]]; then
        "$target/release/perf" simulate "${write[@]}" "$@"
        return
    fi
    "$target/release/perf" simulate --compare 100000 "${write[@]}"
    "$target/release/perf" simulate --admit-interval 1 --admit-per-second 90 --compare 100000 \
        --section simulate-paced "${write[@]}"
    # The model against the local on-sale run at that run's size (its section of the doc).
    "$target/release/perf" simulate --fans 500 --first-second 500 --shards 8 --seats 200 \
        --dates 1 --max-active 100 --admit-interval 1 --check-onsale "$doc" \
        --section simulate-check "${write[@]}"
}

lambda_builds() {
    local profiles="release,fat"
    if [[ ${1:-} == --profiles ]]; then profiles="${2:?--profiles needs a list}"; fi
    # shellcheck source=infra/tools.sh
    source infra/tools.sh # the pinned cargo-lambda and Zig versions, named in the report
    say "building the report writer"
    cargo build --release --quiet -p perf
    local report profile dir start took intro="" header="| function |" rule="|---|"
    report="$(mktemp -d "${TMPDIR:-/tmp}/ticketing-lambda-builds.XXXXXX")"
    for profile in ${profiles//,/ }; do
        # A target folder of its own, emptied first: the dependencies are compiled too, as CI
        # does on a clean clone.
        dir="$target/perf-lambda-$profile"
        rm -rf "$dir"
        say "building every function for arm64 from scratch, $profile profile"
        start=$SECONDS
        CARGO_TARGET_DIR="$dir" infra/lambda-build.sh --profile "$profile" >"$report/$profile.md"
        took=$((SECONDS - start))
        intro+="${intro:+; }\`$profile\` $((took / 60)) min $((took % 60)) s"
        header+=" $profile | gzipped |"
        rule+="---:|---:|"
        # Keep the rows only: "name<TAB>size<TAB>gzipped".
        awk -F' [|] ' '/^[|] `/ { sub(/^[|] /, ""); sub(/ [|]$/, "", $3); print $1 "\t" $2 "\t" $3 }' \
            "$report/$profile.md" >"$report/$profile.rows"
        rm -rf "$dir"
    done
    {
        echo "Every function built for arm64 by \`infra/lambda-build.sh\` (cargo-lambda $CARGO_LAMBDA_VERSION, Zig $ZIGLANG_VERSION), each profile from scratch in an empty target folder, dependencies included: $intro."
        echo
        echo "$header"
        echo "$rule"
        # One row per function, the profiles side by side (every file lists them in one order).
        local first=1 rows="" file
        for profile in ${profiles//,/ }; do
            file="$report/$profile.rows"
            if [[ $first == 1 ]]; then
                rows="$(cat "$file")"
                first=0
            else
                rows="$(paste <(echo "$rows") <(cut -f2,3 "$file"))"
            fi
        done
        echo "$rows" | awk -F'\t' '{ line = "| " $1; for (i = 2; i <= NF; i++) line = line " | " $i; print line " |" }'
    } | "$target/release/perf" section lambda-builds "${write[@]}"
    rm -rf "$report"
}

command="${1:-}"
[[ $# -gt 0 ]] && shift
case $command in
cold-start) cold_start "$@" ;;
calls) calls "$@" ;;
onsale) onsale "$@" ;;
chaos) chaos "$@" ;;
simulate) simulate "$@" ;;
lambda-builds) lambda_builds "$@" ;;
all)
    cold_start
    calls
    onsale "$@"
    ;;
*)
    sed -n '3,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
