"""``hpcbatch vagrant``: the head and compute VMs of ``vagrant/Vagrantfile``, through
python-vagrant (which runs the ``vagrant`` program in the Vagrantfile's directory).

``up`` creates, starts and provisions them (vagrant's own output streams through); ``status``
shows each VM's state; ``ssh-config`` turns ``vagrant ssh-config`` into the head's
``[[compute_environments.hosts]]`` for the compute VMs, for a head on this machine. The parsing
is in :mod:`hpcbatch.provision.vagrant_config`, imported only when this command runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hpcbatch.cli.context import EXIT_OK, Context, warn

DIR_ENV = "HPCBATCH_VAGRANT_DIR"
DEFAULT_STATE_DIR = "/var/lib/hpcbatch-agent"  # the Vagrantfile's hpcbatch_agent_state_dir
EXIT_FAILED = 1

EXIT_CODES = """\
exit codes:
  0  ok
  1  vagrant failed or is missing, or (status) a VM is not running, or (ssh-config) a
     compute VM has no SSH address yet; the reason is on stderr
  2  usage error"""


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "vagrant",
        help="a head and compute VMs from vagrant/Vagrantfile (needs vagrant, python-vagrant)",
        description="Drive vagrant/Vagrantfile: one head VM and N compute VMs on a private "
        "network, provisioned by ansible/site.yml. Settings: HPCBATCH_VAGRANT_* (vagrant/README.md).",
        epilog=EXIT_CODES,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser(
        "up", parents=[common], help="create, start and provision the VMs", epilog=EXIT_CODES
    )
    up.add_argument("--provider", choices=("libvirt", "virtualbox"), help="vagrant's provider")
    up.add_argument(
        "--no-provision", action="store_true", help="start the VMs without running Ansible"
    )
    status = actions.add_parser(
        "status", parents=[common], help="each VM and its state", epilog=EXIT_CODES
    )
    ssh = actions.add_parser(
        "ssh-config",
        parents=[common],
        help="the head's host list (TOML) for the compute VMs, from vagrant ssh-config",
        epilog=EXIT_CODES,
    )
    ssh.add_argument(
        "--known-hosts",
        metavar="FILE",
        help="where the head records the VMs' host keys on first use "
        "(default: DIR/.vagrant/hpcbatch_known_hosts)",
    )
    ssh.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        help=f"the agent's state dir on each VM (default: {DEFAULT_STATE_DIR})",
    )
    ssh.add_argument("--name", default="vagrant", help="the compute environment's name")
    for action in (up, status, ssh):
        action.add_argument(
            "--dir",
            "-d",
            type=Path,
            metavar="DIR",
            help=f"the directory holding the Vagrantfile (default: ${DIR_ENV}, else ./vagrant "
            "if it holds one, else .)",
        )
    parser.set_defaults(func=run)


def vagrant_dir(given: Path | None) -> Path:
    if given is not None:
        return given.absolute()
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV]).absolute()
    here = Path("vagrant")
    return (here if (here / "Vagrantfile").is_file() else Path(".")).absolute()


def run(args: argparse.Namespace, ctx: Context) -> int:
    from hpcbatch.provision.vagrant_config import VagrantError

    directory = vagrant_dir(args.dir)
    try:
        machine = open_vagrant(directory)
        if args.action == "up":
            return up(machine, args)
        if args.action == "status":
            return report_status(machine, ctx)
        sys.stdout.write(host_list(machine, args, directory))
        return EXIT_OK
    except VagrantError as exc:
        warn(f"error: {exc.message}")
        return EXIT_FAILED


def open_vagrant(directory: Path) -> Any:
    from hpcbatch.provision.vagrant_config import VagrantError

    if not (directory / "Vagrantfile").is_file():
        raise VagrantError(f"no Vagrantfile in {directory}: give --dir or ${DIR_ENV}")
    try:
        import vagrant
    except ImportError:
        raise VagrantError("python-vagrant is not installed: pip install python-vagrant") from None
    if not vagrant.get_vagrant_executable():
        raise VagrantError("the vagrant program is not on PATH (Debian: apt-get install vagrant)")
    # vagrant's stderr (why it failed) reaches the user; its stdout is captured where parsed.
    return vagrant.Vagrant(root=str(directory), quiet_stdout=False, quiet_stderr=False)


def call(what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    from hpcbatch.provision.vagrant_config import VagrantError

    try:
        return function(*args, **kwargs)
    except subprocess.CalledProcessError as exc:
        raise VagrantError(f"`vagrant {what}` failed (exit {exc.returncode})") from None


def up(machine: Any, args: argparse.Namespace) -> int:
    provision = False if args.no_provision else None
    call("up", machine.up, provider=args.provider, provision=provision)
    sys.stdout.write(
        f"\nthe VMs are up. The head VM: vagrant ssh head (in {machine.root}).\n"
        f"A head on this machine: hpcbatch vagrant ssh-config --dir {machine.root} "
        "> vagrant-ce.toml\n"
    )
    return EXIT_OK


def report_status(machine: Any, ctx: Context) -> int:
    statuses = call("status", machine.status)
    if ctx.json_output:
        ctx.emit_json(
            {
                "machines": [
                    {"name": s.name, "state": s.state, "provider": s.provider} for s in statuses
                ]
            }
        )
    else:
        from hpcbatch.cli import render

        rows = [[s.name, s.state or "-", s.provider or "-"] for s in statuses]
        sys.stdout.write(render.table(["VM", "STATE", "PROVIDER"], rows) + "\n")
    return EXIT_OK if all(s.state == "running" for s in statuses) else EXIT_FAILED


def host_list(machine: Any, args: argparse.Namespace, directory: Path) -> str:
    from hpcbatch.provision import vagrant_config as vc

    statuses = call("status", machine.status)
    names = vc.compute_names(statuses)
    if not names:
        raise vc.VagrantError(f"the Vagrantfile in {directory} defines no compute VMs")
    vc.check_running(statuses, names)
    text = call("ssh-config", machine.ssh_config, vm_name=vc.COMPUTE_TARGET)
    known_hosts = args.known_hosts or str(directory / ".vagrant" / "hpcbatch_known_hosts")
    settings = vc.HeadSettings(
        known_hosts=str(Path(known_hosts).absolute()), state_dir=args.state_dir, ce_name=args.name
    )
    return vc.head_hosts_toml(vc.parse_ssh_config(text), names, settings)
