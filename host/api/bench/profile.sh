#!/usr/bin/env bash
# Where zhongtai's CPU goes under load: a release build of `zhongtai up` on
# the embedded store, 100 citizens logged in, wrk (2 threads, 64
# connections) on SERVICE (whoami, the default, or license) while
# `perf record` samples the host for 10 s; prints the top TOP (default 30)
# symbols by self time, and the CPU the host used per request.
# perf.data is left in target/profile/ for `perf report`.
# Usage: host/api/bench/profile.sh [whoami|license]   (needs wrk and perf:
# apt-get install wrk linux-perf)
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is needed: apt-get install linux-perf" >&2; exit 1; }
SERVICE=${1:-whoami}
PORT=${PORT:-18588}
source host/api/bench/common.sh
SCRIPT=$(wrk_script "$SERVICE") || exit 2
start embedded 1
PID=${PIDS[-1]}
tokens
mkdir -p target/profile
OUT=target/profile/wrk.txt
wrk -t2 -c64 -d14s --latency -s "$SCRIPT" "${URLS[0]}" >"$OUT" 2>&1 &
WRK=$!
sleep 2
TICKS=$(awk '{print $14 + $15}' "/proc/$PID/stat")
perf record -q -F ${FREQ:-1999} --call-graph ${CALLGRAPH:-fp} -o target/profile/perf.data -p "$PID" -- sleep 10 2>/dev/null
TICKS=$(( $(awk '{print $14 + $15}' "/proc/$PID/stat") - TICKS ))
wait "$WRK"
RATE=$(awk '/^Requests\/sec/ {print $2}' "$OUT")
echo "$SERVICE: $RATE req/s; the host used $(awk -v t="$TICKS" -v hz="$(getconf CLK_TCK)" -v r="$RATE" 'BEGIN {printf "%.0f%% CPU, %.0f µs per request", t / hz / 10 * 100, t / hz / 10 / r * 1e6}')"
perf report -i target/profile/perf.data --no-children --percent-limit 0.7 --stdio --fields overhead,sym -g none 2>/dev/null \
  | grep -v '^#' | grep -v '^$' | head -"${TOP:-30}"
