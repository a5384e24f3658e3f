#!/usr/bin/env bash
# Install what the tests need (apt, then pip into .venv) and run the whole test suite.
# Idempotent and quiet: a second run installs nothing. Run as root on Debian 12 (or any machine
# where the apt step is already satisfied).
set -euo pipefail
cd "$(dirname "$0")/.."

# pip and setuptools print warnings even with -q; show their output only when they fail.
pip_quiet() {
  local log
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    cat "$log"; rm -f "$log"; return 1
  fi
  rm -f "$log"
}

need_apt=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)  # dev-cluster hosts (tests/devcluster)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "apt: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
pip_quiet --upgrade pip
pip_quiet -e '.[test]'

.venv/bin/ruff check hpcbatch agents tests bench
.venv/bin/mypy --strict hpcbatch/core
exec .venv/bin/python -m pytest "$@"
