#!/usr/bin/env bash
#
# infra/api-check.sh — checks openapi.yaml against the running service with schemathesis
# (bounded, seeded runs): every documented operation is called with generated requests, and
# every answer must be documented and match its schema, with no 5xx.
#
# Needs the emulators' environment (as infra/test.sh has it after `source STATE/env`); starts
# its own local stack (debug build) on a free port with its own table, queue and bus.
#
#   infra/api-check.sh [MAX_EXAMPLES]   (default 25; about 40 s once built)
#
# Three runs: every operation but the import (which would fetch generated URLs from the
# network) as the admin, then the booking operations with an ACTIVE queue token and the demo
# concert's real ids (infra/api-check/prepare.sh), then every operation but the import again
# with the service's table gone, as in a store outage: the 500 INTERNAL answers that only a
# fault can bring must be in the contract's error format too, and at least one route must
# have answered 500. The settings and every disabled check, with its reason, are in
# infra/api-check/*.toml.

set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
examples="${1:-25}"

# shellcheck source=infra/tools.sh
source infra/tools.sh
ensure_schemathesis

: "${AWS_ENDPOINT_URL_DYNAMODB:?run me with the environment of the emulators, as infra/test.sh does}"
cargo build --quiet -p local-stack

work="$(mktemp -d "${TMPDIR:-/tmp}/api-check.XXXXXX")"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
table="api-check-$(python3 -c 'import uuid; print(uuid.uuid4().hex[:12])')"
(
    # The request lines (target "request") tell which routes answered 500 in the third run.
    export PORT="$port" SEED_DEMO=1 ADMIT_INTERVAL_SECONDS=1 RUST_LOG=warn,request=info
    export TABLE_NAME="$table"
    JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
    export JWT_SECRET
    exec "$root/target/debug/local-stack"
) >"$work/local-stack.log" 2>&1 &
stack=$!
trap 'kill "$stack" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 300); do
    curl -fsS "$base/health" >/dev/null 2>&1 && break
    kill -0 "$stack" 2>/dev/null || { cat "$work/local-stack.log" >&2; exit 1; }
    sleep 0.2
done

spec="$root/openapi.yaml"
conf="$root/infra/api-check"
st="$SCHEMATHESIS_VENV/bin/st"
cd "$work" # schemathesis writes .hypothesis/ and .schemathesis/ where it runs
# The admin (ADMIN_USERNAMES defaults to "admin") can call every operation.
curl -s -o /dev/null -X POST "$base/users" -d '{"username":"admin","password":"st-admin-pass","name":"Admin"}'
admin=$(curl -sf -X POST "$base/auth/login" -d '{"username":"admin","password":"st-admin-pass"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
status=0
echo "[api-check] every operation but the import, $examples examples each"
"$st" --config-file "$conf/schemathesis.toml" run "$spec" --url "$base" \
    --max-examples "$examples" --seed "${SEED:-1}" -H "Authorization: Bearer $admin" \
    --exclude-operation-id importPerformance --no-color || status=1
echo "[api-check] the booking operations, with an admitted fan"
eval "$("$conf/prepare.sh" "$base")"
printf '"%s"\n' "$ST_SCHEDULE_ID" >schedules.dict
cp "$conf/schemathesis-booking.toml" .
"$st" --config-file schemathesis-booking.toml run "$spec" --url "$base" \
    --max-examples "$examples" --seed "${SEED:-1}" \
    --include-operation-id listSchedules --include-operation-id listSeats \
    --include-operation-id createReservation --include-operation-id getReservation \
    --include-operation-id releaseReservation --include-operation-id createPayment \
    --include-operation-id getCurrentQueueToken --include-operation-id cancelReservation \
    --no-color || status=1

echo "[api-check] every operation but the import, with the table gone (a store outage)"
# Deleted behind the running service's back; DynamoDB then answers ResourceNotFound, which
# the SDK does not retry, so every call that needs the store fails at once.
"$MOTO_VENV/bin/python" - "$table" <<'PY'
import boto3, sys
boto3.client("dynamodb").delete_table(TableName=sys.argv[1])
PY
mark=$(wc -l <"$work/local-stack.log")
"$st" --config-file "$conf/schemathesis-outage.toml" run "$spec" --url "$base" \
    --max-examples 5 --seed "${SEED:-1}" -H "Authorization: Bearer $admin" \
    --exclude-operation-id importPerformance --no-color || status=1
# The routes of the request lines with status 500 (the log is coloured: colours stripped).
routes="$(tail -n +"$((mark + 1))" "$work/local-stack.log" | sed 's/\x1b\[[0-9;]*m//g' |
    sed -n 's/.* route="\([^"]*\)" status=500 .*/\1/p' | sort -u)"
if [[ -z $routes ]]; then
    echo "[api-check] FAILED: no route answered 500 with the table gone" >&2
    status=1
else
    echo "[api-check] $(wc -l <<<"$routes") routes answered 500 INTERNAL, in the contract's format, with the table gone:"
    sed 's/^/    /' <<<"$routes"
fi
exit "$status"
