#!/usr/bin/env bash
# Load benchmark of the platform serving the example departments: a release
# build of `zhongtai up`, wrk with 2 threads and 64 connections for 10 s per
# service, then where the time of a request goes (from Server-Timing),
# including the audit write (one fdatasync of the trail per request, shared
# by concurrent requests). Set DATA_DIR to put the data directory (and so
# the audit trail) on a particular disk.
# Usage: host/api/bench/load.sh   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --bin zhongtai
DATA=$(mktemp -d ${DATA_DIR:+-p "$DATA_DIR"})
PORT=${PORT:-18288}
B=http://127.0.0.1:$PORT
./target/release/zhongtai up --data-dir "$DATA" --registry "$DATA/registry" --addr 127.0.0.1:$PORT >"$DATA/up.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 1 300); do curl -sf $B/readyz >/dev/null && break; sleep 1; done
curl -sf $B/readyz >/dev/null || { cat "$DATA/up.log"; exit 1; }

# 100 applicants with valid unified social credit codes (a holder may have
# at most 1000 licenses), each registered and logged in.
export TOKENS_FILE="$DATA/tokens"
python3 - "$B" "$TOKENS_FILE" <<'PY'
import json, sys, urllib.request
base, out = sys.argv[1], sys.argv[2]
charset = "0123456789ABCDEFGHJKLMNPQRTUWXY"
weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
def post(path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request) as response:
        return json.load(response)
tokens = []
for n in range(100):
    first = f"91350100MA{n:07d}"
    code = first + charset[(31 - sum(charset.index(c) * w for c, w in zip(first, weights)) % 31) % 31]
    post("/public-security/legal-entities", {"id": code, "name": f"Load {n}", "password": "load-test-2026"})
    tokens.append(post("/public-security/sessions", {"id": code, "password": "load-test-2026"})["token"])
open(out, "w").write("\n".join(tokens) + "\n")
PY
TOKEN=$(head -1 "$TOKENS_FILE")
export TOKEN

echo "== one cheap step: GET /public-security/whoami (auth.authn.verify)"
wrk -t2 -c64 -d10s --latency -H "Authorization: Bearer $TOKEN" $B/public-security/whoami
echo
echo "== business license: POST /market-regulation/business-license-applications (5 calls, 3 durable writes)"
wrk -t2 -c64 -d10s --latency -s host/api/bench/apply.lua $B
echo

timing() { # method path body -> mean component, audit and total ms over 200 sequential requests
  for i in $(seq 1 200); do
    curl -s -o /dev/null -D - -X "$1" "$B$2" -H "Authorization: Bearer $TOKEN" ${3:+-d "$(printf "$3" "$i")"} \
      | tr -d '\r' | sed -n 's/^server-timing: components;dur=\([0-9.]*\), audit;dur=\([0-9.]*\), total;dur=\([0-9.]*\)/\1 \2 \3/p'
  done | awk '{c+=$1; a+=$2; t+=$3; n++} END {printf "components %.3f ms, audit %.3f ms, rest of host %.3f ms, total %.3f ms (mean of %d, one client)\n", c/n, a/n, (t-c-a)/n, t/n, n}'
}
echo "== where the time goes"
printf "whoami:           "; timing GET /public-security/whoami ""
printf "business license: "; timing POST /market-regulation/business-license-applications \
  '{"application-id":"TIMING-%s","valid-from":"2026-01-01","valid-until":"2030-12-31"}'
