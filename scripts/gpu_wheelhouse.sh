#!/usr/bin/env bash
# Build the wheelhouse bench/gpu_check.sh installs hpcbatch from on a host with no package
# registry (the GPU machine: Ubuntu 24.04, CPython 3.12, x86-64):
#
#   bash scripts/gpu_wheelhouse.sh [DIR]        # default ./wheels (gitignored); PYVER=3.12
#
# It holds, as binary wheels for that interpreter and platform: hpcbatch's runtime dependencies
# (pyproject.toml [project].dependencies, with theirs), the build backend ([build-system].requires,
# so `pip install --no-index --find-links DIR .` can build this tree there), pip (to bootstrap a
# venv where python3 has no ensurepip), and a prebuilt hpcbatch wheel of this tree as it is now
# (gpu_check.sh falls back to it only if building the tree fails). It must stay under the device
# tool's 64 MiB carry limit: the size is printed, and over 60 MiB is an error.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$REPO/wheels}"
PYVER="${PYVER:-3.12}"
PYTHON="${PYTHON:-python3}"
LIMIT_MIB=60

mkdir -p "$DIR"
rm -f "$DIR"/*.whl
REQS="$(mktemp)"
trap 'rm -f "$REQS"' EXIT
"$PYTHON" - "$REPO/pyproject.toml" >"$REQS" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    project = tomllib.load(handle)
for requirement in project["project"]["dependencies"] + project["build-system"]["requires"]:
    print(requirement)
print("pip")
EOF
echo "requirements:" $(cat "$REQS")

# manylinux tags pip matches one by one; Ubuntu 24.04's glibc 2.39 runs all of them.
PLATFORMS=()
for tag in manylinux_2_34 manylinux_2_28 manylinux_2_17 manylinux2014 manylinux_2_5 manylinux1; do
  PLATFORMS+=(--platform "${tag}_x86_64")
done
"$PYTHON" -m pip download -q --dest "$DIR" --only-binary=:all: --implementation cp \
  --python-version "$PYVER" "${PLATFORMS[@]}" -r "$REQS"
had_build=0; [ -e "$REPO/build" ] && had_build=1
"$PYTHON" -m pip wheel -q --no-deps --wheel-dir "$DIR" "$REPO"
[ "$had_build" = 1 ] || rm -rf "$REPO/build"  # setuptools' in-tree build dir, made just now

ls -1 "$DIR"
SIZE_KIB="$(du -sk "$DIR" | cut -f1)"
echo "wheelhouse $DIR: $(ls "$DIR"/*.whl | wc -l) wheels, $((SIZE_KIB / 1024)) MiB (Python $PYVER)"
if [ "$SIZE_KIB" -gt $((LIMIT_MIB * 1024)) ]; then
  echo "over $LIMIT_MIB MiB: too large to carry to the device machine" >&2
  exit 1
fi
