#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), two at a time,
# on its committed corpus (tests/fuzz/corpus/<target>), which grows with
# what the fuzzer finds. Needs the nightly toolchain and cargo-fuzz
# (`rustup toolchain install nightly; cargo install cargo-fuzz`).
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
FUZZ=tests/fuzz
SECONDS_EACH=${1:-600}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(manifest json_wit audit_trail registry_names)
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is needed: cargo install cargo-fuzz" >&2; exit 1; }
# The JSON ⇄ WIT target reads the sampler fixture's types.
cargo build -q -p fixture-sampler --target wasm32-wasip2 --profile guest
mkdir -p "$FUZZ/logs"
cargo +nightly fuzz build --fuzz-dir "$FUZZ" -O
run() {
  local target=$1
  mkdir -p "$FUZZ/corpus/$target" "$FUZZ/artifacts/$target"
  local status=0
  cargo +nightly fuzz run --fuzz-dir "$FUZZ" -O "$target" "$FUZZ/corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=4096 \
    -artifact_prefix="$FUZZ/artifacts/$target/" >"$FUZZ/logs/$target.log" 2>&1 || status=$?
  echo "$target: exit $status; $(grep -E '^#[0-9]+' "$FUZZ/logs/$target.log" | tail -1)"
  return $status
}
failed=0
for ((i = 0; i < ${#TARGETS[@]}; i += 2)); do
  pids=()
  for target in "${TARGETS[@]:i:2}"; do run "$target" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
done
exit $failed
