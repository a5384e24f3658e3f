"""Dev cluster: N compute hosts on one machine, each a network namespace with a real OpenSSH
sshd, for tests and for trying hpcbatch without spare machines.

    cluster = DevCluster.up(Path("/var/lib/hpcbatch-devcluster"), hosts=4)
    ... ssh root@cluster.hosts[0].address -i cluster.key_path (known_hosts: cluster.known_hosts_path)
    cluster.down()

Linux and root only. The cluster's directory is root's alone (made 0711 by ``up``; an existing
one must be owned by root and not writable by others): see ``ownership.py`` and
docs/dev-cluster.md.
"""

from __future__ import annotations

from hpcbatch.devcluster.cluster import DevCluster
from hpcbatch.devcluster.descriptor import DevHost
from hpcbatch.devcluster.errors import DevClusterError

__all__ = ["DevCluster", "DevClusterError", "DevHost", "default_dir"]

DIR_ENV = "HPCBATCH_DEVCLUSTER_DIR"
DEFAULT_DIR = "/var/lib/hpcbatch-devcluster"  # not /tmp: anyone could make it first


def default_dir(environ: dict[str, str] | None = None) -> str:
    """``$HPCBATCH_DEVCLUSTER_DIR``, else /var/lib/hpcbatch-devcluster."""
    import os

    environ = dict(os.environ) if environ is None else environ
    return environ.get(DIR_ENV) or DEFAULT_DIR
