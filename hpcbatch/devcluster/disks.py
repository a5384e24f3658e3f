"""Each dev host's own disk: an ext4 filesystem (with a journal) in a sparse file, loop-mounted
where the host keeps its agent's state.

Why: a real compute host writes its spool, job logs and work dirs to its own disk. Without one,
every dev host shares the machine's root filesystem, and what one cluster does there costs the
next: on an ext4 *without a journal* (as on this project's VMs) creating a file skips, one
lookup each, every inode of its block group freed in the last minutes (ext4's
``recently_deleted`` check). Right after a cluster holding 50,000 job logs was removed, each new
job's log file cost 150-650 us to create instead of ~20 us: the removed cluster slowed the next
one by a fifth. A journaled filesystem per host makes no such check, and ``down`` removes one
image file per host, not every file the jobs made.

Vocabulary:
    image       ``DIR/hosts/<host>/disk.img``, sparse: it takes only what is written
                (~16 MiB of journal at first).
    mount       the image mounted with ``-o loop`` (the loop device is freed at unmount) on
                ``DIR/hosts/<host>/disk``; the agent's state dir is ``disk/agent``.
    no disk     ``--disk-mib 0``, or a machine that cannot make one (no mkfs.ext4, no loop
                devices, e.g. in an unprivileged container): the state dir is a plain dir on
                the cluster's filesystem, and the reason is kept in the descriptor.

The command lines are built by pure functions; ``Runner`` runs them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from hpcbatch_agent.cgroups import unescape_mount_path

from hpcbatch.devcluster.errors import DevClusterError
from hpcbatch.devcluster.network import Argv, Runner

MKFS = "mkfs.ext4"
IMAGE = "disk.img"
MOUNT_DIR = "disk"
DEFAULT_MIB = 2048
MIN_MIB = 64
BYTES_PER_INODE = 8192  # a job log is usually small: plenty of inodes per MiB
JOURNAL_MIB = 16
MOUNTINFO = "/proc/self/mountinfo"


def check_size(disk_mib: int) -> str | None:
    """Why ``disk_mib`` is refused, or None."""
    if disk_mib == 0 or disk_mib >= MIN_MIB:
        return None
    return f"disk_mib must be 0 (no disk of its own per host) or at least {MIN_MIB}, not {disk_mib}"


def mkfs_argv(image: Path, size_mib: int, label: str) -> Argv:
    inodes = size_mib * 1024 * 1024 // BYTES_PER_INODE
    # -q quiet, -F a regular file is fine, -N inode count, -J journal size, -L label (16 bytes)
    return [
        MKFS,
        "-q",
        "-F",
        "-N",
        str(inodes),
        "-J",
        f"size={JOURNAL_MIB}",
        "-L",
        label[:16],
        str(image),
    ]


def mount_argv(image: Path, mountpoint: Path) -> Argv:
    return ["mount", "-o", "loop,noatime", str(image), str(mountpoint)]


def umount_argvs(mountpoint: str) -> list[Argv]:
    """A plain unmount, then a lazy one (detached now, freed when the last user lets go)."""
    return [["umount", mountpoint], ["umount", "-l", mountpoint]]


def make(runner: Runner, image: Path, mountpoint: Path, size_mib: int, label: str) -> str | None:
    """Make and mount one host's disk; None when it is mounted, else why not (nothing is left
    behind then)."""
    if shutil.which(MKFS) is None:
        return f"{MKFS} not found (on Debian: apt-get install e2fsprogs)"
    mountpoint.mkdir(parents=True, exist_ok=True)
    try:
        # 0600: the image holds every job's log and work files, whoever ran them
        fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.truncate(size_mib * 1024 * 1024)
        runner.run(mkfs_argv(image, size_mib, label))
        runner.run(mount_argv(image, mountpoint))
    except (OSError, DevClusterError) as exc:
        with contextlib.suppress(OSError):
            image.unlink()
        return str(exc)
    return None


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first (as the kernel lists them)."""
    prefix = str(root).rstrip("/") + "/"
    found = []
    try:
        with open(MOUNTINFO, encoding="utf-8") as info:
            lines = info.read().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            point = unescape_mount_path(fields[4])
            if point.startswith(prefix) or point == prefix[:-1]:
                found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_all(runner: Runner, root: Path) -> list[str]:
    """Unmount everything mounted at or below ``root``; the mount points still mounted."""
    for point in mounts_under(root):
        for argv in umount_argvs(point):
            if runner.run(argv, check=False).returncode == 0:
                break
    return mounts_under(root)


def is_mounted(path: Path) -> bool:
    return str(path) in mounts_under(path)
