#!/usr/bin/env bash
# Python benchmark harness for claribi-host serve (see sdk_anchor.py and sweep.py for what is measured).
#
#   host/bench/run.sh                        # release binaries in target/release (built if missing)
#   BIN_DIR=target/debug ANCHOR_CALLS=20 SWEEP_LEVELS=1,8,64 SWEEP_MIN_CALLS=16 SWEEP_PER_LEVEL=2 host/bench/run.sh
#
# Environment: BIN_DIR (default target/release), ANCHOR_CALLS (200), ANCHOR_WARMUP (10),
# SWEEP_LEVELS (1,8,64,256,1000), SWEEP_PER_LEVEL (4), SWEEP_MIN_CALLS (200), SWEEP_CONNECTIONS (4),
# SWEEP_LATENCY_MS (100), SWEEP_SESSIONS (1), ONLY (anchor | sweep: run one of the two).
# Writes target/bench/{anchor,sweep}.json, host/docs/bench/sweep.png and the servers' logs in
# target/bench/logs/; a venv in target/bench-venv.
set -euo pipefail

die() { echo "bench: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH="$ROOT/host/bench"
VENV="$ROOT/target/bench-venv"
BIN_DIR=${BIN_DIR:-$ROOT/target/release}
case "$BIN_DIR" in /*) ;; *) BIN_DIR="$ROOT/$BIN_DIR" ;; esac

CHILD=""
BENCH_TMP=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$CHILD" ]] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    # Every server the scripts started wrote its pid here; end any still running.
    if [[ -n "$BENCH_TMP" && -f "$BENCH_TMP/pids" ]]; then
        while read -r pid; do
            kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
        done < "$BENCH_TMP/pids"
        sleep 0.5
        while read -r pid; do
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        done < "$BENCH_TMP/pids"
    fi
    if [[ -n "$BENCH_TMP" && -d "$BENCH_TMP" ]]; then
        # Keep the servers' logs (serve logs one line per call) next to the figures.
        mkdir -p "$ROOT/target/bench/logs"
        for log in "$BENCH_TMP"/*/*.log; do
            [[ -f "$log" ]] && cp "$log" "$ROOT/target/bench/logs/$(basename "$(dirname "$log")")-$(basename "$log")"
        done
        rm -rf "$BENCH_TMP"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Run a command in the background and wait for it, so that a signal reaches the trap at once.
run_child() {
    echo "+ $*"
    "$@" &
    CHILD=$!
    local status=0
    wait "$CHILD" || status=$?
    CHILD=""
    # A script that failed has said why in one line (exit 1); anything else is said here.
    [[ $status -eq 0 ]] || { [[ $status -eq 1 ]] || echo "bench: $(basename "$2") failed (exit $status)" >&2; exit "$status"; }
}

# Binaries
if [[ ! -x "$BIN_DIR/claribi-host" || ! -x "$BIN_DIR/close-standin" ]]; then
    [[ "$BIN_DIR" == "$ROOT/target/release" ]] || die "$BIN_DIR has no claribi-host and close-standin"
    echo "+ cargo build --release -p claribi-host -p close-standin"
    (cd "$ROOT" && cargo build --release -p claribi-host -p close-standin) >&2 || die "cargo build --release failed"
fi

# Python environment (reinstalled when requirements.txt changes)
command -v python3 >/dev/null || die "python3 is not on the PATH"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV" || die "cannot create the venv $VENV (python3 -m venv)"
fi
STAMP="$VENV/.requirements.sha256"
WANT=$(sha256sum "$BENCH/requirements.txt" | cut -d' ' -f1)
if [[ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]]; then
    "$VENV/bin/pip" install --quiet -r "$BENCH/requirements.txt" >&2 || die "pip install -r host/bench/requirements.txt failed"
    echo "$WANT" > "$STAMP"
fi
PY="$VENV/bin/python"

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/claribi-bench.XXXXXX") || die "mktemp failed"
export BENCH_TMP
mkdir -p "$ROOT/target/bench"

echo "bench: $(date -u +%FT%TZ), binaries in $BIN_DIR, git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
if [[ "${ONLY:-anchor}" == anchor ]]; then
    run_child "$PY" "$BENCH/sdk_anchor.py" --bin-dir "$BIN_DIR" \
        --calls "${ANCHOR_CALLS:-200}" --warmup "${ANCHOR_WARMUP:-10}"
    echo
fi
if [[ "${ONLY:-sweep}" == sweep ]]; then
    run_child "$PY" "$BENCH/sweep.py" --bin-dir "$BIN_DIR" \
        --levels "${SWEEP_LEVELS:-1,8,64,256,1000}" --per-level "${SWEEP_PER_LEVEL:-4}" \
        --min-calls "${SWEEP_MIN_CALLS:-200}" --connections "${SWEEP_CONNECTIONS:-4}" \
        --latency-ms "${SWEEP_LATENCY_MS:-100}" --sessions "${SWEEP_SESSIONS:-1}"
fi
