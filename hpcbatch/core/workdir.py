"""A job's working directory: where its process starts on its node.

Vocabulary:
- **workdir**: an absolute path on the node, given by the submission (``hpcbatch submit``
  sends the caller's current directory; the API takes it in the ``x-hpcbatch-workdir``
  header). The agent starts the job there; a directory missing on the host, or one the job's
  user cannot enter, fails the attempt with ``CannotStartContainerError``.
- **attempt directory**: the agent's private per-attempt directory (``HPCBATCH_ATTEMPT_DIR``
  in the job's environment). It is the working directory when the job has no workdir.

A job definition carries no workdir: a definition is a template shared between users and
directories, and where a job runs belongs to its submission. Array children and the nodes of a
multi-node job run in their parent's.
"""

from __future__ import annotations

from hpcbatch.errors import ValidationError

MAX_WORKDIR_BYTES = 4095  # PATH_MAX (4096) less the C string's NUL


def check_workdir(path: str, field: str = "workdir") -> str:
    """``path`` itself when it may be a job's working directory, else a ``ValidationError``
    naming ``field`` and the rule it breaks."""
    if "\x00" in path:
        raise ValidationError(field, "must not contain a NUL character")
    if not path.startswith("/"):
        raise ValidationError(field, f"must be an absolute path (starting with /), not {path!r}")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationError(field, "must be valid UTF-8") from None
    if size > MAX_WORKDIR_BYTES:
        raise ValidationError(field, f"must be at most {MAX_WORKDIR_BYTES} bytes, not {size}")
    return path
