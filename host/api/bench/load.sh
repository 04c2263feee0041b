#!/usr/bin/env bash
# Load benchmark of the platform serving the example departments, in three
# configurations, one after the other in one run: one host on the embedded
# store, one host on PostgreSQL, three hosts on one PostgreSQL database.
# Each: a release build of `zhongtai up`, 100 citizens registered and
# logged in, then wrk (2 threads, 64 connections in all, split over the
# hosts, 10 s) on the one-step `whoami` and on the business-license
# application, then where the time of a request goes (from Server-Timing).
# Set DATA_DIR to put the data directories on a particular disk, PG to
# another PostgreSQL server (default postgres://postgres@127.0.0.1:5432),
# CONFIGS to run only some ("embedded:1 postgres:1 postgres:3").
# ZHONGTAI_BIN runs another build of zhongtai (to compare two versions in
# one sitting) instead of building this one.
# Usage: host/api/bench/load.sh   (needs wrk: apt-get install wrk; psql)
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
source host/api/bench/common.sh

# load NAME WRK-ARGS...: wrk on every host at once (64 connections in all);
# prints the summed rate and each host's latency percentiles.
load() {
  local name=$1; shift
  local per=$((64 / ${#URLS[@]})) outs=() pids=()
  for url in "${URLS[@]}"; do
    local out
    out=$(mktemp)
    outs+=("$out")
    wrk -t2 -c$per -d10s --latency "$@" "$url" >"$out" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  local total
  total=$(cat "${outs[@]}" | awk '/^Requests\/sec/ {s += $2} END {printf "%.0f", s}')
  local lat
  lat=$(for out in "${outs[@]}"; do awk '/^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "p50 %s p99 %s; ", p50, p99}' "$out"; done)
  local errors
  errors=$(cat "${outs[@]}" | awk '/Non-2xx/ {s += $NF} /Socket errors/ {e = 1} END {printf "%d non-2xx%s", s, e ? ", socket errors" : ""}')
  echo "$name: $total req/s ($lat$errors)"
  grep -h "answered" "${outs[@]}" | head -5 || true
  rm -f "${outs[@]}"
}

timing() { # method path body -> mean component, audit and total ms over 200 sequential requests
  for i in $(seq 1 200); do
    curl -s -o /dev/null -D - -X "$1" "${URLS[0]}$2" -H "Authorization: Bearer $TOKEN" ${3:+-d "$(printf "$3" "$i")"} \
      | tr -d '\r' | sed -n 's/^server-timing: components;dur=\([0-9.]*\), audit;dur=\([0-9.]*\), total;dur=\([0-9.]*\)/\1 \2 \3/p'
  done | awk '{c+=$1; a+=$2; t+=$3; n++} END {printf "components %.3f ms, audit %.3f ms, rest of host %.3f ms, total %.3f ms (mean of %d, one client)\n", c/n, a/n, (t-c-a)/n, t/n, n}'
}

for config in ${CONFIGS:-embedded:1 postgres:1 postgres:3}; do
  state=${config%:*}
  count=${config#*:}
  echo "== $count host(s), $state store"
  start "$state" "$count"
  tokens
  load "whoami" -s host/api/bench/whoami.lua
  load "business license" -s host/api/bench/apply.lua
  printf "whoami timing:           "; timing GET /public-security/whoami ""
  printf "business license timing: "; timing POST /market-regulation/business-license-applications \
    '{"application-id":"TIMING-%s","business-scope":"tea"}'
  cleanup
  echo
done
