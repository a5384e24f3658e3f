"""bench/cgroup_probe.py's pure part: which directories a job's cgroups are, from its
/proc/self/cgroup and /proc/self/mountinfo, on a pure v2 host, a hybrid one and in a container."""

from __future__ import annotations

from bench import cgroup_probe

PURE_V2_MOUNTINFO = (
    "24 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n"
    "30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n"
)
HYBRID_MOUNTINFO = (
    "40 39 0:35 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755\n"
    "41 40 0:36 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    "42 40 0:37 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
    "43 40 0:38 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
    "44 40 0:39 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids\n"
)
HYBRID_CGROUP = (
    "5:pids:/hpcbatch/local-1.ab/s0\n"
    "4:memory:/hpcbatch/local-1.ab/s0\n"
    "3:cpu,cpuacct:/hpcbatch/local-1.ab/s0\n"
    "1:name=systemd:/\n"
    "0::/\n"
)


def test_a_pure_v2_job_has_one_dir() -> None:
    dirs = cgroup_probe.cgroup_dirs("0::/hpcbatch/local-1.ab/s3\n", PURE_V2_MOUNTINFO)
    assert dirs == ["/sys/fs/cgroup/hpcbatch/local-1.ab/s3"]


def test_a_hybrid_job_has_a_dir_per_mounted_hierarchy() -> None:
    assert cgroup_probe.cgroup_dirs(HYBRID_CGROUP, HYBRID_MOUNTINFO) == [
        "/sys/fs/cgroup/pids/hpcbatch/local-1.ab/s0",
        "/sys/fs/cgroup/memory/hpcbatch/local-1.ab/s0",
        "/sys/fs/cgroup/cpu,cpuacct/hpcbatch/local-1.ab/s0",
        "/sys/fs/cgroup/unified",  # name=systemd is not mounted here: no dir
    ]


def test_a_mount_of_a_subtree_is_joined_below_its_root() -> None:
    mountinfo = "30 24 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    dirs = cgroup_probe.cgroup_dirs("0::/docker/abc/hpcbatch/s1\n", mountinfo)
    assert dirs == ["/sys/fs/cgroup/hpcbatch/s1"]


def test_mounts_other_than_cgroups_are_ignored() -> None:
    mounts = cgroup_probe.cgroup_mounts(HYBRID_MOUNTINFO)
    assert [(m[0], m[2]) for m in mounts] == [
        ("/sys/fs/cgroup/unified", 2),
        ("/sys/fs/cgroup/cpu,cpuacct", 1),
        ("/sys/fs/cgroup/memory", 1),
        ("/sys/fs/cgroup/pids", 1),
    ]
    assert mounts[1][3] >= {"cpu", "cpuacct"}


def test_this_processs_own_cgroup_line_lists_its_dirs() -> None:
    info = cgroup_probe.own_cgroups()
    assert info["probe"] == "cgroup" and info["proc_self_cgroup"]
    assert all(isinstance(files, dict) for files in info["dirs"].values())
