# Shared by the benchmark scripts here (sourced, not run): starting
# release builds of `zhongtai up` on the embedded store or PostgreSQL,
# registering and logging in 100 citizens, and cleaning up on exit.
# Expects to be sourced from the repository root.
BIN=${ZHONGTAI_BIN:-./target/release/zhongtai}
[ -n "${ZHONGTAI_BIN:-}" ] || cargo build --release --bin zhongtai
PG=${PG:-postgres://postgres@127.0.0.1:5432}
BASE_PORT=${PORT:-18288}
DB=zhongtai_bench_$$
PIDS=()
DIRS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  PIDS=()
  for dir in "${DIRS[@]}"; do rm -rf "$dir"; done
  DIRS=()
  psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# start STATE N: N hosts on BASE_PORT.., all on STATE (embedded or postgres).
# UP_ARGS (an array) is passed on to `zhongtai up`; a function before_up,
# when defined, is called with each host's data directory before it starts.
UP_ARGS=()
start() {
  local state=$1 count=$2 args=()
  if [ "$state" = postgres ]; then
    psql "$PG/postgres" -qc "CREATE DATABASE $DB" >/dev/null
    args=(--state "$PG/$DB")
  fi
  URLS=()
  for n in $(seq 0 $((count - 1))); do
    local dir port=$((BASE_PORT + n))
    dir=$(mktemp -d ${DATA_DIR:+-p "$DATA_DIR"})
    DIRS+=("$dir")
    if declare -F before_up >/dev/null; then before_up "$dir"; fi
    "$BIN" up --data-dir "$dir" --registry "$dir/registry" --addr 127.0.0.1:$port --admin-addr 127.0.0.1:$((port + 1000)) "${args[@]}" ${UP_ARGS[@]+"${UP_ARGS[@]}"} >"$dir/up.log" 2>&1 &
    PIDS+=($!)
    URLS+=("http://127.0.0.1:$port")
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 1; done
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$dir/up.log"; exit 1; }
  done
}

# ms LATENCY: a wrk latency (123.45us, 1.2ms, 1.5s) in ms.
ms() {
  awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }; printf "%.2f", v }'
}

# wrk_script SERVICE: the wrk script that loads SERVICE (whoami or license).
wrk_script() {
  case $1 in
    whoami) echo host/api/bench/whoami.lua ;;
    license) echo host/api/bench/apply.lua ;;
    *) echo "unknown service $1: whoami or license" >&2; return 2 ;;
  esac
}

# 100 citizens with valid resident identity numbers, registered and logged in.
tokens() {
  export TOKENS_FILE=${DIRS[0]}/tokens
  python3 - "${URLS[0]}" "$TOKENS_FILE" <<'PY'
import json, sys, urllib.request
base, out = sys.argv[1], sys.argv[2]
weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
def post(path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request) as response:
        return json.load(response)
tokens = []
for n in range(100):
    first = f"110105199001{1 + n % 28:02d}{n:03d}"
    number = first + "10X98765432"[sum(int(d) * w for d, w in zip(first, weights)) % 11]
    post("/public-security/citizens", {"id": number, "name": f"Load {n}", "password": "load-test-2026"})
    tokens.append(post("/public-security/sessions", {"id": number, "password": "load-test-2026"})["token"])
open(out, "w").write("\n".join(tokens) + "\n")
PY
  TOKEN=$(head -1 "$TOKENS_FILE")
  export TOKEN
}

