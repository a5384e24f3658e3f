"""What every command receives besides its own arguments: the endpoint, the output mode and a
lazily opened client, plus the exit codes scripts can rely on.

The client is created on first use so that ``--help`` and the ``head`` command never import
``http.client`` at all.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpcbatch.cli.client import Client

EXIT_OK = 0
EXIT_JOB_FAILED = 1  # --wait: a job waited for ended FAILED
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_CLIENT_ERROR = 3  # the head refused the request (ClientException)
EXIT_UNREACHABLE = 4  # no connection to the head
EXIT_SERVER_ERROR = 5  # the head failed (ServerException)
EXIT_CANNOT_RUN = 6  # --wait: a job waited for can never run (a MISCONFIGURATION reason)

EXIT_CODES_HELP = """\
exit codes:
  0  ok
  1  a job waited for (--wait) ended FAILED
  2  usage error
  3  the head refused the request (ClientException); the message is on stderr
  4  cannot reach the head (the endpoint and the OS error are on stderr)
  5  the head failed (ServerException)
  6  a job waited for (--wait) can never run (MISCONFIGURATION: its reason is on stderr)"""


class Context:
    # A plain class, not a dataclass: importing dataclasses alone costs ~10 ms at startup.
    def __init__(self, endpoint: str, json_output: bool = False) -> None:
        self.endpoint = endpoint
        self.json_output = json_output
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from hpcbatch.cli.client import Client

            self._client = Client(self.endpoint)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def emit_json(self, document: Any) -> None:
        from hpcbatch.cli.render import print_json

        print_json(document, sys.stdout)


def warn(message: str) -> None:
    sys.stderr.write(message + "\n")
