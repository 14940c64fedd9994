#!/usr/bin/env bash
# Prepares a fresh user with balance and an ACTIVE queue token for the demo concert on the
# local stack at $1, and prints `export` lines for schemathesis-booking.toml.
set -euo pipefail
B=${1:-http://127.0.0.1:3000}
j() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }
U="st_$(python3 -c 'import uuid; print(uuid.uuid4().hex[:10])')"
curl -sf -X POST "$B/users" -d "{\"username\":\"$U\",\"password\":\"password123\",\"name\":\"Schemathesis\"}" >/dev/null
T=$(curl -sf -X POST "$B/auth/login" -d "{\"username\":\"$U\",\"password\":\"password123\"}" | j '["access_token"]')
curl -sf -X POST "$B/balance/charge" -H "Authorization: Bearer $T" -d '{"amount":1000000}' >/dev/null
C=$(python3 - "$B" <<'PY'
import json, sys, urllib.request
base, cursor = sys.argv[1], None
while True:
    url = base + "/concerts?limit=100" + (f"&cursor={cursor}" if cursor else "")
    page = json.load(urllib.request.urlopen(url))
    for c in page["items"]:
        if c["title"] == "Demo Night: Seoul Live" and c["status"] == "BOOKING_OPEN":
            found = c["concert_id"]
    cursor = page["next_cursor"]
    if not cursor:
        break
print(found)  # the oldest match: the seeded demo concert
PY
)
Q=$(curl -sf -X POST "$B/queue/tokens" -H "Authorization: Bearer $T" -d "{\"concert_id\":\"$C\"}" | j '["queue_token"]')
for _ in $(seq 60); do
  S=$(curl -sf "$B/queue/tokens/current" -H "Authorization: Bearer $T" -H "X-Queue-Token: $Q" | j '["status"]')
  [[ $S == ACTIVE ]] && break
  sleep 0.5
done
[[ $S == ACTIVE ]] || { echo "not admitted" >&2; exit 1; }
SCH=$(curl -sf "$B/concerts/$C/schedules" -H "Authorization: Bearer $T" -H "X-Queue-Token: $Q" | j '["items"][0]["schedule_id"]')
echo "export ST_TOKEN=$T ST_QUEUE_TOKEN=$Q ST_CONCERT_ID=$C ST_SCHEDULE_ID=$SCH"
