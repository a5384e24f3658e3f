"""The variables that make a bare ``mpirun``/``mpiexec`` on a multi-node job's main node start
its remote daemons through a given launcher, with no flag (issue 8 item 4): a re-export of the
agent's ``hpcbatch_agent.mpienv``, which sets them on each node, so there is one copy."""

from hpcbatch_agent.mpienv import OPENMPI_ROOT, LaunchEnvError, launch_environment

__all__ = ["OPENMPI_ROOT", "LaunchEnvError", "launch_environment"]
