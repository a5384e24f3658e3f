"""What the SLURM bridge hands to ``sbatch`` for one attempt: the batch script and its options
(standard library).

Vocabulary:
    target     where the bridge's jobs go: partitions (``-p``, Slurm takes a list and
               starts the job in the first that can), account (``-A``), QOS (``-q``).
    job name   ``hb-<attempt id>`` (``-J``): how a bridge that lost its spool finds the jobs
               it submitted (``attempt_of``), and what ``squeue`` shows a site's admins.
    script     ``#!/bin/sh`` then ``exec env -- NAME=value... COMMAND...``, every word
               single-quoted: the attempt's environment set by ``env`` (any name a job
               definition allows, not only shell identifiers), its command run without a
               shell in between, as on the other compute environments. The job inherits the
               environment sbatch ran with (the bridge keeps it to PATH, HOME, LANG, USER,
               SHELL and SLURM_CONF) plus Slurm's ``SLURM_*`` variables, then the attempt's.
    backstop   ``--time``: the job's timeout plus a minute, in whole minutes. hpcbatch's own
               timeout kill is exact (the bridge cancels the job when it is due); Slurm's
               checks TIMEOUT only every ~30 s and is there if the bridge is gone.

Paths in ``-o`` are escaped with a backslash: Slurm then replaces none of its ``%`` patterns
(``%j``, ``%A``...), and the log file is named exactly as the bridge's log path.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from .wiretypes import AttemptSpec

NAME_PREFIX = "hb-"
BACKSTOP_S = 60


@dataclass(frozen=True)
class Target:
    partitions: tuple[str, ...] = ()  # () : Slurm's default partition
    account: str | None = None
    qos: str | None = None

    def options(self) -> list[str]:
        options = ["-p", ",".join(self.partitions)] if self.partitions else []
        if self.account:
            options += ["-A", self.account]
        if self.qos:
            options += ["-q", self.qos]
        return options

    def flags(self) -> list[str]:
        """The bridge's ``serve`` flags that name this target (main.py's; the head's too)."""
        flags = [word for partition in self.partitions for word in ("--slurm-partition", partition)]
        if self.account:
            flags += ["--slurm-account", self.account]
        if self.qos:
            flags += ["--slurm-qos", self.qos]
        return flags

    def describe(self) -> str:
        """``partition batch`` / ``partitions batch,debug`` / ``the default partition``."""
        if not self.partitions:
            return "the default partition"
        many = "s" if len(self.partitions) > 1 else ""
        return f"partition{many} {','.join(self.partitions)}"


def job_name(attempt_id: str) -> str:
    return NAME_PREFIX + attempt_id


def attempt_of(name: str, slurm_id: str = "") -> str | None:
    """The attempt id a bridge's job (or, by its Slurm id ``<job>_<task>``, array task) name
    carries; None for anyone else's job. An array's name holds ``:_/`` where its tasks' ids
    hold the task id (slurmarrays.py)."""
    if not name.startswith(NAME_PREFIX):
        return None
    attempt_id = name[len(NAME_PREFIX) :]
    job, slash, number = attempt_id.rpartition("/")
    task = slurm_id.rpartition("_")[2] if "_" in slurm_id else ""
    if slash and job.endswith(":_") and task.isdigit():
        return f"{job[:-1]}{task}/{number}"
    return attempt_id


# Slurm sets these for the GPUs it gives a job; the head's name GPUs of the bridge's count only
SLURM_SETS = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")


def script_env(spec: AttemptSpec) -> dict[str, str]:
    """The attempt's variables as its script sets them: a job with GPUs sees the ones Slurm
    gave it (its own ``CUDA_VISIBLE_DEVICES``), not the head's numbering of the bridge's."""
    if not spec["gpus"]:
        return spec["env"]
    return {name: value for name, value in spec["env"].items() if name not in SLURM_SETS}


def batch_script(spec: AttemptSpec) -> str:
    words = ["exec", "env", "--"]
    words += [f"{name}={value}" for name, value in script_env(spec).items()]
    words += spec["command"]
    return "#!/bin/sh\n" + " ".join(shlex.quote(word) for word in words) + "\n"


def sbatch_options(
    spec: AttemptSpec,
    target: Target,
    log_path: str,
    work_dir: str,
    name: str | None = None,
    output: str | None = None,
) -> list[str]:
    """``--no-requeue`` always: Slurm must never run an attempt again behind the head's back
    (a retry is the head's decision, with a new attempt id). ``name`` and ``output``: an
    array's (slurmarrays.py), else the attempt's own."""
    options = [
        "--no-requeue",
        "-J",
        name or job_name(spec["attempt_id"]),
        "-o",
        output or no_patterns(log_path),
        "-D",
        work_dir,
        "-c",
        str(max(1, spec["vcpus"])),
        *target.options(),
    ]
    if spec["memory_mib"] > 0:
        options.append(f"--mem={spec['memory_mib']}M")
    if spec["gpus"]:
        options.append(f"--gpus={len(spec['gpus'])}")
    if spec["timeout_s"] is not None:
        options.append(f"--time={backstop_minutes(spec['timeout_s'])}")
    return options


def backstop_minutes(timeout_s: int) -> int:
    return -(-(timeout_s + BACKSTOP_S) // 60)


def no_patterns(path: str) -> str:
    """A backslash in an sbatch file name turns off all of its ``%`` replacements (and is
    dropped from the name; one that leads the name would make it relative)."""
    return path.replace("%", "\\%", 1)
