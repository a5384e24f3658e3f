#!/usr/bin/env bash
# Install hpcbatch into .venv, start a head with its embedded LOCAL compute environment (two
# virtual nodes) and SQLite state, run a real demo workload you can watch, and stop cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/setup.sh
setup_env .
export PATH="$PWD/.venv/bin:$PATH"

data=$(mktemp -d /tmp/hpcbatch-demo.XXXXXX)
port=${HPCBATCH_DEMO_PORT:-7650}
export HPCBATCH_ENDPOINT="http://127.0.0.1:$port"
# Two virtual nodes (127.0.0.2, 127.0.0.3) of one vCPU each: one MPI slot per node, so the
# 2-node MPI job below runs one rank on each.
printf '[local]\nnodes = 2\nvcpus = 1\n' >"$data/head.toml"
hpcbatch head --data-dir "$data" --config "$data/head.toml" --listen "127.0.0.1:$port" \
  --log-level warning &
head_pid=$!
# Alive and not a zombie (a container's init may be slow to reap what it inherits).
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
stop_head() {
  local status=$? pidfile pid left=()
  kill -TERM "$head_pid" 2>/dev/null || true
  wait "$head_pid" 2>/dev/null || true   # the head ends on SIGTERM, letting its idle agents go
  # Each agent leaves on its own once its head is gone and it runs no job: wait for it by the
  # PID in its pidfile, and stop (and report) one that stays, so the demo never leaves a process.
  for pidfile in $(find "$data" -name agent.pid 2>/dev/null); do
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    for _ in $(seq 200); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then left+=("$pid"); kill -TERM "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$data"
  if [ ${#left[@]} -gt 0 ]; then
    echo "demo: agents ${left[*]} were still running after the head stopped: stopped them" >&2
    status=1
  fi
  exit "$status"
}
trap stop_head EXIT
for _ in $(seq 200); do hpcbatch health >/dev/null 2>&1 && break; sleep 0.05; done
if ! alive "$head_pid" || ! hpcbatch health >/dev/null 2>&1; then
  echo "demo: the head did not start on 127.0.0.1:$port (set HPCBATCH_DEMO_PORT to use another port)" >&2
  exit 1
fi

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; }

step "1. hello world: submit, wait, read its log" "hpcbatch submit --wait -- sh -c 'echo hello from \$AWS_BATCH_JOB_ID'"
hello=$(hpcbatch submit --name hello --wait -- sh -c 'echo "hello from $AWS_BATCH_JOB_ID on $(hostname)"')
hpcbatch logs "$hello"

step "2. an array job of 20 children, each sees its index" "hpcbatch submit --array-size 20 --wait -- sh -c '...'"
array=$(hpcbatch submit --name squares --array-size 20 --wait -- \
  sh -c 'i=$AWS_BATCH_JOB_ARRAY_INDEX; echo "$i squared is $((i * i))"')
hpcbatch logs "$array:7"
hpcbatch jobs --array "$array" --state SUCCEEDED | head -5

step "3. a dependency chain: prepare -> compute -> report" "hpcbatch submit --depends-on ID ..."
prepare=$(hpcbatch submit --name prepare -- sh -c 'sleep 1; echo prepared')
compute=$(hpcbatch submit --name compute --depends-on "$prepare" -- sh -c 'echo computed')
hpcbatch describe "$compute" | head -4
report=$(hpcbatch submit --name report --depends-on "$compute" --wait -- sh -c 'echo report done')
hpcbatch logs "$report"

step "4. a job that fails once and is retried" "hpcbatch submit --retry 2 --wait -- sh -c '...'"
flaky=$(hpcbatch submit --name flaky --retry 2 --wait -- sh -c \
  'if [ "$AWS_BATCH_JOB_ATTEMPT" = 1 ]; then echo "attempt 1: failing on purpose"; exit 1; fi; echo "attempt $AWS_BATCH_JOB_ATTEMPT: ok"')
hpcbatch describe "$flaky"
hpcbatch logs "$flaky" --attempt 1

step "5. a 2-node MPI job: mpirun on the main node, one rank per node, no MPI flag" \
  "hpcbatch submit --nodes 2 --wait -- mpirun -n 2 python3 hello_mpi.py"
if command -v mpirun >/dev/null 2>&1 && python3 -c 'import mpi4py' 2>/dev/null; then
  cat >"$data/hello_mpi.py" <<'PY'
from mpi4py import MPI
world = MPI.COMM_WORLD
total = world.allreduce(world.Get_rank(), op=MPI.SUM)
# The virtual node whose allocation (cgroup slot) this rank runs in: rank 1 was started there
# through that node's hpcbatch agent, not by ssh.
where = next((line.split("/hpcbatch/")[1].split(".")[0] for line in open("/proc/self/cgroup")
              if "/hpcbatch/" in line), "(no cgroups here)")
print(f"rank {world.Get_rank()} of {world.Get_size()} runs in {where}; allreduce = {total}",
      flush=True)
PY
  mpi=$(hpcbatch submit --name mpi-hello --nodes 2 --timeout 120 --wait -- \
    mpirun -n 2 python3 "$data/hello_mpi.py")
  hpcbatch describe "$mpi"
  hpcbatch logs "$mpi#0"
else
  echo "skipped: needs mpirun and mpi4py (e.g. apt-get install openmpi-bin; .venv/bin/pip install --only-binary=mpi4py mpi4py)"
fi

step "6. everything that ran" "hpcbatch jobs --all"
hpcbatch jobs --all
hpcbatch nodes
echo
echo "demo done: stopping the head"
