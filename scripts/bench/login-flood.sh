#!/usr/bin/env bash
# Benchmark (issue "accounts"): the 99th-percentile latency of authenticated requests
# with and without 50 concurrent clients sending wrong passwords, on loopback, bounded in
# time. Alternates without/with flood, 3 pairs, and reports each p99 and the median ratio.
# Needs: a release build (cargo build --release -p carnet), wrk, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${CARNET_BIN:-target/release/carnet}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
PORT=${PORT:-18181}
WORK=$(mktemp -d)
export CARNET_DATA_DIR=$WORK/data CARNET_LOG_FILTER=warn CARNET_TRUSTED_PROXIES=127.0.0.1 \
  CARNET_PUBLIC_URL=http://localhost:$PORT
BASE=http://127.0.0.1:$PORT

"$BIN" migrate >/dev/null
PRACTICE=$("$BIN" practice create --name "Cabinet Bench" --address "1 rue du Banc" --profession nurse)
CODE=$("$BIN" member add-holder --practice "$PRACTICE" --name "Anne Martin" --phone 0612345678 \
  --professional-id 10000005479 | sed -n "s/^code d'activation : \([^ ]*\).*/\1/p")
"$BIN" serve --listen 127.0.0.1:$PORT >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 50); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done

PASSWORD='Tilleul-Marée-42-Orage!'
post() { curl -s -D "$WORK/headers" -H 'content-type: application/json' -H 'sec-fetch-site: same-origin' ${COOKIE:+-H "cookie: $COOKIE"} -d "$2" "$BASE$1"; }
post /api/v1/auth/activate "{\"code\":\"$CODE\",\"login\":\"anne@example.fr\",\"password\":\"$PASSWORD\"}" >/dev/null
# The session and the device cookies (the activation's device is approved).
COOKIE=$(sed -n 's/^set-cookie: \([^;]*\).*/\1/ip' "$WORK/headers" | tr -d '\r' | paste -sd ';' | sed 's/;/; /g')
SECRET=$(post /api/v1/auth/totp/enrolment '' | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
TOTP=$(python3 - "$SECRET" <<'PY'
import base64, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), "sha1").digest()
offset = digest[-1] & 15
print(f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7fffffff) % 1000000:06d}")
PY
)
post /api/v1/auth/totp "{\"code\":\"$TOTP\"}" >/dev/null
URL="$BASE/api/v1/practices/$PRACTICE/members"
test "$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: $COOKIE" "$URL")" = 200

p99() { sed -n 's/^ *99% *\([0-9.]*\)\(us\|ms\|s\)$/\1 \2/p' | awk '{ v=$1; if ($2=="us") v/=1000; if ($2=="s") v*=1000; printf "%.2f", v }'; }
authenticated() { wrk -t1 -c8 -d"${SECONDS_PER_RUN}s" --latency -H "cookie: $COOKIE" "$URL"; }

declare -a ratios
for pair in 1 2 3; do
  quiet=$(authenticated | p99)
  wrk -t1 -c50 -d"$((SECONDS_PER_RUN + 2))s" -s scripts/bench/login-flood.lua "$BASE/api/v1/auth/login" >"$WORK/flood.txt" &
  FLOOD=$!
  sleep 1
  flooded=$(authenticated | p99)
  wait $FLOOD
  logins=$(sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$WORK/flood.txt")
  ratio=$(awk -v a="$flooded" -v b="$quiet" 'BEGIN { printf "%.2f", a / b }')
  ratios+=("$ratio")
  echo "pair $pair: p99 without flood ${quiet} ms, with 50 flooding clients ${flooded} ms (ratio ${ratio}); wrong-password attempts answered: ${logins}/s"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 2p)
echo "median ratio (flood / quiet p99): $median"
