"""Nobody but root can steer a dev cluster: ``up`` refuses a directory someone else could have
made or can change, and ``down`` refuses a descriptor that names what is not its own (a path
outside its directory, another cluster's sshd, another cluster's prefix) or that someone else
could have written. Real namespaces and sshd (root)."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from hpcbatch.devcluster import DevCluster, DevClusterError, processes
from hpcbatch.devcluster import descriptor as desc

from .conftest import Clusters, fresh_prefix, require_root

HPCBATCH = Path(sys.executable).parent / "hpcbatch"
NOBODY = pwd.getpwnam("nobody").pw_uid


@pytest.fixture(autouse=True)
def _root() -> None:
    require_root()


def down_cli(base_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HPCBATCH), "dev-cluster", "down", "--dir", str(base_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def refused_up(clusters: Clusters, name: str) -> str:
    """``up`` into ``clusters.root / name``; the refusal's message."""
    with pytest.raises(DevClusterError) as raised:
        clusters.up(name, hosts=1, prefix=fresh_prefix(), disk_mib=0)
    return raised.value.message


def test_up_makes_its_directory_root_only(clusters: Clusters) -> None:
    cluster = clusters.up("made", hosts=1)
    st = os.lstat(cluster.base_dir)  # 0711: a job's user reaches its work dir, lists nothing
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o711)
    secret = [cluster.base_dir / desc.DESCRIPTOR, cluster.key_path]
    secret += [h.disk_image for h in cluster.hosts if h.disk_image is not None]
    for path in secret:
        st = os.lstat(path)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600), path
    assert not (cluster.base_dir / "authorized_keys").exists()  # the key is in sshd_config
    assert all(s["alive"] and s["reachable"] for s in cluster.status())


def test_up_refuses_a_directory_another_user_made(clusters: Clusters) -> None:
    planted = clusters.root / "planted"
    planted.mkdir(mode=0o755)
    os.chown(planted, NOBODY, NOBODY)
    message = refused_up(clusters, "planted")
    assert f"{planted} (owner nobody (uid {NOBODY}), mode drwxr-xr-x) is not owned by root" in (
        message
    )
    assert os.listdir(planted) == []
    planted.rmdir()


def test_up_refuses_a_directory_anyone_can_write(clusters: Clusters) -> None:
    open_dir = clusters.root / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    message = refused_up(clusters, "open")
    assert f"{open_dir} (owner root (uid 0), mode drwxrwxrwx) is writable by group or others" in (
        message
    )
    assert os.listdir(open_dir) == []
    open_dir.rmdir()


def test_up_refuses_a_symlink_in_place_of_its_directory(clusters: Clusters) -> None:
    target = clusters.root / "elsewhere"
    target.mkdir(mode=0o700)
    (clusters.root / "link").symlink_to(target)
    assert "is not a directory" in refused_up(clusters, "link")
    assert os.listdir(target) == []
    (clusters.root / "link").unlink()


def test_up_refuses_a_directory_below_one_anyone_can_write(clusters: Clusters) -> None:
    above = clusters.root / "shared"
    above.mkdir()
    os.chmod(above, 0o777)  # not sticky: anyone could rename what root makes in it
    message = refused_up(clusters, "shared/cluster")
    assert f"{above} (owner root (uid 0), mode drwxrwxrwx) is writable by group" in message
    assert os.listdir(above) == []


def forge(where: Path, planned: desc.Descriptor) -> Path:
    """A root-only directory ``where`` holding ``planned`` as its cluster.json."""
    where.mkdir(mode=0o700)
    path = where / desc.DESCRIPTOR
    path.write_text(desc.to_json(planned))
    os.chmod(path, 0o600)
    return where


def test_down_refuses_a_descriptor_naming_another_directory(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    (victim / "hosts" / "keep").mkdir(parents=True)
    (victim / desc.KNOWN_HOSTS).write_text("precious\n")
    planned = desc.plan(victim, fresh_prefix(), IPv4Network("10.0.0.0/24"), 1, False)
    forged = forge(tmp_path / "forged", planned)
    result = down_cli(forged)
    assert result.returncode == 1
    assert f"its directory is {victim}, but it lies in {forged}" in result.stderr
    assert (victim / "hosts" / "keep").is_dir()
    assert (victim / desc.KNOWN_HOSTS).read_text() == "precious\n"


def test_down_refuses_a_descriptor_naming_another_clusters_sshd(
    clusters: Clusters, tmp_path: Path
) -> None:
    other = clusters.up("other", hosts=1, disk_mib=0)
    (theirs,) = other.hosts
    planned = desc.plan(tmp_path / "forged", fresh_prefix(), IPv4Network("10.0.0.0/24"), 1, False)
    (mine,) = planned.hosts
    pointed = replace(mine, host_dir=theirs.host_dir, sshd_pid=theirs.sshd_pid)
    forged = forge(tmp_path / "forged", replace(planned, hosts=(pointed,)))
    with pytest.raises(DevClusterError, match=r"hosts\[0\]\.host_dir is .* not "):
        DevCluster.load(forged).down()
    assert processes.is_alive(theirs.sshd_pid)
    assert all(s["alive"] and s["reachable"] for s in other.status())


def test_down_refuses_another_clusters_prefix(clusters: Clusters, tmp_path: Path) -> None:
    other = clusters.up("other", hosts=1, disk_mib=0)
    # Consistent in itself, in a root-only directory: only the prefix is not its own.
    planned = desc.plan(tmp_path / "forged", other.prefix, IPv4Network(other.subnet), 1, False)
    forged = forge(tmp_path / "forged", planned)
    result = down_cli(forged)
    assert result.returncode == 1
    assert f"prefix {other.prefix} belongs to the dev cluster in {other.base_dir}" in (
        result.stderr
    )
    assert all(s["alive"] and s["reachable"] and s["link"] == "up" for s in other.status())


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        (lambda d: os.chmod(d, 0o777), "mode drwxrwxrwx) is writable by group or others"),
        (lambda d: os.chown(d, NOBODY, 0), f"owner nobody (uid {NOBODY}), mode drwx------"),
        (lambda d: os.chmod(d / desc.DESCRIPTOR, 0o666), "mode -rw-rw-rw-) is writable by"),
        (lambda d: os.chown(d / desc.DESCRIPTOR, NOBODY, 0), "-rw-------) is not owned by root"),
    ],
)
def test_down_refuses_files_someone_else_could_have_written(
    tmp_path: Path, change: Callable[[Path], None], phrase: str
) -> None:
    planned = desc.plan(tmp_path / "c", fresh_prefix(), IPv4Network("10.0.0.0/24"), 1, False)
    forged = forge(tmp_path / "c", planned)
    (forged / desc.HOSTS_DIR).mkdir()
    (forged / desc.HOSTS_DIR / "keep").write_text("kept")
    change(forged)
    result = down_cli(forged)
    assert result.returncode == 1
    assert phrase in result.stderr and "refusing" in result.stderr
    assert (forged / desc.HOSTS_DIR / "keep").read_text() == "kept"
