#!/usr/bin/env bash
#
# infra/local-invoke.sh — run the built Lambda functions with `sam local invoke`, in an arm64
# provided.al2023-style container, against the local emulators.
#
#   infra/local-invoke.sh FUNCTION [EVENT]   # invoke one function, print its response
#   infra/local-invoke.sh check              # health and the admitter; fails unless both work
#   infra/local-invoke.sh list               # the template's functions and their sample events
#
# FUNCTION is a logical id of template.yaml (HealthFunction) or its binary (health). EVENT is a
# JSON file or a name in events/ (login, scheduled/admitter); by default the binary's own
# sample, events/<binary>.json or events/scheduled/<binary>.json. The response goes to
# standard output, SAM's and the function's logs to standard error. `check` invokes health
# (200 with a "status") and the admitter with its scheduled event (a whole run, about 40 s,
# with no error answer and no ERROR in its log), and exits non-zero if either fails.
#
# Each run builds what it invokes with cargo-lambda (release profile, arm64, into
# target/lambda/<binary>/ as infra/lambda-build.sh does, so what that built is reused),
# starts the emulators (infra/emulators.sh), a private Docker daemon and a forwarder, creates
# the template's resources, and stops all of them again on exit. No image is pulled: the
# runtime image SAM asks for is put together here from Debian's arm64 C library and SAM's own
# Runtime Interface Emulator (the container runs the same bootstrap as AWS, but on Debian's
# glibc, not Amazon Linux's). On an x86_64 host the arm64 code runs under qemu-user-static,
# registered with binfmt_misc.
#
# Needs root (the Docker daemon, binfmt_misc) and, when missing, installs with apt-get:
# docker.io (for dockerd), qemu-user-static; SAM CLI into .local/lint-venv; the image's
# files under .local/local-invoke/. Runs one at a time (a lock): runs share the Docker data
# and the docker0 bridge.

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
caller_dir=$PWD # an EVENT path is taken from where the script was called
cd "$root"

say() { echo "[local-invoke] $*" >&2; }
die() {
    echo "[local-invoke] ERROR: $*" >&2
    exit 1
}

usage() {
    sed -n '6,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

(($# >= 1 && $# <= 2)) || usage
case $1 in -h | --help) usage ;; esac

# shellcheck source=infra/tools.sh
source "$root/infra/tools.sh"

LI_DIR="$TOOLS_LOCAL_DIR/local-invoke" # kept between runs: the image's files, Docker's data
# Where the bootstraps go, <binary>/bootstrap: the same folder as infra/lambda-build.sh's, so
# that whatever it built is reused here (and the compiled dependencies too, in the same
# target directory).
LAMBDA_DIR="${CARGO_TARGET_DIR:-$root/target}/lambda"
TABLE_NAME=ticketing # the local stack's table; queues and bus are named after it
# The image `sam local invoke` looks for, for Runtime provided.al2023 and arm64 (samcli's
# local/docker/lambda_image.py: "<repo>:<version>-rapid-<arch>"). With --skip-pull-image and
# this name present, SAM neither pulls nor builds.
RAPID_IMAGE="public.ecr.aws/lambda/provided:al2023-rapid-arm64"
# Bumped whenever what goes into the image changes, so that the next run rebuilds it.
IMAGE_RECIPE_VERSION=1

# --- installers -------------------------------------------------------------------------------

# apt_install PACKAGE...: Debian packages, installed system-wide (apt is where dockerd and qemu
# come from; nothing else would give matching, maintained builds).
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "missing $*, and no apt-get to install them with"
    say "installing $* (apt-get)"
    _tools_locked apt sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null' \
        sh "$@" || die "apt-get install $* failed"
    hash -r
}

# ensure_arm64_emulation: arm64 executables run on this host, also inside containers. On
# x86_64: qemu-user-static, registered with binfmt_misc with the F flag (the kernel opens the
# interpreter at registration, so it works in a container's root, which has no qemu). Without
# systemd nobody mounts binfmt_misc or reads Debian's binfmt.d file, so this does both. The
# registration stays after the run, like an installed package.
ensure_arm64_emulation() {
    [[ $(uname -m) == aarch64 ]] && return 0
    local fs=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    if [[ ! -e $fs/register ]]; then
        mount -t binfmt_misc binfmt_misc "$fs" || die "cannot mount binfmt_misc on $fs"
    fi
    if [[ -e $fs/qemu-aarch64 ]]; then
        grep -qx enabled "$fs/qemu-aarch64" && grep -q '^flags:.*F' "$fs/qemu-aarch64" && return 0
        die "qemu-aarch64 is registered in $fs without the F flag (or disabled), so it would not work in containers; remove it (echo -1 > $fs/qemu-aarch64) and retry"
    fi
    [[ -f $conf ]] || apt_install qemu-user-static
    [[ -f $conf ]] || die "qemu-user-static has no $conf"
    grep -v '^#' "$conf" | head -n 1 >"$fs/register" || die "cannot register qemu-aarch64 with binfmt_misc"
}

# --- the runtime image ------------------------------------------------------------------------

# ensure_runtime_image: $RAPID_IMAGE in the private Docker daemon. It holds what
# `sam local invoke` expects of it (samcli's lambda_container.py): the emulator at
# /var/rapid/aws-lambda-rie (SAM's entrypoint, which starts /var/task/bootstrap), /var/task as
# working directory (SAM mounts the function's folder there), and for our glibc-linked
# bootstraps Debian's arm64 libc6 (they load libc, libm, libpthread, libdl and the loader) and
# libgcc-s1 (35 kB, for a build that unwinds on panic; cargo-lambda's abort). `docker import`
# of a folder needs no base image and no network. The folder's tar is kept; the image carries
# a label with the recipe's digest and is imported again only when that changes.
ensure_runtime_image() {
    local dir="$LI_DIR/image" rie digest current
    rie="$("$LINT_VENV/bin/python" -c 'import pathlib, samcli; print(pathlib.Path(samcli.__file__).parent / "local/rapid/aws-lambda-rie-arm64")')"
    [[ -f $rie ]] || die "no aws-lambda-rie-arm64 in the installed samcli ($rie)"
    digest="$( (
        echo "recipe $IMAGE_RECIPE_VERSION"
        sha256sum <"$rie"
    ) | sha256sum | cut -c1-16)"
    if ! _tools_stamp_ok "$dir/rootfs.stamp" "$digest" || [[ ! -f $dir/rootfs.tar ]]; then
        build_rootfs "$dir" "$rie"
        echo "$digest" >"$dir/rootfs.stamp"
    fi
    current="$(docker image inspect --format '{{index .Config.Labels "local-invoke.recipe"}}' "$RAPID_IMAGE" 2>/dev/null || true)"
    [[ $current == "$digest" ]] && return 0
    say "importing $RAPID_IMAGE"
    docker import \
        --change "LABEL local-invoke.recipe=$digest" \
        --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin:/var/task' \
        --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
        --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
        --change 'ENV LD_LIBRARY_PATH=/var/task:/var/task/lib:/opt/lib' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'WORKDIR /var/task' \
        --change 'ENTRYPOINT ["/var/rapid/aws-lambda-rie"]' \
        "$dir/rootfs.tar" "$RAPID_IMAGE" >/dev/null || die "docker import failed"
}

# build_rootfs DIR RIE: DIR/rootfs.tar, the image's files. The .debs come through apt-get with
# a private state (its own lists, an empty status, arm64 as the only architecture) so that the
# host's apt setup is neither needed nor changed (no dpkg --add-architecture).
build_rootfs() {
    local dir=$1 rie=$2 apt="$1/apt" rootfs="$1/rootfs" deb
    say "putting together the arm64 runtime image's files (Debian libc6, libgcc-s1; SAM's emulator)"
    rm -rf "$dir"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dir/debs" "$rootfs"
    : >"$apt/status"
    local opts=(
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "Dir::State::status=$apt/status"
        -o APT::Architecture=arm64 -o APT::Architectures::=arm64
        -o APT::Sandbox::User=root -o Acquire::Languages=none
        -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false
    )
    apt-get -qq "${opts[@]}" update || die "apt-get update (arm64 lists) failed"
    (cd "$dir/debs" && apt-get -qq "${opts[@]}" download libc6 libgcc-s1) ||
        die "apt-get download libc6 libgcc-s1 (arm64) failed"
    rm -rf "$apt" # 20 MB of package lists, needed only for the download
    for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$rootfs"; done
    rm -rf "$dir/debs"
    # Character set converters (20 MB) and docs: never loaded by a Rust binary.
    rm -rf "${rootfs:?}/usr/lib/aarch64-linux-gnu/gconv" "${rootfs:?}/usr/share"
    mkdir -p "$rootfs/var/rapid" "$rootfs/var/task" "$rootfs/var/runtime" "$rootfs/opt" \
        "$rootfs/tmp" "$rootfs/etc/ssl/certs"
    chmod 1777 "$rootfs/tmp"
    install -m 0755 "$rie" "$rootfs/var/rapid/aws-lambda-rie"
    # Roots for https calls (the page import fetches https pages; the emulators are plain http).
    if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
        cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
    fi
    tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf "$dir/rootfs.tar.tmp" .
    mv "$dir/rootfs.tar.tmp" "$dir/rootfs.tar"
    rm -rf "$rootfs"
}

# --- the private Docker daemon ----------------------------------------------------------------

# start_dockerd: dockerd with its socket, pid file and run-time state in $run (a short path:
# unix sockets are limited to 108 bytes) and its images in .local/local-invoke/docker.
#   vfs            the one storage driver that needs nothing of the file system underneath
#   --iptables=false  no firewall rules on the host; the containers need no way out, only to
#                  the host, which is on their bridge
#   default bridge SAM publishes the emulator's port 8080 to 127.0.0.1 and connects there
#                  (docker-proxy forwards it), so the container needs an address: with
#                  --bridge=none SAM answers "No response from invoke container".
# DOCKER_HOST points this script, the docker client and SAM at it; nothing system-wide is used.
start_dockerd() {
    local i
    if ! command -v dockerd >/dev/null 2>&1; then apt_install docker.io; fi
    [[ -e /sys/class/net/docker0 ]] && DOCKER0_EXISTED=1 || DOCKER0_EXISTED=0
    echo '{}' >"$run/daemon.json" # not /etc/docker/daemon.json, whatever it says
    mkdir -p "$LI_DIR/docker"
    (
        exec setsid dockerd --config-file "$run/daemon.json" \
            --data-root "$LI_DIR/docker" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
            -H "unix://$run/docker.sock" --storage-driver=vfs --iptables=false --ip-masq=false
    ) </dev/null >"$run/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    export DOCKER_HOST="unix://$run/docker.sock"
    for ((i = 0; i < 300; i++)); do # up to 60 s; about 2 s here
        docker version >/dev/null 2>&1 && break
        kill -0 "$DOCKERD_PID" 2>/dev/null ||
            die "dockerd exited; last lines of its log:
$(tail -n 20 "$run/dockerd.log")"
        sleep 0.2
    done
    docker version >/dev/null 2>&1 || die "dockerd did not answer within 60 s; log $run/dockerd.log"
    # Containers an interrupted run left behind (SAM removes its own when it ends normally).
    local stale
    stale="$(docker ps -aq --filter label=sam.cli.container.type=lambda)"
    if [[ -n $stale ]]; then
        # shellcheck disable=SC2086 # one id a word
        docker rm -f $stale >/dev/null 2>&1 || true
    fi
    # The host as the containers see it: the bridge's own address. (The network's IPAM entry
    # names no gateway the first time a data root is used, so it is read off the interface.)
    local bridge
    bridge="$(docker network inspect bridge --format '{{index .Options "com.docker.network.bridge.name"}}')"
    BRIDGE_GATEWAY="$(ip -4 -o address show dev "${bridge:-docker0}" | awk '{ sub("/.*", "", $4); print $4; exit }')"
    [[ -n $BRIDGE_GATEWAY ]] || die "the bridge ${bridge:-docker0} has no IPv4 address"
}

stop_dockerd() {
    local i
    [[ -n ${DOCKERD_PID:-} ]] || return 0
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
        kill -TERM "$DOCKERD_PID" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do # up to 15 s
            kill -0 "$DOCKERD_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then
            say "dockerd (pid $DOCKERD_PID) ignored SIGTERM; sending SIGKILL to its process group"
            kill -KILL -- "-$DOCKERD_PID" 2>/dev/null || true
        fi
    fi
    wait "$DOCKERD_PID" 2>/dev/null || true
    DOCKERD_PID=
    # dockerd leaves its bridge behind; take it away again if this run brought it.
    if [[ ${DOCKER0_EXISTED:-1} == 0 && -e /sys/class/net/docker0 ]]; then
        ip link delete docker0 2>/dev/null || true
    fi
}

# --- the emulators, seen from the containers --------------------------------------------------

# start_forwarder: moto listens on the host's loopback only (emulators.sh binds it so), which
# a container on the bridge cannot reach. infra/local-invoke/forward.py listens on the
# bridge's gateway address, the host as the containers see it, and passes each connection on
# to the loopback port. DynamoDB Local, which listens everywhere, goes through it too, so
# nothing hangs on that. Sets DDB_URL and MOTO_URL, the addresses for the containers.
start_forwarder() {
    local ddb_port=${AWS_ENDPOINT_URL_DYNAMODB##*:} moto_port=${AWS_ENDPOINT_URL##*:} i
    : >"$run/forward.ports"
    (
        exec setsid python3 "$root/infra/local-invoke/forward.py" "$BRIDGE_GATEWAY" "$ddb_port" "$moto_port"
    ) </dev/null >"$run/forward.ports" 2>"$run/forward.log" &
    FORWARDER_PID=$!
    for ((i = 0; i < 100; i++)); do
        (($(wc -l <"$run/forward.ports") == 2)) && break
        kill -0 "$FORWARDER_PID" 2>/dev/null || die "the forwarder exited: $(cat "$run/forward.log")"
        sleep 0.1
    done
    DDB_URL="http://$BRIDGE_GATEWAY:$(awk -v p="$ddb_port" '$1 == p { print $2 }' "$run/forward.ports")"
    MOTO_URL="http://$BRIDGE_GATEWAY:$(awk -v p="$moto_port" '$1 == p { print $2 }' "$run/forward.ports")"
    [[ $DDB_URL != *: && $MOTO_URL != *: ]] || die "the forwarder did not start: $(cat "$run/forward.log")"
}

stop_forwarder() {
    [[ -n ${FORWARDER_PID:-} ]] || return 0
    kill -TERM -- "-$FORWARDER_PID" 2>/dev/null || kill -TERM "$FORWARDER_PID" 2>/dev/null || true
    wait "$FORWARDER_PID" 2>/dev/null || true
    FORWARDER_PID=
}

# create_resources: the table, queues and event bus of template.yaml on the emulators, made by
# the local stack's own code (infra/local-stack reads the template; a second copy here would
# drift): it is started on a free loopback port without demo data and stopped once it
# listens, which it does only after creating them. Then the token signing secret in Secrets
# Manager, which the template has CloudFormation generate. Sets QUEUE_URL, EVENT_BUS_NAME and
# JWT_SECRET_ARN.
create_resources() {
    local pid i url
    cargo build --quiet -p local-stack
    (
        PORT=0 SEED_DEMO=0 TABLE_NAME=$TABLE_NAME RUST_LOG=warn \
            JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')" \
            exec "${CARGO_TARGET_DIR:-$root/target}/debug/local-stack"
    ) </dev/null >"$run/local-stack.log" 2>&1 &
    pid=$!
    for ((i = 0; i < 600; i++)); do # up to 60 s
        grep -qs 'listening on' "$run/local-stack.log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    grep -q 'listening on' "$run/local-stack.log" ||
        die "the local stack did not create the resources; its log:
$(tail -n 20 "$run/local-stack.log")"
    url="$("$LINT_VENV/bin/python" -c 'import boto3, sys; print(boto3.client("sqs").get_queue_url(QueueName=sys.argv[1])["QueueUrl"])' \
        "$TABLE_NAME-EntryQueue.fifo")"
    # The same queue, by the address the containers reach moto at (moto reads only the path).
    QUEUE_URL="$MOTO_URL/${url#http*://*/}"
    EVENT_BUS_NAME="$TABLE_NAME-EventBus"
    JWT_SECRET_ARN="$("$LINT_VENV/bin/python" "$root/infra/local-invoke/prepare.py" secret "$TABLE_NAME-TokenSigningSecret")"
}

# --- invoking ---------------------------------------------------------------------------------

# find_function NAME: sets LOGICAL_ID and BINARY from $run/functions (prepare.py's list).
find_function() {
    local line
    line="$(awk -v n="$1" '$1 == n || $2 == n { print; exit }' "$run/functions")"
    [[ -n $line ]] || die "no function $1 in template.yaml; infra/local-invoke.sh list shows them"
    read -r LOGICAL_ID BINARY _ <<<"$line"
}

# event_file BINARY [EVENT]: the event's path.
event_file() {
    local binary=$1 event=${2:-} candidate
    if [[ -z $event ]]; then
        for candidate in "events/$binary.json" "events/scheduled/$binary.json"; do
            [[ -f $candidate ]] && echo "$root/$candidate" && return 0
        done
        die "no sample event for $binary (events/$binary.json or events/scheduled/$binary.json); name one"
    fi
    local path=$event
    [[ $path == /* ]] || path="$caller_dir/$path"
    for candidate in "$path" "$root/events/$event" "$root/events/$event.json"; do
        [[ -f $candidate ]] && echo "$(cd "$(dirname "$candidate")" && pwd)/$(basename "$candidate")" && return 0
    done
    die "no event file $event (nor events/$event or events/$event.json)"
}

# build_functions BINARY...: release arm64 bootstraps with cargo-lambda, as `sam build` would
# make them (rust-cargolambda), but all in one cargo run: `sam build` builds each function
# apart, one after another. An up-to-date build takes a second.
build_functions() {
    local args=() binary
    for binary in "$@"; do args+=(--bin "$binary"); done
    say "building ${*} (cargo lambda build --release --arm64)"
    cargo lambda build --release --arm64 --quiet -p functions "${args[@]}" \
        --lambda-dir "$LAMBDA_DIR" || die "cargo lambda build failed"
}

# invoke LOGICAL_ID EVENT OUT: `sam local invoke`, the response into OUT; the logs (SAM's and
# the function's) into OUT.log and, as they come, to stderr.
#   --template-file  $run/template.yaml, made by prepare.py: template.yaml with each
#                    function's CodeUri at cargo-lambda's output folder, which SAM mounts at
#                    /var/task as it would a `sam build` result (nothing is copied, no
#                    .aws-sam/ written, and `sam build`, which would build the functions one
#                    at a time, is not needed)
#   --env-vars       the resources' names and the emulators' addresses (see main)
#   --skip-pull-image  no registry is reachable; the image is ensure_runtime_image's
# SAM runs through prepare.py's `sam`, whose readiness check waits (up to
# SAM_CLI_CONTAINER_CONNECTION_TIMEOUT) for the emulator in the container to listen, not only
# for docker-proxy's port (see emulator_listening there).
# SAM runs in the background and the script waits for it: bash runs a signal's trap only once
# a foreground command ends, which for the admitter would be 40 s after Ctrl-C or a kill.
#
# An invocation the function never saw is made again, up to INVOKE_ATTEMPTS in all: SAM says
# "No response from invoke container" (or that it timed out connecting to it) without the
# emulator's START line when it could not deliver the event (before that readiness check, about one run in two under load: SAM posted
# within 0.7 s of docker-proxy accepting, and the emulator under qemu took longer to listen).
# Nothing was run, so a new container is the same invocation. An invocation that started (a
# START line) is judged as it ended, never repeated.
INVOKE_ATTEMPTS=3
invoke() {
    local logical_id=$1 event=$2 out=$3 attempt rc
    for ((attempt = 1; ; attempt++)); do
        rc=0
        invoke_once "$logical_id" "$event" "$out" || rc=$?
        if [[ -s $out ]] || grep -q '^START RequestId' "$out.log" ||
            ! grep -Eq 'No response from invoke container|Timed out while attempting to establish a connection' "$out.log" ||
            ((attempt == INVOKE_ATTEMPTS)); then
            return "$rc"
        fi
        say "the event did not reach $logical_id; invoking again ($((attempt + 1)) of $INVOKE_ATTEMPTS)"
    done
}

invoke_once() {
    local logical_id=$1 event=$2 out=$3 rc=0
    say "sam local invoke $logical_id --event ${event#"$root"/}"
    : >"$out.log" # before tail looks for it
    SAM_CLI_TELEMETRY=0 SAM_CLI_CONTAINER_CONNECTION_TIMEOUT=60 \
        "$LINT_VENV/bin/python" "$root/infra/local-invoke/prepare.py" sam local invoke "$logical_id" \
        --template-file "$run/template.yaml" --event "$event" \
        --env-vars "$run/env-vars.json" --parameter-overrides AdminUsernames=admin \
        --skip-pull-image --region "$AWS_REGION" >"$out" 2>"$out.log" &
    SAM_PID=$!
    tail -n +1 -f --pid="$SAM_PID" "$out.log" >&2 &
    TAIL_PID=$!
    wait "$SAM_PID" || rc=$?
    wait "$TAIL_PID" || true # it ends once it has shown the last lines
    SAM_PID='' TAIL_PID=''
    return "$rc"
}

# --- main -------------------------------------------------------------------------------------

command=$1
event_arg=${2:-}

if [[ $command == list ]]; then
    ensure_lint_tools # SAM CLI, pinned in infra/tools.sh
    "$LINT_VENV/bin/python" "$root/infra/local-invoke/prepare.py" template \
        "$root/template.yaml" /dev/null "$LAMBDA_DIR" |
        while read -r logical_id binary kind; do
            event=""
            for candidate in "events/$binary.json" "events/scheduled/$binary.json"; do
                [[ -f $candidate ]] && event=$candidate && break
            done
            printf '%-28s %-22s %-10s %s\n' "$logical_id" "$binary" "$kind" "${event:--}"
        done
    exit 0
fi

[[ $(id -u) == 0 ]] || die "needs root: it starts its own Docker daemon and may set up binfmt_misc"
command -v cargo >/dev/null 2>&1 || die "cargo is missing; install Rust with rustup (https://rustup.rs)"

# One run at a time (see the header).
mkdir -p "$LI_DIR"
exec 8>"$LI_DIR/run.lock"
flock -n 8 || {
    say "another local-invoke run holds $LI_DIR/run.lock; waiting"
    flock 8
}

run="$(mktemp -d "${TMPDIR:-/tmp}/local-invoke.XXXXXX")"
emulators="$LI_DIR/emulators"
cleanup() {
    local rc=$?
    trap - EXIT
    # An invocation cut short: SAM first (its container goes with the Docker daemon).
    if [[ -n ${SAM_PID:-} ]]; then
        kill -TERM "$SAM_PID" 2>/dev/null || true
        wait "$SAM_PID" 2>/dev/null || true
    fi
    if [[ -n ${TAIL_PID:-} ]]; then kill -TERM "$TAIL_PID" 2>/dev/null || true; fi
    stop_forwarder || true
    stop_dockerd || true
    "$root/infra/emulators.sh" stop "$emulators" || true
    rm -rf "$run"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_lint_tools # SAM CLI, pinned in infra/tools.sh
ensure_cargo_lambda
ensure_arm64_emulation

"$LINT_VENV/bin/python" "$root/infra/local-invoke/prepare.py" template \
    "$root/template.yaml" "$run/template.yaml" "$LAMBDA_DIR" >"$run/functions"

if [[ $command == check ]]; then
    [[ -z $event_arg ]] || usage
    targets=(health admitter)
else
    targets=("$command")
fi
# Each target's logical id, binary and event, found before anything is started.
ids=() binaries=() events=()
for target in "${targets[@]}"; do
    find_function "$target"
    event="$(event_file "$BINARY" "$event_arg")"
    ids+=("$LOGICAL_ID") binaries+=("$BINARY") events+=("$event")
done
build_functions "${binaries[@]}"

"$root/infra/emulators.sh" start "$emulators" >/dev/null
# shellcheck disable=SC1091
source "$emulators/env"
start_dockerd
ensure_runtime_image
start_forwarder
create_resources

# Every function gets the same variables, as the template's Globals give them in AWS (with
# EdgeOnly at its default, off: the events come straight from SAM, not through CloudFront);
# AWS_ENDPOINT_URL* are the emulators' addresses as the containers reach them.
"$LINT_VENV/bin/python" "$root/infra/local-invoke/prepare.py" env-vars "$run/env-vars.json" \
    "TABLE_NAME=$TABLE_NAME" "QUEUE_URL=$QUEUE_URL" "EVENT_BUS_NAME=$EVENT_BUS_NAME" \
    "JWT_SECRET_ARN=$JWT_SECRET_ARN" "EDGE_SECRET_ARN=" "ADMIN_USERNAMES=admin" \
    "AWS_ENDPOINT_URL=$MOTO_URL" "AWS_ENDPOINT_URL_DYNAMODB=$DDB_URL"

if [[ $command != check ]]; then
    rc=0
    invoke "${ids[0]}" "${events[0]}" "$run/response.json" || rc=$?
    cat "$run/response.json"
    [[ -z $(tail -c 1 "$run/response.json") ]] || echo # SAM ends it without a newline
    exit "$rc"
fi

# check KIND OUT: judges a response (OUT) and its logs (OUT.log). SAM exits 0 whatever the
# function did, and prints nothing when it could not start, so: no answer, an error answer
# or any ERROR line (the function's or the emulator's) fails it. The admitter logs a failed
# admission step (an emulator it cannot reach, say) and goes on, so its answer alone would
# not tell.
check() {
    python3 - "$@" <<'EOF'
import json, sys
kind, out = sys.argv[1], sys.argv[2]
text = open(out).read().strip()
errors = [line for line in open(out + ".log") if '"level":"ERROR"' in line or "[ERROR]" in line]
try:
    response = json.loads(text) if text else None
except ValueError:
    response = None
problems = []
if not text:
    problems.append("no answer")
elif isinstance(response, dict) and ("errorType" in response or "errorMessage" in response):
    problems.append(f"it failed: {text}")
elif kind == "http":
    body = json.loads(response.get("body") or "{}") if isinstance(response, dict) else {}
    if not (isinstance(response, dict) and response.get("statusCode") == 200 and "status" in body):
        problems.append(f"expected 200 with a status, got {text or 'nothing'}")
if errors:
    problems.append(f"{len(errors)} ERROR lines in its log, the first: {errors[0].strip()}")
name = "health" if kind == "http" else "the admitter"
print(f"FAILED: {name}: " + "; ".join(problems) if problems else f"ok: {name} answered {text}")
sys.exit(1 if problems else 0)
EOF
}

failures=0
if ! invoke "${ids[0]}" "${events[0]}" "$run/health.json" ||
    ! check http "$run/health.json"; then
    failures=$((failures + 1))
fi
say "the admitter runs for about 40 s (one scheduled run's admission loop, under emulation)"
if ! invoke "${ids[1]}" "${events[1]}" "$run/admitter.json" ||
    ! check scheduled "$run/admitter.json"; then
    failures=$((failures + 1))
fi
((failures == 0)) || die "$failures of 2 checks failed"
say "both checks passed"
