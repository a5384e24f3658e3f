#!/usr/bin/env bash
# Build what the head role installs from: the hpcbatch wheel of this tree and a wheelhouse of
# its dependencies, for hosts with no package index (or to pin exactly what a cluster runs):
#
#   bash ansible/build-wheels.sh DIR [PYTHON]
#
# DIR gets hpcbatch-<version>-py3-none-any.whl and wheels/ (every runtime dependency, as wheels
# for PYTHON's version and platform: default python3, which must match the head's Python and
# CPU). Then, in the inventory: head_wheel: DIR/hpcbatch-...whl, head_wheelhouse:
# DIR/wheels. Idempotent: an existing DIR is refreshed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:?usage: build-wheels.sh DIR [PYTHON]}"
PYTHON="${2:-python3}"
mkdir -p "$DIR/wheels"
rm -f "$DIR"/hpcbatch-*.whl
REQS="$(mktemp)"
trap 'rm -f "$REQS"' EXIT
"$PYTHON" - "$REPO/pyproject.toml" >"$REQS" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    for requirement in tomllib.load(handle)["project"]["dependencies"]:
        print(requirement)
PY
quiet() {  # pip's warnings only when it fails
  local log
  log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; return 1; fi
  rm -f "$log"
}
quiet "$PYTHON" -m pip download -q --disable-pip-version-check --only-binary=:all: \
  --dest "$DIR/wheels" -r "$REQS"
had_build=0; [ -e "$REPO/build" ] && had_build=1
quiet "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps --wheel-dir "$DIR" "$REPO"
[ "$had_build" = 1 ] || rm -rf "$REPO/build"  # setuptools' in-tree build dir, made just now
echo "$(ls "$DIR"/hpcbatch-*.whl) and $(ls "$DIR/wheels" | wc -l) dependency wheels in $DIR/wheels"
