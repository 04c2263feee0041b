#!/usr/bin/env bash
# zhongtai beside its peers, in one run on one machine: `wasmtime serve` 48
# with a hello-world `wasi:http` component (a fresh instance per request),
# a native axum hello-world, and zhongtai's one-step `whoami` and five-step
# business-license application (release build, embedded store, 100
# citizens logged in). The same wrk settings for each (2 threads, 64
# connections, 10 s), alternating, two rounds; the resident memory of each
# server under its load (the peak of the second round); zhongtai's warm start to /readyz; then the
# criterion benchmark of a fresh-instance call against the same logic
# native. Prints every figure and the ratios the performance targets are
# set in.
#
# The peers are built into PEERS_DIR (default target/peers) the first time:
# `cargo install --locked wasmtime-cli@48.0.8` (about 20 minutes here), and
# the two crates under host/api/bench/peers/.
# SKIP_CRITERION=1 leaves out the criterion part (about 2 minutes).
# ZHONGTAI_BIN runs another build of zhongtai instead of building this one.
# Usage: host/api/bench/peers.sh   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
rustup target list --installed 2>/dev/null | grep -q wasm32-wasip2 \
  || { echo "the wasm32-wasip2 target is needed: rustup target add wasm32-wasip2" >&2; exit 1; }
PEERS_DIR=${PEERS_DIR:-target/peers}
mkdir -p "$PEERS_DIR"
PEERS_DIR=$(cd "$PEERS_DIR" && pwd)

WASMTIME=$PEERS_DIR/wasmtime-48/bin/wasmtime
if ! [ -x "$WASMTIME" ]; then
  echo "building wasmtime-cli 48.0.8 into $PEERS_DIR (once)" >&2
  CARGO_TARGET_DIR=$PEERS_DIR/build cargo install --locked wasmtime-cli@48.0.8 --root "$PEERS_DIR/wasmtime-48"
fi
cargo build -q --release --locked --manifest-path host/api/bench/peers/hello-http/Cargo.toml \
  --target wasm32-wasip2 --target-dir "$PEERS_DIR/build-hello-http"
HELLO_WASM=$PEERS_DIR/build-hello-http/wasm32-wasip2/release/hello_http.wasm
cargo build -q --release --locked --manifest-path host/api/bench/peers/hello-axum/Cargo.toml \
  --target-dir "$PEERS_DIR/build-hello-axum"
HELLO_AXUM=$PEERS_DIR/build-hello-axum/release/hello-axum

PORT=${PORT:-18488}
source host/api/bench/common.sh

WASMTIME_PORT=$((BASE_PORT + 10))
AXUM_PORT=$((BASE_PORT + 11))
# -S cli: the component is built with std, which imports wasi:cli.
"$WASMTIME" serve -S cli --addr "127.0.0.1:$WASMTIME_PORT" "$HELLO_WASM" >"$PEERS_DIR/wasmtime-serve.log" 2>&1 &
WASMTIME_PID=$!
PIDS+=("$WASMTIME_PID")
"$HELLO_AXUM" "127.0.0.1:$AXUM_PORT" &
AXUM_PID=$!
PIDS+=("$AXUM_PID")
start embedded 1
ZHONGTAI_PID=${PIDS[-1]}
tokens
for url in "http://127.0.0.1:$WASMTIME_PORT/" "http://127.0.0.1:$AXUM_PORT/"; do
  for _ in $(seq 1 100); do curl -sf "$url" >/dev/null && break; sleep 0.1; done
  curl -sf "$url" >/dev/null || { echo "$url does not answer" >&2; exit 1; }
done

# measure NAME PID URL WRK-ARGS...: one wrk run; prints "NAME req/s p50 p99 rss-MB errors"
measure() {
  local name=$1 pid=$2 url=$3; shift 3
  local out peak=0 rss
  out=$(mktemp)
  wrk -t2 -c64 -d10s --latency "$@" "$url" >"$out" 2>&1 &
  local wrk_pid=$!
  # The server's resident memory, sampled while it is under load.
  while kill -0 "$wrk_pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    sleep 0.25
  done
  wait "$wrk_pid"
  local rate p50 p99 errors
  rate=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$out")
  p50=$(ms "$(awk '/^ +50%/ {print $2}' "$out")")
  p99=$(ms "$(awk '/^ +99%/ {print $2}' "$out")")
  errors=$(awk '/Non-2xx/ {s += $NF} /Socket errors/ {e = 1} END {printf "%d%s", s, e ? "+socket" : ""}' "$out")
  rm -f "$out"
  echo "$name $rate $p50 $p99 $((peak / 1024)) $errors"
}

RESULTS=$(mktemp)
DIRS+=("$RESULTS")
echo "$(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores; wrk -t2 -c64 -d10s; two rounds, alternating"
printf '%-22s %8s %9s %9s %8s %s\n' server "req/s" "p50 ms" "p99 ms" "RSS MB" "non-2xx"
for round in 1 2; do
  for case in wasmtime whoami axum license; do
    case $case in
      wasmtime) line=$(measure wasmtime-serve "$WASMTIME_PID" "http://127.0.0.1:$WASMTIME_PORT/") ;;
      axum) line=$(measure axum "$AXUM_PID" "http://127.0.0.1:$AXUM_PORT/") ;;
      whoami) line=$(measure zhongtai-whoami "$ZHONGTAI_PID" "${URLS[0]}" -s host/api/bench/whoami.lua) ;;
      license) line=$(measure zhongtai-license "$ZHONGTAI_PID" "${URLS[0]}" -s host/api/bench/apply.lua) ;;
    esac
    echo "$line $round" >>"$RESULTS"
    echo "$line" | awk -v r=$round '{printf "%-22s %8s %9s %9s %8s %s\n", $1 " (" r ")", $2, $3, $4, $5, $6}'
  done
done

# Warm start: the same data directory again, compiled components cached.
kill "$ZHONGTAI_PID"
wait "$ZHONGTAI_PID" 2>/dev/null || true
WARM=$(python3 - "$BIN" "${DIRS[0]}" "$BASE_PORT" <<'PY'
import subprocess, sys, time, urllib.request
binary, data, port = sys.argv[1], sys.argv[2], sys.argv[3]
best = None
for _ in range(3):
    started = time.monotonic()
    up = subprocess.Popen([binary, "up", "--data-dir", data, "--registry", data + "/registry",
                           "--addr", f"127.0.0.1:{port}", "--admin-addr", f"127.0.0.1:{int(port) + 1000}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except Exception:
            time.sleep(0.001)
    took = (time.monotonic() - started) * 1000
    best = took if best is None else min(best, took)
    up.terminate()
    up.wait()
print(f"{best:.0f}")
PY
)

mean() { # NAME FIELD -> the mean of the two rounds
  awk -v n="$1" -v f="$2" '$1 == n {s += $f; c++} END {printf "%.2f", s / c}' "$RESULTS"
}
last() { # NAME FIELD -> its value in the last round (resident memory: the
  # first round still holds what registering the citizens left behind)
  awk -v n="$1" -v f="$2" '$1 == n {v = $f} END {printf "%d", v}' "$RESULTS"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "means of the two rounds:"
for name in wasmtime-serve zhongtai-whoami axum zhongtai-license; do
  printf '  %-18s %8.0f req/s  p99 %6s ms  RSS %4s MB\n' "$name" "$(mean "$name" 2)" "$(mean "$name" 4)" "$(last "$name" 5)"
done
echo
echo "ratios (target in brackets):"
echo "  whoami / wasmtime serve req/s:     $(ratio "$(mean zhongtai-whoami 2)" "$(mean wasmtime-serve 2)")  [>= 2]"
echo "  whoami / wasmtime serve p99:       $(ratio "$(mean zhongtai-whoami 4)" "$(mean wasmtime-serve 4)")  [<= 1]"
echo "  business license / whoami req/s:   $(ratio "$(mean zhongtai-license 2)" "$(mean zhongtai-whoami 2)")  [>= 0.25]"
echo "  zhongtai / wasmtime serve RSS:     $(ratio "$(last zhongtai-whoami 5)" "$(last wasmtime-serve 5)")  [<= 2] (peak under the whoami load, second round)"
echo "  whoami / axum req/s:               $(ratio "$(mean zhongtai-whoami 2)" "$(mean axum 2)")"
echo "  warm start to /readyz:             ${WARM} ms  [<= 50] (best of 3)"

if [ -z "${SKIP_CRITERION:-}" ]; then
  cargo bench -q -p zhongtai-runtime --bench auth_verify -- --warm-up-time 2 --measurement-time 8 >/dev/null 2>&1
  median() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['median']['point_estimate'] / 1000)" "target/criterion/auth-verify/$1/new/estimates.json"; }
  FRESH=$(median a-fresh-instance-per-call)
  NATIVE=$(median c-native)
  echo "  fresh-instance call / native call: $(ratio "$FRESH" "$NATIVE")  [<= 5] ($(printf '%.1f' "$FRESH") µs / $(printf '%.2f' "$NATIVE") µs, criterion medians)"
fi
