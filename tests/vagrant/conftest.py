"""Shared by the Vagrant tests: the recorded outputs, Debian's vagrant (required under CI),
an environment that keeps vagrant off the developer's own setup, and a stand-in ``vagrant``
that replays recorded outputs."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VAGRANT_DIR = ROOT / "vagrant"
RECORDED = Path(__file__).resolve().parent / "recorded"
SETTINGS = (
    "HPCBATCH_VAGRANT_COMPUTE",
    "HPCBATCH_VAGRANT_BOX",
    "HPCBATCH_VAGRANT_CPUS",
    "HPCBATCH_VAGRANT_MEMORY",
    "HPCBATCH_VAGRANT_SUBNET",
    "HPCBATCH_VAGRANT_DIR",
)
INSTALL = "scripts/test.sh installs the vagrant and vagrant-libvirt packages"


def require_vagrant() -> str:
    """The path of Debian's vagrant; under CI its absence fails."""
    path = shutil.which("vagrant")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"vagrant is missing: {INSTALL}")
        pytest.skip("vagrant is not installed (apt-get install vagrant vagrant-libvirt)")
    return path


def import_python_vagrant() -> Any:
    """python-vagrant (the ``vagrant`` module); under CI its absence fails, elsewhere the
    calling test module is skipped."""
    try:
        import vagrant
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("python-vagrant is missing: it is a dependency of hpcbatch vagrant")
        pytest.skip(
            "python-vagrant is not installed (pip install python-vagrant)", allow_module_level=True
        )
    return vagrant


@pytest.fixture(scope="session")
def vagrant_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VAGRANT_HOME of the tests' own (never ~/.vagrant.d), shared: vagrant fills it once."""
    return tmp_path_factory.mktemp("vagrant-home")


@pytest.fixture
def vagrant_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vagrant_home: Path
) -> dict[str, str]:
    """os.environ for a real vagrant: no HPCBATCH_VAGRANT_* of the caller's, its state under
    tmp_path (not vagrant/.vagrant), libvirt as the provider, no version check on the network."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VAGRANT_HOME", str(vagrant_home))
    monkeypatch.setenv("VAGRANT_DOTFILE_PATH", str(tmp_path / "dot-vagrant"))
    monkeypatch.setenv("VAGRANT_CHECKPOINT_DISABLE", "1")
    monkeypatch.setenv("VAGRANT_DEFAULT_PROVIDER", "libvirt")
    return dict(os.environ)


@pytest.fixture
def vagrant_libvirt(vagrant_env: dict[str, str]) -> dict[str, str]:
    """vagrant_env, where vagrant-libvirt is installed (plain validate and status need a
    provider); under CI its absence fails."""
    require_vagrant()
    plugins = subprocess.run(
        ["vagrant", "plugin", "list"], env=vagrant_env, capture_output=True, text=True, timeout=60
    )
    if "vagrant-libvirt" not in plugins.stdout:
        if os.environ.get("CI") == "true":
            pytest.fail(f"vagrant-libvirt is missing: {INSTALL}")
        pytest.skip("vagrant-libvirt is not installed (apt-get install vagrant-libvirt)")
    return vagrant_env


REPLAY = """\
#!/bin/sh
# A stand-in vagrant: records its arguments, prints what the test put beside it.
here=$(dirname "$0")
echo "$*" >> "$here/calls"
case "$1" in
  status) cat "$here/status.txt" ;;
  ssh-config)
    if [ -e "$here/ssh-config.txt" ]; then cat "$here/ssh-config.txt"; else
      echo "The provider for this Vagrant-managed machine is reporting that it" >&2
      echo "is not yet ready for SSH." >&2; exit 1; fi ;;
  up) echo "Bringing machine 'head' up with 'libvirt' provider..." ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"""


class Replay:
    """A ``vagrant`` first on PATH that answers with recorded outputs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        program = directory / "vagrant"
        program.write_text(REPLAY)
        program.chmod(program.stat().st_mode | stat.S_IXUSR)

    def answer(self, status: str, ssh_config: str | None = None) -> None:
        shutil.copy(RECORDED / status, self.directory / "status.txt")
        if ssh_config is not None:
            shutil.copy(RECORDED / ssh_config, self.directory / "ssh-config.txt")

    @property
    def calls(self) -> list[str]:
        path = self.directory / "calls"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Replay:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return Replay(bin_dir)
