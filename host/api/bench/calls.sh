#!/usr/bin/env bash
# What each component call of a service costs: a release build of
# `zhongtai up` on the embedded store, 100 citizens logged in, wrk with
# CONNECTIONS (default 1: one client, so no call waits for another) on
# SERVICE (license, the default, or whoami) for DURATION seconds (default 10); then
# the mean time of every component function called, from the host's own
# `zhongtai_component_call_duration_seconds` (instantiation, the guest's
# work, its state reads and its commit, and the wait for the flush), the
# store's mean apply (`state_commit`) and flush wait, and the host's CPU
# time per request.
# Usage: host/api/bench/calls.sh [license|whoami]   (needs wrk)
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
SERVICE=${1:-license}
PORT=${PORT:-18688}
export ZHONGTAI_ADMIN_TOKEN=bench-calls-0123456789abcdef0123456789
source host/api/bench/common.sh
SCRIPT=$(wrk_script "$SERVICE") || exit 2
start embedded 1
PID=${PIDS[-1]}
tokens
ADMIN=http://127.0.0.1:$((BASE_PORT + 1000))
snapshot() {
  curl -sf -H "Authorization: Bearer $ZHONGTAI_ADMIN_TOKEN" "$ADMIN/metrics" \
    | grep '^zhongtai_\(component_call\|state_commit\|state_flush_wait\)_duration_seconds_\(sum\|count\)' || true
}
BEFORE=$(mktemp)
AFTER=$(mktemp)
DIRS+=("$BEFORE" "$AFTER")
snapshot >"$BEFORE"
TICKS=$(awk '{print $14 + $15}' "/proc/$PID/stat")
OUT=$(wrk -t1 -c"${CONNECTIONS:-1}" -d"${DURATION:-10}"s -s "$SCRIPT" "${URLS[0]}")
TICKS=$(( $(awk '{print $14 + $15}' "/proc/$PID/stat") - TICKS ))
snapshot >"$AFTER"
REQUESTS=$(awk '/requests in/ {print $1}' <<<"$OUT")
RATE=$(awk '/^Requests\/sec/ {print $2}' <<<"$OUT")
echo "$SERVICE, ${CONNECTIONS:-1} connection(s): $RATE req/s; host CPU $(awk -v t="$TICKS" -v hz="$(getconf CLK_TCK)" -v n="$REQUESTS" 'BEGIN {printf "%.0f", t / hz / n * 1e6}') µs per request"
# The difference of the two snapshots, per function: calls and mean ms.
awk '
  function key(line) {
    if (line !~ /function=/) { match(line, /^zhongtai_[a-z_]*_duration/); return "(store) " substr(line, 10, RLENGTH - 18) }
    match(line, /function="[^"]*"/); f = substr(line, RSTART + 10, RLENGTH - 11)
    match(line, /package="[^"]*"/); return substr(line, RSTART + 9, RLENGTH - 10) "." f }
  FNR == NR { before[$1] = $2; next }
  { d = $2 - before[$1]; k = key($1)
    if ($1 ~ /_sum/) sum[k] += d; else count[k] += d }
  END { for (k in count) if (count[k] > 0) printf "  %-42s %7d calls %8.3f ms\n", k, count[k], sum[k] / count[k] * 1000 }
' "$BEFORE" "$AFTER" | sort
