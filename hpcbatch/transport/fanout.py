"""Admin commands run on many SSH hosts at once, with fabric.

Vocabulary:
    fan-out   a shell command run on every chosen host in parallel (a fabric Connection
              per host, one thread each, at most MAX_PARALLEL at a time; unlike fabric's
              ThreadingGroup, each host may get its own command line, as stopping agents
              needs), each connection made as the head makes its own (``ssh.py``):
              the host's user, port and key only (no SSH agent, no ~/.ssh keys, no
              ~/.ssh/config), its host key checked against its known_hosts and refused when
              unknown unless the host is trusted on first use.
    outcome   per host: the exit code and output, or why the command could not run there
              (unreachable, authentication, host key, timeout). One host's failure never
              stops or hides the others.

The head keeps one long-lived paramiko connection per host for jobs (``ssh.py``); this module
is for the admin's occasional whole-cluster commands (``hpcbatch hosts``), which want short
connections, parallelism and per-host results, which is what fabric is for.
"""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import paramiko
from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut

from hpcbatch.transport.ssh import CONNECT_TIMEOUT_S, SshHost, connect_error, host_policy
from hpcbatch.transport.zipapp import agent_file_name, build_agent_zipapp

MAX_PARALLEL = 64


@dataclass(frozen=True)
class Outcome:
    host: str
    exit_code: int | None  # None: the command did not run (or did not finish) there
    stdout: str
    stderr: str
    error: str | None = None  # why it did not run or finish

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _connection(host: SshHost) -> Connection:
    config = Config(overrides={"load_ssh_configs": False})
    connection = Connection(
        host.address,
        user=host.user,
        port=host.port,
        config=config,
        connect_timeout=int(CONNECT_TIMEOUT_S),
        connect_kwargs={
            "key_filename": str(host.key),
            "allow_agent": False,
            "look_for_keys": False,
            "banner_timeout": CONNECT_TIMEOUT_S,
            "auth_timeout": CONNECT_TIMEOUT_S,
        },
    )
    if host.known_hosts is not None and host.known_hosts.exists():
        connection.client.load_host_keys(str(host.known_hosts))
    connection.client.set_missing_host_key_policy(host_policy(host))
    return connection


def run_everywhere(
    hosts: list[SshHost], command: str, timeout_s: float | None = None
) -> list[Outcome]:
    """Run ``command`` (a shell command line) on every host at once; one outcome per host,
    in the hosts' order."""
    return run_each(hosts, [command] * len(hosts), timeout_s)


def run_each(
    hosts: list[SshHost], commands: list[str], timeout_s: float | None = None
) -> list[Outcome]:
    """Run ``commands[i]`` on ``hosts[i]``, all at once (fabric connections, one thread per
    host); one outcome per host, in the hosts' order."""
    if len(commands) != len(hosts):
        raise ValueError("one command per host")
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(hosts)) or 1) as pool:
        return list(
            pool.map(lambda host, command: _run_one(host, command, timeout_s), hosts, commands)
        )


def _run_one(host: SshHost, command: str, timeout_s: float | None) -> Outcome:
    connection = _connection(host)
    try:
        result = connection.run(command, hide=True, warn=True, timeout=timeout_s, in_stream=False)
    except CommandTimedOut:
        return Outcome(host.name, None, "", "", f"timed out after {timeout_s}s")
    except (paramiko.SSHException, OSError, EOFError) as exc:
        return Outcome(host.name, None, "", "", connect_error(host, exc))
    except Exception as exc:  # whatever else one host raises, the others' outcomes stand
        return Outcome(host.name, None, "", "", f"failed: {type(exc).__name__}: {exc}")
    finally:
        connection.close()
    if host.trust_on_first_use and host.known_hosts is not None:
        connection.client.save_host_keys(str(host.known_hosts))
    return Outcome(host.name, result.exited, result.stdout, result.stderr)


def stop_agent_command(host: SshHost, kill_jobs: bool) -> str:
    """The shell command that stops the agent this head installed on ``host`` (a host with
    none installed has nothing to stop)."""
    version, _ = build_agent_zipapp()
    pyz = f"{host.state_dir}/bin/{agent_file_name(version)}"
    argv = [host.python, "-I", pyz, "stop", "--state-dir", host.state_dir]
    if kill_jobs:
        argv.append("--kill-jobs")
    quoted = shlex.quote(pyz)
    return f"test -e {quoted} || {{ echo 'no hpcbatch agent installed'; exit 0; }}; " + shlex.join(
        argv
    )
