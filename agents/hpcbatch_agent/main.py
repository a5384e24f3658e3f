"""Command line of the agent: ``serve`` (the daemon) and ``attach`` (a stdio relay to it).

Vocabulary:
    state dir  everything one agent owns: agent.sock, agent.pid, agent.lock, agent.log,
               spool/, reaped/, logs/, work/. One machine may run several agents (virtual
               nodes), each with its own state dir.
    detach     start the daemon in a new session with stdio to agent.log, and return only
               once its socket accepts connections.
    attach     relay stdin/stdout to the daemon's socket, starting the daemon first; this is
               how an SSH exec channel reaches the agent.
    stop       ask the daemon to exit and wait until it has: its jobs keep running (their
               keeper records how they end, for the next agent) unless --kill-jobs.
    launch     the MPI launch client (launchclient.py): ``launch [-x] HOST WORDS...``, what
               a gang job's HPCBATCH_LAUNCHER runs.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import selectors
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from . import keeper, launchclient, protocol, slurmcli
from .bootstrap import isolated_command, package_root
from .build import build_id
from .capacity import detect_node, select_gpus
from .cgroups import DEFAULT_PIDS_MAX, Cgroups, Hierarchy
from .fds import close_on_exec_inherited
from .gpudevices import V2Filter, known_minors, plan_here, read_driver_minors, start_devices
from .gpupoll import DEFAULT_POLL_S, POLL_VAR, GpuPoller, poll_wanted
from .gpus import detect_gpus
from .procfs import stat_fields
from .runner import Runner
from .server import AgentServer
from .slurmbridge import DEFAULT_SLURM_POLL_S, SlurmBridge
from .slurmbridge import POLL_VAR as SLURM_POLL_VAR
from .slurmnode import bridge_env, bridge_node
from .slurmscript import Target
from .spool import DURABILITIES, Spool
from .statedir import StateDirError, open_private, prepare_state_dir
from .unixsock import connect, is_listening

EXIT_ALREADY_RUNNING = 3
EXIT_BAD_STATE_DIR = 2
DETACH_TIMEOUT_S = 30.0


def _gpu_list(text: str) -> list[int | str]:
    """``--gpus``: GPU indices and/or UUIDs as nvidia-smi prints them, comma-separated."""
    gpus: list[int | str] = []
    for word in (item.strip() for item in text.split(",")):
        if not word:
            continue
        gpu: int | str = int(word) if word.isdecimal() and word.isascii() else word
        if isinstance(gpu, int) and gpu >= 2**16:
            raise argparse.ArgumentTypeError(f"GPU index {word} is out of range (0 to 65535)")
        if isinstance(gpu, str) and not (
            gpu.startswith(("GPU-", "MIG-")) and protocol.is_gpu_id(gpu)
        ):
            raise argparse.ArgumentTypeError(
                f"GPU {word!r} is neither an index (0, 1, ...) nor a UUID as nvidia-smi prints "
                f"it (GPU-... or MIG-..., {protocol.GPU_ID_RULE})"
            )
        if gpu in gpus:
            raise argparse.ArgumentTypeError(f"GPU {word} is listed twice")
        gpus.append(gpu)
    return gpus


def _poll_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 2**31:  # NaN too
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds >= 0 (0: never; default from {POLL_VAR}, else "
            f"{DEFAULT_POLL_S:g})"
        )
    return seconds


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--node-name", default=socket.gethostname())
    parser.add_argument("--vcpus", type=int)
    parser.add_argument("--memory-mib", type=int)
    parser.add_argument(
        "--gpus",
        type=_gpu_list,
        help="this node's GPUs: comma-separated indices and/or UUIDs (0,1 or GPU-...,GPU-...)",
    )
    parser.add_argument(
        "--nvidia-smi",
        help="nvidia-smi's path, where it is not on PATH (an SSH host's config `nvidia_smi`)",
    )
    parser.add_argument(
        "--gpu-poll-s",
        type=_poll_seconds,
        default=os.environ.get(POLL_VAR, str(DEFAULT_POLL_S)),
        help=f"re-run nvidia-smi this often and tell the head what changed (0: never; default "
        f"{POLL_VAR}, else {DEFAULT_POLL_S:g})",
    )
    parser.add_argument("--heartbeat-s", type=float, default=2.0)
    parser.add_argument("--kill-grace-s", type=float, default=3.0)
    parser.add_argument(
        "--pids-max",
        type=int,
        default=DEFAULT_PIDS_MAX,
        help="most processes and threads per job (cgroup pids.max)",
    )
    parser.add_argument(
        "--no-cgroups",
        action="store_true",
        help="do not enforce job limits with cgroups (vcpus, memory, pids)",
    )
    parser.add_argument(
        "--cgroup-join",
        choices=("auto", "shim"),
        default="auto",
        help="how a job enters v1 cgroups: auto = the agent's thread steps in around the spawn "
        "where the host allows it; shim = the job's first process joins (as on v2)",
    )
    parser.add_argument(
        "--durability",
        choices=DURABILITIES,
        default="process",
        help="process (default): the spool survives the agent's or the head's death, without "
        "waiting for the disk; power: it also survives a power loss (an fsync per loop turn)",
    )
    parser.add_argument(
        "--launch-port",
        type=int,
        default=0,
        help="TCP port of the MPI launch server (0: any free one, reported in the hello)",
    )
    parser.add_argument(
        "--launch-address", default="0.0.0.0", help="address the launch server binds to"
    )
    parser.add_argument("--no-launch", action="store_true", help="run no launch server")
    parser.add_argument(
        "--slurm",
        action="store_true",
        help="be a SLURM bridge: run each attempt as a Slurm job (sbatch) instead of here; "
        "--vcpus is then the cap on attempts' vCPUs in Slurm at once (docs/slurm.md)",
    )
    parser.add_argument(
        "--slurm-partition",
        action="append",
        default=[],
        help="a partition the bridge's jobs may go to (repeatable; none: Slurm's default)",
    )
    parser.add_argument("--slurm-account", help="the Slurm account of the bridge's jobs (-A)")
    parser.add_argument("--slurm-qos", help="the Slurm QOS of the bridge's jobs (-q)")
    parser.add_argument(
        "--slurm-conf", help="SLURM_CONF for Slurm's commands (default: the environment's)"
    )
    parser.add_argument(
        "--slurm-poll-s",
        type=_poll_seconds,
        default=os.environ.get(SLURM_POLL_VAR, str(DEFAULT_SLURM_POLL_S)),
        help=f"read Slurm's queue this often while jobs are in it, its nodes 10 times less "
        f"often (default {SLURM_POLL_VAR}, else {DEFAULT_SLURM_POLL_S:g})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hpcbatch_agent")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the agent daemon")
    _add_serve_options(serve)
    serve.add_argument("--detach", action="store_true")
    attach = commands.add_parser("attach", help="relay stdio to the daemon, starting it")
    _add_serve_options(attach)
    stop = commands.add_parser("stop", help="stop the daemon (its jobs keep running)")
    stop.add_argument("--state-dir", type=Path, required=True)
    stop.add_argument("--kill-jobs", action="store_true", help="kill its jobs first")
    stop.add_argument("--timeout-s", type=float, default=30.0)
    commands.add_parser("launch", help="MPI launch client: launch [-x] HOST WORDS...")
    return parser


def serve_argv(args: argparse.Namespace) -> list[str]:
    """The ``serve`` argv (without --detach) that reproduces ``args``."""
    argv = [
        "serve",
        "--state-dir",
        str(args.state_dir),
        "--node-name",
        args.node_name,
        "--heartbeat-s",
        str(args.heartbeat_s),
        "--kill-grace-s",
        str(args.kill_grace_s),
        "--pids-max",
        str(args.pids_max),
    ]
    if args.no_cgroups:
        argv.append("--no-cgroups")
    if args.cgroup_join != "auto":
        argv += ["--cgroup-join", args.cgroup_join]
    if args.durability != "process":
        argv += ["--durability", args.durability]
    if args.no_launch:
        argv.append("--no-launch")
    argv += ["--launch-port", str(args.launch_port), "--launch-address", args.launch_address]
    if args.vcpus is not None:
        argv += ["--vcpus", str(args.vcpus)]
    if args.memory_mib is not None:
        argv += ["--memory-mib", str(args.memory_mib)]
    if args.gpus is not None:
        argv += ["--gpus", ",".join(str(g) for g in args.gpus)]
    if args.nvidia_smi is not None:
        argv += ["--nvidia-smi", args.nvidia_smi]
    argv += ["--gpu-poll-s", repr(args.gpu_poll_s)]
    if args.slurm:
        argv += ["--slurm", "--slurm-poll-s", repr(args.slurm_poll_s), *_target(args).flags()]
        if args.slurm_conf:
            argv += ["--slurm-conf", args.slurm_conf]
    return argv


def _self_command() -> list[str]:
    """How to run this agent again: the zipapp it was shipped as (SSH hosts), or this
    package from its own directory; isolated either way (bootstrap.py)."""
    if sys.argv and sys.argv[0].endswith(".pyz") and zipfile.is_zipfile(sys.argv[0]):
        # -I: the daemon runs as root; nothing from the SSH session's environment (PYTHONPATH,
        # a sitecustomize) or working directory may be imported into it
        return [sys.executable, "-I", os.path.abspath(sys.argv[0])]
    return isolated_command(sys.executable)


def _self_path() -> str:
    """Where this agent's package is loaded from: the zipapp it was shipped as, or the source
    directory holding ``hpcbatch_agent``."""
    if sys.argv and sys.argv[0].endswith(".pyz") and zipfile.is_zipfile(sys.argv[0]):
        return os.path.abspath(sys.argv[0])
    return package_root()


def start_detached(args: argparse.Namespace) -> int:
    """Start the daemon in its own session; 0 once its socket accepts connections."""
    state_dir: Path = args.state_dir.resolve()
    try:
        prepare_state_dir(state_dir)
        log_fd = open_private(state_dir / "agent.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    except (StateDirError, OSError) as exc:
        print(f"agent not started: {exc}", file=sys.stderr)
        return 1
    sock_path = state_dir / "agent.sock"
    if is_listening(sock_path):
        os.close(log_fd)
        return 0
    with open(log_fd, "ab") as log:
        child = subprocess.Popen(
            [*_self_command(), *serve_argv(args)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=state_dir,
        )
    deadline = time.monotonic() + DETACH_TIMEOUT_S
    while time.monotonic() < deadline:
        if is_listening(sock_path):
            child.returncode = 0  # it lives on without us: nothing for Popen to reap
            return 0
        if child.poll() is not None and child.returncode != EXIT_ALREADY_RUNNING:
            print(
                f"agent exited with {child.returncode}; see {state_dir / 'agent.log'}",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.01)  # polling a socket that is coming up, bounded by the deadline
    print(f"agent did not listen within {DETACH_TIMEOUT_S}s", file=sys.stderr)
    return 1


def _write_pidfile(path: Path) -> None:
    """Written whole (tmp + rename, which replaces whatever is at ``path``, a symlink too)."""
    tmp = path.with_suffix(".pid.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with open(fd, "w") as out:
        out.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def serve(args: argparse.Namespace) -> int:
    """The keeper (keeper.py), which runs the agent in a child and outlives it."""
    close_on_exec_inherited()  # for the keeper and the agent both: no job inherits them
    state_dir = args.state_dir.resolve()
    try:
        prepare_state_dir(state_dir)
    except StateDirError as exc:
        print(f"agent not started: {exc}", file=sys.stderr)
        return EXIT_BAD_STATE_DIR
    return keeper.run(state_dir, lambda: serve_agent(args, state_dir))


def serve_agent(args: argparse.Namespace, state_dir: Path) -> int:
    """The agent itself, or EXIT_BAD_STATE_DIR when a file of its state dir is a symlink."""
    try:
        return _serve_agent(args, state_dir)
    except StateDirError as exc:
        print(f"agent stopped: {exc}", file=sys.stderr)
        return EXIT_BAD_STATE_DIR


def _serve_agent(args: argparse.Namespace, state_dir: Path) -> int:
    """The agent itself: one per state dir (agent.lock), a subreaper for its jobs' orphans."""
    keeper.make_subreaper()
    lock_fd = open_private(state_dir / "agent.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"an agent already runs on {state_dir}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    build = build_id()  # the files it was started from, before anything can replace them
    os.chdir(state_dir)  # hold no arbitrary directory busy
    pidfile = state_dir / "agent.pid"
    _write_pidfile(pidfile)
    if args.slurm:
        server = _slurm_server(args, state_dir, build)
    else:
        server = _job_server(args, state_dir, build)
    try:
        server.serve_forever()
    finally:
        for path in (state_dir / "agent.sock", pidfile):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        os.close(lock_fd)
    return 0


def _target(args: argparse.Namespace) -> Target:
    return Target(tuple(args.slurm_partition), args.slurm_account, args.slurm_qos)


def _slurm_server(args: argparse.Namespace, state_dir: Path, build: str) -> AgentServer:
    """A SLURM bridge (slurmbridge.py): its node is the cap on what it has in Slurm."""
    env = bridge_env(os.environ)
    if args.slurm_conf:
        env["SLURM_CONF"] = args.slurm_conf
        os.environ["SLURM_CONF"] = args.slurm_conf  # libslurm's too, where pyslurm reads
    run = slurmcli.local(env)
    target = _target(args)
    node = bridge_node(args.node_name, args.vcpus, args.memory_mib, target, run)

    def bridge(spool: Spool, emit: Callable[[protocol.AttemptUpdate], None]) -> SlurmBridge:
        return SlurmBridge(state_dir, spool, emit, target, run, args.slurm_poll_s)

    return AgentServer(
        state_dir,
        node,
        heartbeat_s=args.heartbeat_s,
        durability=args.durability,
        build=build,
        bridge=bridge,
    )


def _job_server(args: argparse.Namespace, state_dir: Path, build: str) -> AgentServer:
    """An agent whose jobs run on this host."""
    detection = detect_gpus(binary=args.nvidia_smi)
    known = known_minors(detection.gpus, read_driver_minors(), args.gpus)
    planned = plan_here(known, not args.no_cgroups)
    offered = select_gpus(detection, args.gpus)
    if args.no_cgroups:
        cgroups = Cgroups.disabled()
    else:
        cgroups = Cgroups.detect(
            args.node_name,
            str(state_dir),
            pids_max=args.pids_max,
            thread_join=args.cgroup_join == "auto",
            devices=planned if isinstance(planned, Hierarchy) else None,
            keep_unified=isinstance(planned, V2Filter),
        )
    devices, isolation = start_devices(cgroups, known, planned, bool(known or offered.gpus))
    node = detect_node(
        args.node_name,
        vcpus=args.vcpus,
        memory_mib=args.memory_mib,
        gpus=offered,
        cgroups=cgroups.version,
        enforced=cgroups.enforced,
        isolation=isolation,
    )
    poller = None
    if poll_wanted(args.gpu_poll_s, node, args.gpus, args.nvidia_smi):
        poller = GpuPoller(
            node, args.gpus, args.gpu_poll_s, devices=devices, nvidia_smi=args.nvidia_smi
        )
    listener = None if args.no_launch else bind_launch(args.launch_address, args.launch_port)
    node["launch_port"] = listener.getsockname()[1] if listener is not None else None
    server = AgentServer(
        state_dir,
        node,
        launch_listener=listener,
        heartbeat_s=args.heartbeat_s,
        kill_grace_s=args.kill_grace_s,
        cgroups=cgroups,
        durability=args.durability,
        gpu_poller=poller,
        build=build,
    )
    assert isinstance(server.runner, Runner)
    server.runner.launcher = launchclient.client_command(sys.executable, _self_path())
    server.runner.prep.devices = devices
    return server


def bind_launch(address: str, port: int) -> socket.socket:
    """The launch server's listening socket (close-on-exec: no job inherits it)."""
    listener = socket.create_server((address, port), backlog=128)
    listener.set_inheritable(False)
    return listener


def relay(sock: socket.socket) -> int:
    """Copy stdin to the socket and the socket to stdout until the agent closes."""
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    selector.register(sock, selectors.EVENT_READ, "sock")
    stdout = sys.stdout.fileno()
    while True:
        for key, _ in selector.select():
            if key.data == "stdin":
                data = os.read(sys.stdin.fileno(), 1 << 16)
                if data:
                    sock.sendall(data)
                else:
                    selector.unregister(sys.stdin.fileno())
                    sock.shutdown(socket.SHUT_WR)
                continue
            data = sock.recv(1 << 16)
            if not data:
                return 0
            view = memoryview(data)
            while view:
                view = view[os.write(stdout, view) :]


def attach(args: argparse.Namespace) -> int:
    sock_path = args.state_dir / "agent.sock"
    if not is_listening(sock_path):
        started = start_detached(args)
        if started != 0:
            return started
    sock = connect(sock_path, timeout_s=None)
    try:
        return relay(sock)
    finally:
        sock.close()


def _pid_alive(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


def stop(args: argparse.Namespace) -> int:
    """0 once no agent runs on the state dir (none ran: 0 too); 1 if it did not stop in time."""
    state_dir: Path = args.state_dir
    try:
        pid = int((state_dir / "agent.pid").read_text())
    except (OSError, ValueError):
        pid = None
    try:
        sock = connect(state_dir / "agent.sock", timeout_s=5.0)
    except OSError:
        print(f"no agent running in {state_dir}")
        return 0
    with sock:
        sock.sendall(protocol.encode(protocol.shutdown(args.kill_jobs)))
        deadline = time.monotonic() + args.timeout_s
        sock.settimeout(args.timeout_s)
        with contextlib.suppress(OSError):
            while sock.recv(1 << 16):  # it closes the connection as it leaves
                pass
    while pid is not None and _pid_alive(pid):
        if time.monotonic() > deadline:
            print(f"agent {pid} in {state_dir} did not stop in {args.timeout_s}s", file=sys.stderr)
            return 1
        time.sleep(0.02)  # polling the exit of a process that is not our child, bounded
    print(f"agent stopped in {state_dir}" + (" with its jobs" if args.kill_jobs else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["launch"]:  # its words are the remote command's, never options of ours
        return launchclient.main(words[1:])
    args = build_parser().parse_args(argv)
    if args.command == "attach":
        return attach(args)
    if args.command == "stop":
        return stop(args)
    if args.detach:
        return start_detached(args)
    return serve(args)
