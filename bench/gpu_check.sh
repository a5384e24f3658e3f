#!/usr/bin/env bash
# The GPU machine check (issue 9 items 5 and 6), one command:
#
#   bash bench/gpu_check.sh [--venv PATH] [--wheels DIR] [--only gpu|cgroups] [--keep]
#
# 1. an interpreter with hpcbatch installed: --venv PATH (or $GPU_CHECK_VENV) uses that venv as
#    it is; else a new venv from python3 (or $GPU_CHECK_PYTHON) in a temp dir, installing this
#    tree offline from the wheelhouse (--wheels, default ./wheels, built by
#    scripts/gpu_wheelhouse.sh) where it exists, else from the package index;
# 2. a head on a free loopback port with one LOCAL node (GPUs: nvidia-smi's), stopped by PID on
#    exit (trap), then its agent and any job left;
# 3. bench/gpu_check.py's checks through it: GPU (skipped where nvidia-smi is absent) and cgroup
#    limits; a summary table on stdout, and with everything else in "$OUT/gpu_check.txt" when
#    $OUT is set (--only runs one part). Exits 1 if any check FAILED, 2 if the setup failed.
# Its temp dir (venv, head data, logs) is made under $TMPDIR (default /tmp) and removed unless
# --keep.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GPU_CHECK_VENV:-}"
WHEELS="$REPO/wheels"
KEEP=0
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: bash bench/gpu_check.sh [--venv PATH] [--wheels DIR] [--only gpu|cgroups] [--keep]" >&2
       exit 2 ;;
  esac
done

START=$(date +%s)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hpcbatch-gpu-check.XXXXXX")"
HEAD_PID=""
PY=""

say() { echo "gpu_check: $*" >&2; }

cleanup() {
  local rc=$?
  if [ -n "$HEAD_PID" ] && kill -0 "$HEAD_PID" 2>/dev/null; then
    kill -TERM "$HEAD_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$HEAD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$HEAD_PID" 2>/dev/null || true
    wait "$HEAD_PID" 2>/dev/null || true
  fi
  if [ -n "$PY" ] && [ -d "$WORK/data" ]; then
    (cd "$REPO" && timeout 60 "$PY" -m bench.gpu_check cleanup --data-dir "$WORK/data") || true
  fi
  if [ -n "${OUT:-}" ] && [ -d "$OUT" ] && [ ! -e "$OUT/gpu_check.txt" ]; then
    # No run got as far as writing its report: keep the setup's own logs instead.
    { echo "gpu_check: setup failed (exit $rc)"
      for log in "$WORK/venv.log" "$WORK/head.log"; do
        [ -e "$log" ] && { echo "## $log"; tail -100 "$log"; }
      done; } >"$OUT/gpu_check.txt" 2>&1 || true
  fi
  if [ "$KEEP" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
  say "done in $(( $(date +%s) - START )) s, exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
set -E
trap 'say "setup failed at line $LINENO"; exit 2' ERR  # until the checks run: 1 means a FAIL

# --- 1. an interpreter with hpcbatch -----------------------------------------------------------
make_venv() {
  local base="${GPU_CHECK_PYTHON:-python3}"
  if ! "$base" -m venv "$WORK/venv" >"$WORK/venv.log" 2>&1; then
    # Ubuntu's python3 without python3-venv has no ensurepip: bootstrap pip from its wheel.
    say "venv with pip failed ($(tail -1 "$WORK/venv.log")); trying --without-pip"
    rm -rf "$WORK/venv"
    "$base" -m venv --without-pip "$WORK/venv"
    local pip_wheel
    pip_wheel="$(ls "$WHEELS"/pip-*.whl 2>/dev/null | head -1 || true)"
    if [ -z "$pip_wheel" ]; then say "no pip wheel in $WHEELS to bootstrap pip"; exit 2; fi
    "$WORK/venv/bin/python" "$pip_wheel/pip" install -q --no-index "$pip_wheel"
  fi
}

if [ -n "$VENV" ]; then
  [ -x "$VENV/bin/python" ] || { say "no $VENV/bin/python"; exit 2; }
  PY="$(cd "$VENV" && pwd)/bin/python"
  say "using the venv $VENV as it is"
elif [ -d "$WHEELS" ]; then
  make_venv
  say "installing hpcbatch offline from $WHEELS"
  if ! "$WORK/venv/bin/python" -m pip install -q --no-index --find-links "$WHEELS" "$REPO"; then
    say "WARNING: building this tree failed; installing the wheelhouse's prebuilt hpcbatch wheel"
    say "WARNING: that wheel is as old as the wheelhouse, not this tree"
    "$WORK/venv/bin/python" -m pip install -q --no-index --find-links "$WHEELS" hpcbatch
  fi
  PY="$WORK/venv/bin/python"
else
  make_venv
  say "no wheelhouse at $WHEELS: installing hpcbatch from the package index"
  "$WORK/venv/bin/python" -m pip install -q "$REPO"
  PY="$WORK/venv/bin/python"
fi
"$PY" -c 'import hpcbatch, hpcbatch_agent' || { say "hpcbatch does not import with $PY"; exit 2; }
say "setup took $(( $(date +%s) - START )) s"

# --- 2. a head with one LOCAL node ----------------------------------------------------------------
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ENDPOINT="http://127.0.0.1:$PORT"
mkdir -p "$WORK/data"
# Room for every check job at once (vCPUs and memory are only counted, not reserved), so
# that only the one GPU can make the two GPU jobs wait; gpus unset: nvidia-smi's.
cat >"$WORK/head.toml" <<'EOF'
min_timeout_seconds = 1
[local]
nodes = 1
vcpus = 32
memory_mib = 65536
EOF
(cd "$WORK" && exec "$PY" -m hpcbatch.cli.main head --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" \
  --config "$WORK/head.toml" --log-level warning >"$WORK/head.log" 2>&1) &
HEAD_PID=$!
for _ in $(seq 1 300); do
  if ! kill -0 "$HEAD_PID" 2>/dev/null; then say "the head exited:"; cat "$WORK/head.log" >&2; exit 2; fi
  if "$PY" -m hpcbatch.cli.main -e "$ENDPOINT" health >/dev/null 2>&1; then break; fi
  sleep 0.1
done
"$PY" -m hpcbatch.cli.main -e "$ENDPOINT" health >&2 || { say "the head never answered"; exit 2; }

# --- 3. the checks ------------------------------------------------------------------------------
OUT_FILE=""
if [ -n "${OUT:-}" ]; then OUT_FILE="$OUT/gpu_check.txt"; fi
trap - ERR
set +e
(cd "$REPO" && "$PY" -m bench.gpu_check run --endpoint "$ENDPOINT" --out "$OUT_FILE" \
  --head-log "$WORK/head.log" ${ONLY:+--only "$ONLY"})
RC=$?
set -e
exit "$RC"
