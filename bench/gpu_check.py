"""bench/gpu_check.sh's driver: the GPU and cgroup checks through a running head, as jobs.

    python -m bench.gpu_check run --endpoint URL [--only gpu|cgroups] [--out FILE] [--head-log F]
    python -m bench.gpu_check cleanup --data-dir DIR

``run`` talks to the head only through the ``hpcbatch`` CLI of the interpreter running it
(``python -m hpcbatch.cli.main``), as a user would; ``cleanup`` stops the head's LOCAL agents
and whatever jobs they left (the shell script calls it after stopping the head by PID).

Vocabulary:
    check job   a job submitted for one check, by its short name (gpu-a, gpu-b, no-gpu, oom,
                cpu, pids, escape); each runs bench/gpu_probe.py or bench/cgroup_probe.py with
                this interpreter and prints JSON probe lines into its log.
    GPU part    gpu-a, gpu-b (1 GPU each, holding it 3 s) and no-gpu; skipped, with a SKIP
                row, where nvidia-smi is not on PATH.
    job's processes  those whose /proc/PID/environ holds ``AWS_BATCH_JOB_ID=<its id>``.
    control     the cpu probe run outside hpcbatch for 1 s: how much CPU the same busy
                threads get with no quota on this host.

Every wait polls with a deadline; the verdicts are bench/gpu_verdicts.py's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import gpu_verdicts as v

HERE = Path(__file__).resolve().parent
PY = sys.executable
JOBS_DEADLINE_S = 150.0
CLEAR_DEADLINE_S = 15.0  # the agent's kill grace (3 s) plus the cgroup's stragglers
FINAL = ("SUCCEEDED", "FAILED")
POLL_S = 0.2


def cli(endpoint: str, *words: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    argv = [PY, "-m", "hpcbatch.cli.main", "-e", endpoint, *words]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def cli_json(endpoint: str, *words: str) -> Any:
    done = cli(endpoint, *words, "-o", "json")
    if done.returncode != 0:
        raise RuntimeError(f"hpcbatch {' '.join(words)}: exit {done.returncode}: {done.stderr}")
    return json.loads(done.stdout)


def poll(what: str, deadline_s: float, check: Any) -> Any:
    """``check()``'s first true value, polled until ``deadline_s``; TimeoutError names ``what``."""
    deadline = time.monotonic() + deadline_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {deadline_s:.0f} s waiting for {what}")
        time.sleep(POLL_S)


# --- the host ---------------------------------------------------------------------------------


def nvidia_smi() -> tuple[list[v.SmiGpu] | None, str]:
    """(GPUs, nvidia-smi's output); None where nvidia-smi is absent. ValueError if it fails."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None, "nvidia-smi not found on PATH"
    done = subprocess.run(
        [binary, *v.SMI_QUERY], capture_output=True, text=True, timeout=20, check=False
    )
    if done.returncode != 0:
        raise ValueError(f"nvidia-smi exit {done.returncode}: {done.stdout}{done.stderr}")
    return v.parse_smi(done.stdout), done.stdout


LIBCUDA_PATH = """
import ctypes
ctypes.CDLL("libcuda.so.1")
for line in open("/proc/self/maps"):
    if "libcuda.so" in line:
        print(line.split(None, 5)[-1].strip())
        break
"""


def libcuda_path() -> str:
    """libcuda.so.1's absolute path as this environment loads it: jobs inherit only PATH,
    HOME, LANG, USER and SHELL, so an LD_LIBRARY_PATH that finds it here would not reach them."""
    done = subprocess.run(
        [PY, "-c", LIBCUDA_PATH], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.strip() or "libcuda.so.1"


def pure_v2_host() -> bool:
    """The host mounts cgroup v2 and no v1 hierarchy."""
    kinds = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        after = line.split(" - ", 1)[1].split() if " - " in line else []
        if after and after[0] in ("cgroup", "cgroup2"):
            kinds.add(after[0])
    return kinds == {"cgroup2"}


def control_cpu() -> float | None:
    """CPU-s per second the cpu probe's threads get unconfined, for 1 s."""
    argv = [PY, str(HERE / "cgroup_probe.py"), "cpu", "--seconds", "1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    line = v.probe_line(done.stdout, "cpu")
    return float(line["cpu_per_s"]) if line else None


def job_processes(job_id: str) -> list[int]:
    """Processes whose environment holds ``AWS_BATCH_JOB_ID=job_id``."""
    needle = f"AWS_BATCH_JOB_ID={job_id}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return sorted(found)


def expected_pids_max() -> int:
    try:
        from hpcbatch_agent.cgroups import DEFAULT_PIDS_MAX
    except ImportError:
        return 4096
    return int(DEFAULT_PIDS_MAX)


# --- jobs -------------------------------------------------------------------------------------


def check_jobs(libcuda: str | None, cgroups: bool = True) -> dict[str, list[str]]:
    """Each check job's ``hpcbatch submit`` options and command: the GPU part's first (None:
    no GPU part), then the cgroup part's."""
    gpu = [PY, str(HERE / "gpu_probe.py"), "--lib", libcuda or "libcuda.so.1"]
    gpu += ["--dev", os.environ.get("GPU_CHECK_DEV", "/dev")]  # tests: a dir of made-up nodes
    cg = [PY, str(HERE / "cgroup_probe.py")]
    jobs: dict[str, list[str]] = {}
    if libcuda is not None:
        jobs["gpu-a"] = ["--gpus", "1", "--memory", "4096", "--", *gpu, "--hold", "3"]
        jobs["gpu-b"] = ["--gpus", "1", "--memory", "4096", "--", *gpu, "--hold", "3"]
        jobs["no-gpu"] = ["--memory", "1024", "--", *gpu, "--hold", "0"]
    if not cgroups:
        return jobs
    jobs["oom"] = ["--memory", "64", "--", *cg, "oom", "--mib", "300"]
    jobs["cpu"] = ["--memory", "512", "--", *cg, "cpu", "--threads", "4", "--seconds", "3"]
    jobs["pids"] = ["--memory", "8192", "--", *cg, "pids"]
    jobs["escape"] = ["--memory", "256", "--timeout", "120", "--", *cg, "escape"]
    return jobs


def submit(endpoint: str, name: str, words: list[str]) -> str:
    done = cli(endpoint, "submit", "--name", f"check-{name}", "--vcpus", "1", *words)
    if done.returncode != 0:
        raise RuntimeError(f"submit {name}: exit {done.returncode}: {done.stderr}")
    return done.stdout.strip()


def describe(endpoint: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    return {job["jobId"]: job for job in cli_json(endpoint, "describe", *ids)["jobs"]}


def log_of(endpoint: str, job_id: str) -> str:
    done = cli(endpoint, "logs", job_id)
    if done.returncode != 0:
        return f"{done.stdout}[hpcbatch logs: exit {done.returncode}: {done.stderr.strip()}]"
    return done.stdout


def watch_escape(endpoint: str, job_id: str) -> tuple[list[int], list[int], float | None]:
    """Wait for the escape job's escapee, note the job's processes, terminate the job, then
    poll until none of them is left: (seen running, left at the deadline, seconds to clear)."""
    poll("the escape probe's line", 60, lambda: v.probe_line(log_of(endpoint, job_id), "escape"))
    seen = job_processes(job_id)
    cli(endpoint, "terminate", job_id, "--reason", "gpu_check: kill the whole tree")
    poll(
        "the escape job to end", 60, lambda: describe(endpoint, [job_id])[job_id]["status"] in FINAL
    )
    ended = time.monotonic()
    deadline = time.monotonic() + CLEAR_DEADLINE_S
    while (left := job_processes(job_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen, left, None if left else time.monotonic() - ended


def diagnostics(log: str) -> str:
    """The job's own cgroup files, from its probe's first line, for a failed check."""
    info = v.probe_line(log, "cgroup")
    if info is None:
        return "  (the job printed no cgroup line)"
    lines = ["  /proc/self/cgroup: " + info["proc_self_cgroup"].strip().replace("\n", " | ")]
    for directory, files in info["dirs"].items():
        if set(files) <= {"cgroup.procs"}:
            continue  # a hierarchy with no limit files: only the root's members
        lines.append(f"  {directory}:")
        lines += [f"    {name}: {text.replace(chr(10), ' | ')}" for name, text in files.items()]
    return "\n".join(lines)


# --- the run ----------------------------------------------------------------------------------

GPU_ROWS = (
    "gpu: inventory",
    "gpu: job a",
    "gpu: job b",
    "gpu: one after the other",
    "gpu: no-GPU job",
    "gpu: device isolation",
)
CGROUP_ROWS = {
    "cgroups: memory (OOM)": "oom",
    "cgroups: cpu quota": "cpu",
    "cgroups: pids.max": "pids",
    "cgroups: kill whole tree": "escape",
}


class CheckRun:
    """One run: what it printed (kept for the output file), its jobs, and its verdicts, so
    that a run cut short by an error still writes everything it has."""

    def __init__(self, endpoint: str, parts: set[str]) -> None:
        self.endpoint = endpoint
        self.parts = parts
        self.lines: list[str] = []
        self.verdicts: list[v.Verdict] = []
        self.ids: dict[str, str] = {}
        self.jobs: dict[str, dict[str, Any] | None] = {}
        self.logs: dict[str, str] = {}

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.lines.append(text)

    def run(self) -> None:
        self.say(f"# hpcbatch GPU machine check, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
        self.say(f"# {os.uname().nodename}, Python {sys.version.split()[0]}, {PY}")
        gpus = self._nvidia_smi() if "gpu" in self.parts else None
        node = poll("the LOCAL node to be ONLINE", 60, self._online_node)
        self.say("## hpcbatch nodes\n" + cli(self.endpoint, "nodes").stdout.rstrip())
        self.say(f"enforcement: {node.get('enforcement')!r}")
        control = control_cpu() if "cgroups" in self.parts else None
        self.say(f"control: 4 busy threads, unconfined: {control} CPU-s per s")
        libcuda = None
        if gpus is not None:  # GPU_CHECK_LIBCUDA: a stand-in, for tests/gpu without a GPU
            libcuda = os.environ.get("GPU_CHECK_LIBCUDA") or libcuda_path()
            self.say(f"libcuda: {libcuda}")
        self._submit(check_jobs(libcuda, "cgroups" in self.parts))
        escape = self._watch_escape() if "escape" in self.ids else None
        self._wait_all()
        if "gpu" in self.parts:
            self.verdicts += gpu_verdicts(gpus, node, self.jobs, self.logs)
        if "cgroups" in self.parts:
            enforcement = node.get("enforcement", "")
            self.verdicts.append(
                v.cgroups_verdict("cgroups: detected", enforcement, pure_v2_host())
            )
            self.verdicts += cgroup_verdicts(self.jobs, self.logs, control, escape)

    def _nvidia_smi(self) -> list[v.SmiGpu] | None:
        try:
            gpus, text = nvidia_smi()
        except (ValueError, OSError, subprocess.TimeoutExpired) as exc:
            gpus, text = [], f"nvidia-smi failed: {exc}"
            self.verdicts.append(v.Verdict("gpu: nvidia-smi", v.FAIL, str(exc)[:200]))
        self.say("## nvidia-smi\n" + text.strip())
        return gpus

    def _online_node(self) -> dict[str, Any] | None:
        nodes = cli_json(self.endpoint, "nodes")["nodes"]
        return next((n for n in nodes if n["state"] == "ONLINE"), None)

    def _submit(self, specs: dict[str, list[str]]) -> None:
        for name, words in specs.items():
            if name == "pids":  # thousands of forks would steal the cpu job's CPU: after it
                words = ["--depends-on", self.ids["cpu"], *words]
            self.ids[name] = submit(self.endpoint, name, words)
            self.say(f"job {name}: {self.ids[name]}")

    def _watch_escape(self) -> tuple[list[int], list[int], float | None] | None:
        try:
            return watch_escape(self.endpoint, self.ids["escape"])
        except (TimeoutError, RuntimeError, KeyError) as exc:  # its row fails; the rest go on
            self.say(f"escape check: {exc}")
            return None

    def collect(self) -> None:
        """After a run cut short: each submitted job's state and log as they are now."""
        for name, job_id in self.ids.items():
            if name in self.logs:
                continue
            with contextlib.suppress(Exception):
                self.jobs[name] = describe(self.endpoint, [job_id]).get(job_id)
                self.logs[name] = log_of(self.endpoint, job_id)

    def _wait_all(self) -> None:
        """Every job final, or the deadline: a job still running then fails its check."""
        deadline = time.monotonic() + JOBS_DEADLINE_S
        while True:
            found = describe(self.endpoint, list(self.ids.values()))
            done = all(job["status"] in FINAL for job in found.values())
            if done or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        for name, job_id in self.ids.items():
            job = found.get(job_id)
            if job is not None and job["status"] not in FINAL:
                job = {
                    **job,
                    "statusReason": f"still {job['status']} after {JOBS_DEADLINE_S:.0f} s",
                }
            self.jobs[name] = job
            self.logs[name] = log_of(self.endpoint, job_id)

    def write(self, out: str, head_log: str) -> None:
        for verdict in self.verdicts:
            if verdict.status == v.FAIL and verdict.check in CGROUP_ROWS:
                log = self.logs.get(CGROUP_ROWS[verdict.check], "")
                self.say(f"## diagnostics for {verdict.check}\n{diagnostics(log)}")
        self.say("## summary\n" + v.render(self.verdicts))
        if not out:
            return
        body = list(self.lines)
        for name, job_id in self.ids.items():
            job = self.jobs.get(name) or {}
            body.append(
                f"\n## job {name} {job_id}: {job.get('status')} ({job.get('statusReason')})"
            )
            body.append(self.logs.get(name, "(log not read)").rstrip())
        if head_log and Path(head_log).exists():
            body.append("\n## head log (last 60 lines)")
            body += Path(head_log).read_text(errors="replace").splitlines()[-60:]
        Path(out).write_text("\n".join(body) + "\n")
        print(f"written to {out}")


def gpu_verdicts(
    gpus: list[v.SmiGpu] | None,
    node: dict[str, Any],
    jobs: dict[str, dict[str, Any] | None],
    logs: dict[str, str],
) -> list[v.Verdict]:
    if gpus is None:
        return [
            v.Verdict(row, v.SKIP, "nvidia-smi not found: no GPU on this host") for row in GPU_ROWS
        ]
    results = {
        name: v.probe_line(logs.get(name, ""), "cuda") for name in ("gpu-a", "gpu-b", "no-gpu")
    }
    return [
        v.inventory_verdict(GPU_ROWS[0], node, gpus),
        v.gpu_job_verdict(GPU_ROWS[1], jobs.get("gpu-a"), results["gpu-a"], gpus),
        v.gpu_job_verdict(GPU_ROWS[2], jobs.get("gpu-b"), results["gpu-b"], gpus),
        v.one_after_other(
            GPU_ROWS[3],
            [results["gpu-a"], results["gpu-b"]],
            [(jobs.get(name) or {}).get("createdAt") for name in ("gpu-a", "gpu-b")],
        ),
        v.no_gpu_verdict(GPU_ROWS[4], jobs.get("no-gpu"), results["no-gpu"]),
        v.isolation_verdict(
            GPU_ROWS[5], node, [results["gpu-a"], results["gpu-b"]], results["no-gpu"]
        ),
    ]


def cgroup_verdicts(
    jobs: dict[str, dict[str, Any] | None],
    logs: dict[str, str],
    control: float | None,
    escape: tuple[list[int], list[int], float | None] | None,
) -> list[v.Verdict]:
    oom, cpu, pids, kill = CGROUP_ROWS
    seen, left, cleared = escape or ([], [], None)
    return [
        v.oom_verdict(oom, jobs["oom"]),
        v.cpu_verdict(cpu, jobs["cpu"], v.probe_line(logs["cpu"], "cpu"), control),
        v.pids_verdict(pids, jobs["pids"], v.probe_line(logs["pids"], "pids"), expected_pids_max()),
        v.escape_verdict(
            kill, jobs["escape"], v.probe_line(logs["escape"], "escape"), seen, left, cleared
        ),
    ]


def cleanup(data_dir: Path) -> None:
    """Stop the LOCAL agents the head left and every job they still run."""
    from hpcbatch_agent.jobs import find_jobs

    from hpcbatch.transport.local import stop_local_agent

    agents = data_dir / "agents"
    for state_dir in sorted(agents.iterdir()) if agents.is_dir() else []:
        try:
            stop_local_agent(state_dir, kill_jobs=True)
        except Exception as exc:  # keep cleaning the others
            print(f"cleanup: agent {state_dir}: {exc}", file=sys.stderr)
        for pid in find_jobs(str(state_dir.resolve())).values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--endpoint", required=True)
    run_parser.add_argument("--only", choices=("gpu", "cgroups"))
    run_parser.add_argument("--out", default="", help="also write everything to this file")
    run_parser.add_argument("--head-log", default="", help="its tail goes into --out")
    clean = commands.add_parser("cleanup")
    clean.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "cleanup":
        cleanup(args.data_dir)
        return 0
    check = CheckRun(args.endpoint, {args.only} if args.only else {"gpu", "cgroups"})
    try:
        check.run()
    except Exception as exc:  # a run cut short still writes what it has, and fails
        check.verdicts.append(v.Verdict("check run", v.FAIL, f"{type(exc).__name__}: {exc}"))
        check.say(traceback.format_exc().rstrip())
        check.collect()
    check.write(args.out, args.head_log)
    return 1 if v.any_failed(check.verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
