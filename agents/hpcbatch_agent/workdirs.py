"""Per-attempt scratch directories, reused rather than made and removed each time.

Vocabulary:
    work dir   ``<state dir>/work/<safe attempt id>``: every attempt's private directory
               (mode 0700, its job's user's; ``HPCBATCH_ATTEMPT_DIR``), the working directory
               of a job that names none, empty when the job starts. Once the attempt is acked
               it is recycled if the job left it empty, else left for the user to read.
    free dir   ``work/.free/<n>``: an empty work dir of an acked attempt, waiting to be
               renamed into place for a later one. On ext4 two renames cost ~35 us where a
               mkdir and an rmdir cost ~140 us, a tenth of the agent's work per job. Only
               dirs the agent owns, with MODE, are kept; at most FREE_MAX of them, the rest
               removed.
Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import stat

FREE = ".free"
FREE_MAX = 1024
MODE = 0o700  # private: the job's user alone (and root) may look inside


class WorkDirs:
    def __init__(self, root: str) -> None:
        self.free_root = f"{root}/{FREE}"
        os.makedirs(self.free_root, exist_ok=True)
        names = [n for n in os.listdir(self.free_root) if n.isdigit()]
        self.free = [f"{self.free_root}/{n}" for n in names]
        for path in self.free:  # kept by an older agent with the umask's mode: private now
            with contextlib.suppress(OSError):
                os.chmod(path, MODE)
        self._next = max((int(n) for n in names), default=-1) + 1
        self._uid = os.geteuid()
        self._mode = MODE

    def make(self, path: str) -> None:
        """An empty directory at ``path`` (an existing one is kept)."""
        while self.free:
            source = self.free.pop()
            try:
                os.rename(source, path)  # replaces an empty dir at path, refuses a full one
                return
            except FileNotFoundError:
                continue  # gone meanwhile: try the next
            except OSError:
                self.free.append(source)
                break
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, MODE)

    def release(self, path: str) -> None:
        """The attempt is over: recycle its dir if it is empty and as made, else remove it
        if empty; a dir the job left files in stays."""
        try:
            info = os.stat(path)
            reusable = (
                len(self.free) < FREE_MAX
                and info.st_uid == self._uid
                and stat.S_IMODE(info.st_mode) == self._mode
                and info.st_nlink == 2  # no subdirectories
                and _empty(path)
            )
            if reusable:
                target = f"{self.free_root}/{self._next}"
                self._next += 1
                os.rename(path, target)
                self.free.append(target)
            else:
                os.rmdir(path)  # only succeeds when left empty
        except OSError:
            pass


def _empty(path: str) -> bool:
    with os.scandir(path) as entries:
        return next(entries, None) is None
