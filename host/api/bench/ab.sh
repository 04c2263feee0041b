#!/usr/bin/env bash
# Two (or more) builds or settings of zhongtai on the whoami load, one after
# the other, ROUNDS times (default 2): each a release binary with optional
# environment settings, started on the same data directory (100 citizens
# registered once by the first), loaded with wrk (2 threads, 64
# connections, 8 s). Prints req/s, p99, resident memory and the host's
# CPU time per request, read from /proc — steadier than req/s on a shared
# machine. This is how the figures in BENCHMARKS.md's "Against its peers"
# table were compared.
# Usage: host/api/bench/ab.sh "BINARY [NAME=VALUE...] [--up-flag=value...]" ...
#   e.g. host/api/bench/ab.sh "/tmp/zhongtai-before --dir=/tmp/examples-before" "target/release/zhongtai"
#   (words starting with -- go to `zhongtai up`, the others are environment)
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
[ $# -ge 1 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
PORT=${PORT:-18688}
source host/api/bench/common.sh
HZ=$(getconf CLK_TCK)

# run BINARY [NAME=VALUE...]: one load of whoami; prints one line.
run() {
  local bin=$1; shift
  local settings=() flags=() word
  for word in "$@"; do
    case $word in --*) flags+=("$word") ;; *) settings+=("$word") ;; esac
  done
  env ${settings[@]+"${settings[@]}"} "$bin" up --data-dir "$DATA" --registry "$DATA/registry" --addr "127.0.0.1:$PORT" \
    --admin-addr "127.0.0.1:$((PORT + 1000))" ${flags[@]+"${flags[@]}"} >/dev/null 2>&1 &
  local pid=$! out
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
  out=$(mktemp)
  wrk -t2 -c64 -d8s --latency -s host/api/bench/whoami.lua "http://127.0.0.1:$PORT" >"$out" &
  local wrk_pid=$! before after rss
  sleep 1
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  sleep 6
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  rss=$(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status")
  wait "$wrk_pid"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  awk -v t=$((after - before)) -v hz="$HZ" -v rss="$rss" -v what="$bin $*" '
    /^Requests\/sec/ {rate = $2} /^ +99%/ {p99 = $2}
    END {printf "%-50s %6.0f req/s  p99 %8s  RSS %3d MB  host %4.0f µs/request\n", what, rate, p99, rss, t / hz / 6 / rate * 1e6}' "$out"
  rm -f "$out"
}

# The citizens and their tokens, once, on the first build.
BIN=${1%% *}
start embedded 1
tokens
DATA=${DIRS[0]}
kill "${PIDS[-1]}"
wait "${PIDS[-1]}" 2>/dev/null || true
for round in $(seq 1 "${ROUNDS:-2}"); do
  for config in "$@"; do
    # shellcheck disable=SC2086 # a binary and its settings, split on spaces
    run $config
  done
done
