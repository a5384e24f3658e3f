#!/usr/bin/env bash
# Install what the tests need (apt, then pip into .venv) and run the whole test suite.
# Idempotent and quiet: a second run installs nothing. Run as root on Debian 12 (or any machine
# where the apt step is already satisfied).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/setup.sh
setup_env '.[test]' \
  'test -x /usr/sbin/sshd:openssh-server' \
  'command -v ip:iproute2' \
  'command -v ssh:openssh-client' \
  'test -x /usr/bin/mpirun.openmpi:openmpi-bin' \
  'test -x /usr/bin/mpiexec.hydra:mpich' \
  'command -v cc:gcc' \
  'test -e /usr/include/stdio.h:libc6-dev' \
  'command -v promtool:prometheus' \
  'command -v vagrant:vagrant' \
  'dpkg -s vagrant-libvirt:vagrant-libvirt' \
  'command -v systemd-analyze:systemd' \
  'command -v openssl:openssl' \
  'command -v slurmctld:slurm-wlm' \
  'command -v munged:munge' \
  'dpkg -s libpmix-dev:libpmix-dev' \
  'command -v slurmdbd:slurmdbd' \
  'command -v mariadbd:mariadb-server' \
  'test -x /usr/bin/chromium:chromium' \
  'test -d /usr/share/fonts/truetype/dejavu:fonts-dejavu-core'

.venv/bin/ruff check hpcbatch agents tests bench
.venv/bin/mypy --strict hpcbatch/core
.venv/bin/mypy agents/hpcbatch_agent
# Two workers: most tests wait on processes, hosts and daemons, not on the CPU. Each module stays
# on one worker (tests/conftest.py), so its fixtures start once and its order holds. The tests
# marked solo measure the machine's CPUs, so they run after the rest, alone.
status=0
.venv/bin/python -m pytest -n 2 -m "not solo" "$@" || status=$?
.venv/bin/python -m pytest -p no:xdist -m solo "$@" || { rc=$?; [ "$rc" = 5 ] || status=$rc; }
exit "$status"
