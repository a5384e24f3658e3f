# Sourced by scripts/demo.sh and scripts/test.sh: install what is missing, quietly and
# idempotently. Usage: setup_env "<pip target>" [apt packages the caller also needs...]

# pip and setuptools print warnings even with -q; show their output only when they fail.
pip_quiet() {
  local log
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    cat "$log"; rm -f "$log"; return 1
  fi
  rm -f "$log"
}

# $1: what to pip-install into .venv; the rest: "check:package" pairs for apt.
setup_env() {
  local target=$1 need_apt=() pair
  shift
  python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
  for pair in "$@"; do
    sh -c "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair##*:}")
  done
  if [ ${#need_apt[@]} -gt 0 ]; then
    echo "apt: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Install daemons (openssh-server) without starting them: tests start their own sshd.
    local no_start=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      no_start=1
    fi
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    [ -z "$no_start" ] || rm -f /usr/sbin/policy-rc.d
  fi
  [ -x .venv/bin/python ] || python3 -m venv .venv
  pip_quiet --upgrade pip
  # mpi4py from its prebuilt wheel only: a source build takes minutes (testbed.md).
  pip_quiet --only-binary=mpi4py -e "$target"
}
