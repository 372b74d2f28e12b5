#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each): `tests/fuzz/run.sh [SECONDS]`.
# Installs cargo-fuzz if needed; uses a nightly toolchain when one is installed, else stable with
# RUSTC_BOOTSTRAP=1 (libFuzzer's instrumentation needs -Z flags). Exits non-zero if a target finds a crash;
# the input is then in tests/fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${1:-60}"
TARGETS=(sse_framing mcp_response www_authenticate policy_file origin_pattern upstream_calls engine_results oauth_responses attach)

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  FUZZ=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  FUZZ=(cargo fuzz)
fi

"${FUZZ[@]}" build --fuzz-dir . -O
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  echo "== fuzzing $t for ${SECONDS_PER_TARGET}s"
  log="$(mktemp)"
  status=0
  # -timeout: one input running longer than 10 s is a finding (a hang), not a wait of libFuzzer's 1200 s.
  "${FUZZ[@]}" run --fuzz-dir . -O "$t" "corpus/$t" -- -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^(Done|stat::number_of_executed_units|==[0-9]+== ERROR)|panicked|SUMMARY" "$log" || true
  if [ "$status" -ne 0 ] || [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
    tail -n 40 "$log"
    echo "fuzz target $t failed (exit $status); inputs, if any: $(ls "artifacts/$t" 2>/dev/null)"
    exit 1
  fi
  rm -f "$log"
done
echo "== all fuzz targets ran ${SECONDS_PER_TARGET}s without a crash"
