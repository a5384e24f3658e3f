"""``hpcbatch backup`` and ``hpcbatch restore``: the head's state to one file, and back.

Both work on the head's data directory directly, not through the API, so they run on the head
node as root or the head's user. ``backup`` works while the head runs (an online, consistent
copy); ``restore`` refuses while a head holds the data directory. The work is in
:mod:`hpcbatch.head.backup`, imported only when one of these runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hpcbatch.cli.commands.head import DATA_DIR_ENV, default_data_dir
from hpcbatch.cli.context import EXIT_CLIENT_ERROR, EXIT_OK, Context, warn

EXIT_REFUSED = EXIT_CLIENT_ERROR  # refused or failed, with nothing changed: the reason on stderr


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    data_dir_help = (
        f"the head's data directory (default: ${DATA_DIR_ENV}, else /var/lib/hpcbatch as root, "
        "else ~/.local/share/hpcbatch)"
    )
    backup = sub.add_parser(
        "backup",
        help="copy the head's state to a file (the head may run)",
        description="Write a consistent copy of the head's state (state.db, taken with "
        "SQLite's online backup API, and launch.secret) to OUT, a gzip tar, 0600: it holds "
        "the secrets of issued access keys. Works whether or not the head runs. The copy is "
        "checked (PRAGMA integrity_check) before OUT.tmp is renamed to OUT. Exit 3 when "
        "refused or failed, with nothing written.",
    )
    backup.add_argument("--data-dir", type=Path, metavar="DIR", help=data_dir_help)
    backup.add_argument("out", type=Path, metavar="OUT", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="replace OUT if it exists")
    backup.set_defaults(func=run_backup)

    restore = sub.add_parser(
        "restore",
        help="put a backup in place as the head's state (the head must be stopped)",
        description="Check BACKUP and make it the state of the head's data directory: the "
        "current state.db (and its -wal/-shm files) is moved aside as "
        "state.db.before-restore-<time>, never deleted. Refused while a head runs on the "
        "directory. Start the head afterwards. Exit 3 when refused, with nothing changed.",
    )
    restore.add_argument("--data-dir", type=Path, metavar="DIR", help=data_dir_help)
    restore.add_argument("backup", type=Path, metavar="BACKUP", help="a file `backup` wrote")
    restore.set_defaults(func=run_restore)


def run_backup(args: argparse.Namespace, ctx: Context) -> int:
    from hpcbatch.head import backup

    try:
        saved = backup.backup(args.data_dir or default_data_dir(), args.out, args.force)
    except backup.BackupError as error:
        warn(f"hpcbatch backup: error: {error.message}")
        return EXIT_REFUSED
    secret = ", launch.secret" if saved.secret else " (no launch.secret in the data dir)"
    sys.stdout.write(
        f"saved {saved.path}: state.db {_size(saved.db_bytes)}{secret}; integrity ok\n"
        f"  {_counts(saved.counts)}\n"
    )
    return EXIT_OK


def run_restore(args: argparse.Namespace, ctx: Context) -> int:
    from hpcbatch.head import backup

    data_dir = args.data_dir or default_data_dir()
    try:
        restored = backup.restore(data_dir, args.backup)
    except backup.BackupError as error:
        warn(f"hpcbatch restore: error: {error.message}")
        return EXIT_REFUSED
    lines = [f"restored {args.backup} into {data_dir}: integrity ok"]
    lines.append(f"  {_counts(restored.counts)}")
    lines += [f"  moved aside (kept): {path}" for path in restored.aside]
    lines.append("  now start the head; see docs/cli.md for what happens to later jobs")
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


def _counts(counts: dict[str, Any]) -> str:
    names = (
        ("job", "job"),
        ("queue", "queue"),
        ("compute_environment", "compute environment"),
        ("job_definition", "job definition"),
        ("user", "user"),
        ("node", "node"),
    )
    shown = ((int(counts.get(kind, 0)), label) for kind, label in names)
    return ", ".join(f"{n} {label}{'s' * (n != 1)}" for n, label in shown)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:g} {unit}"
        size = round(size / 1024, 1)
    return f"{size:g} GiB"
