#!/usr/bin/env bash
# Isolation under load, in one run: whoami (public security) loaded by wrk
# while another department misbehaves — civil affairs, serving the fixture
# component example:sampler (host/api/bench/civil-affairs.toml).
#   baseline  whoami alone;
#   loop      whoami while 10,000 requests (64 at a time) call a guest that
#             loops until its deadline (250 ms here) ends it;
#   nap       the same with a guest that sleeps past its deadline: the same
#             requests, instances and timeouts without the loops' CPU, so
#             what the requests themselves cost whoami;
#   burn2     whoami beside two busy loops at idle CPU priority in another
#             process (chrt --idle): what this machine charges for CPU
#             used at idle priority, which no host can avoid;
#   burn64    the same with 64 loops, as many as the looping calls: what
#             that many runnable threads at idle priority cost, whoever
#             runs them;
#   count     whoami while another client loads civil affairs with a call
#             that returns (`antics.count`);
#   trap      the same with a call that traps (`antics.boom`): a department
#             whose calls all trap should cost others no more than one
#             whose calls succeed.
# Each against two hosts started the same way (call deadline 250 ms) but
# for --demote-after-ms: 5 (a call that used 5 ms of CPU, or timed out,
# goes on at idle CPU priority, and so do its service's next calls) and 0
# (never), alternating, twice. Prints req/s and p50/p99 of whoami, the
# loop's outcomes, the host's resident memory before, at most during and
# after the loop (and, with demotion, after 10,000 more loops), and
# whoami's p99 in the loop, nap and burn phases over its baseline.
# ROUNDS (2), SPINS (10000) and DEMOTES ("5 0", the --demote-after-ms
# values to run) change the run.
# Usage: host/api/bench/isolation.sh   (needs wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --quiet --profile guest --target wasm32-wasip2 -p fixture-sampler
SAMPLER=target/wasm32-wasip2/guest/fixture_sampler.wasm
source host/api/bench/common.sh
ROUNDS=${ROUNDS:-2}
SPINS=${SPINS:-10000}

DEPARTMENTS=$(mktemp -d)
trap 'cleanup; rm -rf "$DEPARTMENTS"' EXIT
cp -r examples/* "$DEPARTMENTS/"
mkdir "$DEPARTMENTS/civil-affairs"
cp host/api/bench/civil-affairs.toml "$DEPARTMENTS/civil-affairs/zhongtai.toml"
cat >>"$DEPARTMENTS/policy.toml" <<'TOML'

[departments.civil-affairs]
"example:sampler" = ["antics.*"]
TOML

before_up() {
  "$BIN" publish --registry "$1/registry" --package example:sampler --version 1.0.0 "$SAMPLER" >/dev/null
}

rss() { awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/${PIDS[0]}/status"; }

# whoami NAME SECONDS: wrk on whoami; prints req/s, p50, p99, and keeps
# the p99 in ms for p99_ratios.
whoami() {
  local out
  out=$(wrk -t2 -c64 -d"$2"s --latency -s host/api/bench/whoami.lua "${URLS[0]}")
  awk -v name="$1" '/^Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {e=$NF}
      END {printf "  %-9s whoami %6.0f req/s  p50 %-8s p99 %-8s%s\n", name, r, p50, p99, e ? "  (" e " non-2xx)" : ""}' <<<"$out"
  echo "$1 $(ms "$(awk '/^ +99%/ {print $2}' <<<"$out")")" >>"${DIRS[-1]}/p99"
}

# p99_ratios: whoami's p99 in each phase over its baseline's.
p99_ratios() {
  awk '$1 == "baseline" {b = $2} $1 != "baseline" && b {printf "%s %s %.2f", (n++ ? "," : "  p99 / baseline:"), $1, $2 / b}
       END {print ""}' "${DIRS[-1]}/p99"
}

# spin [PATH NAME]: SPINS POSTs to civil affairs' PATH (the looping
# service's /spin), 64 at a time; prints statuses.
spin() {
  python3 - "${URLS[0]}" "$SPINS" "${1:-/spin}" "${2:-loop}" <<'PY'
import collections, http.client, sys, threading, urllib.parse
base, total = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2])
path, name = "/civil-affairs" + sys.argv[3], sys.argv[4]
statuses, lock, left = collections.Counter(), threading.Lock(), [total]
def client():
    connection = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
    while True:
        with lock:
            if left[0] == 0:
                return
            left[0] -= 1
        try:
            connection.request("POST", path, body=b"")
            response = connection.getresponse()
            response.read()
            status = response.status
        except Exception as error:
            status = type(error).__name__
            connection = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
        with lock:
            statuses[status] += 1
threads = [threading.Thread(target=client) for _ in range(64)]
for thread in threads: thread.start()
for thread in threads: thread.join()
print(f"  {name:<9} " + ", ".join(f"{n} x {s}" for s, n in sorted(statuses.items(), key=str)))
PY
}

# other PATH NAME: whoami (48 connections) and civil affairs' PATH (16)
# loaded together for 10 s; prints whoami's figures.
other() {
  wrk -t1 -c16 -d10s -s <(printf 'wrk.method = "POST"\n') "${URLS[0]}$1" >/dev/null 2>&1 &
  local loader=$!
  wrk -t1 -c48 -d10s --latency -s host/api/bench/whoami.lua "${URLS[0]}" \
    | awk -v name="$2" '/^Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
        END {printf "  %-9s whoami %6.0f req/s  p50 %-8s p99 %-8s (48 connections; 16 on civil affairs)\n", name, r, p50, p99}'
  wait $loader
}

for round in $(seq 1 "$ROUNDS"); do
  for demote in ${DEMOTES:-5 0}; do
    echo "== round $round, --demote-after-ms $demote"
    UP_ARGS=(--dir "$DEPARTMENTS" --deadline-ms 250 --demote-after-ms "$demote")
    start embedded 1
    tokens
    whoami baseline 10
    before=$(rss)
    most=$before
    spin >"${DIRS[-1]}/spin.out" &
    spinner=$!
    ( while kill -0 $spinner 2>/dev/null; do rss; sleep 0.5; done ) >"${DIRS[-1]}/rss" &
    sampler=$!
    started=$(date +%s)
    whoami loop 20
    wait $spinner
    wait $sampler || true
    cat "${DIRS[-1]}/spin.out"
    most=$(sort -n "${DIRS[-1]}/rss" | tail -1)
    echo "  loop      $SPINS calls in $(( $(date +%s) - started )) s; host RSS ${before} MB before, ${most:-$before} MB at most during, $(rss) MB after"
    grep -h "ERROR\|panicked" "${DIRS[-1]}/up.log" | sort | uniq -c | sort -rn | head -3 || true
    if [ "$demote" != 0 ]; then
      spin >/dev/null
      echo "  loop      another $SPINS calls (no other load): host RSS $(rss) MB after"
    fi
    spin /nap nap >"${DIRS[-1]}/nap.out" &
    napper=$!
    whoami nap 20
    wait $napper
    cat "${DIRS[-1]}/nap.out"
    for count in 2 64; do
      burners=()
      for _ in $(seq 1 $count); do chrt --idle 0 sh -c 'while :; do :; done' & burners+=($!); done
      whoami "burn$count" 10
      kill "${burners[@]}"
      wait "${burners[@]}" 2>/dev/null || true
    done
    p99_ratios
    other /civil-affairs/count count
    other /civil-affairs/boom trap
    cleanup
  done
done
