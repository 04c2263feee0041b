#!/usr/bin/env bash
# Slow clients against a normal one: a release build of `zhongtai up` on the
# embedded store, one citizen logged in, then wrk (2 threads, 16
# connections, 10 s) on `whoami` alone, then again while SLOW (default
# 2000) slow connections are held open from 8 other loopback addresses —
# half of them sending a request head one byte every few seconds, half a
# request body likewise, each reconnecting when the host closes it. Prints
# both p99s, their ratio, and how many slow connections were open.
# ZHONGTAI_BIN runs another build instead of building this one.
# Usage: host/api/bench/slow_clients.sh   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
BIN=${ZHONGTAI_BIN:-./target/release/zhongtai}
[ -n "${ZHONGTAI_BIN:-}" ] || cargo build --release --bin zhongtai
SLOW=${SLOW:-2000}
PORT=${PORT:-18388}
ulimit -n "$(ulimit -Hn)"
DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

"$BIN" up --data-dir "$DIR" --registry "$DIR/registry" --addr 127.0.0.1:$PORT \
  --admin-addr 127.0.0.1:$((PORT + 1)) >"$DIR/up.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 1; done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$DIR/up.log"; exit 1; }

TOKEN=$(python3 - "http://127.0.0.1:$PORT" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
def post(path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request) as response:
        return json.load(response)
weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
first = "11010519900101001"
number = first + "10X98765432"[sum(int(d) * w for d, w in zip(first, weights)) % 11]
post("/public-security/citizens", {"id": number, "name": "Load", "password": "load-test-2026"})
print(post("/public-security/sessions", {"id": number, "password": "load-test-2026"})["token"])
PY
)
export TOKEN

p99() { # wrk output -> p99 in ms
  awk '/^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f", v}'
}
run() {
  wrk -t2 -c16 -d10s --latency -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT/public-security/whoami"
}

echo "== whoami alone"
BASE=$(run)
echo "$BASE" | grep -E "Requests/sec|^ +(50|99)%"
BASE_P99=$(echo "$BASE" | p99)

python3 - "$PORT" "$SLOW" "$DIR/slow.log" <<'PY' &
import asyncio, sys, time
port, total, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
open_now = 0
peak = 0
async def slow(n):
    global open_now, peak
    source = f"127.0.0.{2 + n % 8}"
    body = n % 2 == 1
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        except OSError:
            await asyncio.sleep(1)
            continue
        open_now += 1
        peak = max(peak, open_now)
        try:
            if body:
                writer.write(b"POST /public-security/citizens HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n")
            else:
                writer.write(b"GET /public-security/whoami HTTP/1.1\r\n")
            while True:
                await writer.drain()
                await asyncio.sleep(3)
                if reader.at_eof():
                    break
                writer.write(b"x" if body else b"x-slow: 1\r\n")
        except OSError:
            pass
        finally:
            open_now -= 1
            writer.close()
async def report():
    while True:
        await asyncio.sleep(1)
        with open(log, "a") as f:
            f.write(f"{time.time():.0f} open {open_now} peak {peak}\n")
async def main():
    await asyncio.gather(report(), *(slow(n) for n in range(total)))
asyncio.run(main())
PY
PIDS+=($!)
sleep 5
echo "== whoami while $SLOW slow connections are held"
LOADED=$(run)
echo "$LOADED" | grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors" || true
LOADED_P99=$(echo "$LOADED" | p99)
echo "slow connections open during the run: $(tail -12 "$DIR/slow.log" | awk '{print $3}' | sort -n | head -1)–$(tail -12 "$DIR/slow.log" | awk '{print $3}' | sort -n | tail -1) (peak $(tail -1 "$DIR/slow.log" | awk '{print $5}'))"
awk -v a="$BASE_P99" -v b="$LOADED_P99" 'BEGIN {printf "whoami p99: %.2f ms alone, %.2f ms with slow clients: %.2fx\n", a, b, b / a}'
