"""What every command receives besides its own arguments: the endpoint, the output mode, the
signing options (``--profile``, ``--region``, ``--ca-bundle``) and a lazily opened client, plus
the exit codes scripts can rely on.

The client is created on first use so that ``--help`` and the ``head`` command never import the
client at all, and credentials are looked up only then, only for an http(s) endpoint.
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
    def __init__(
        self,
        endpoint: str,
        json_output: bool = False,
        profile: str | None = None,
        region: str | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.json_output = json_output
        self.profile = profile
        self.region = region
        self.ca_bundle = ca_bundle
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self.make_client()
        return self._client

    def make_client(self, timeout: float | None = None) -> Client:
        """A new client for this endpoint, signing when it is http(s) and credentials exist.
        Raises ``CredentialsError`` when a profile named cannot be found or read."""
        from hpcbatch.cli.client import DEFAULT_TIMEOUT_S, Client, parse_endpoint

        settings = None
        if parse_endpoint(self.endpoint)[0] != "unix":
            import os

            from hpcbatch.cli.credentials import resolve

            settings = resolve(os.environ, self.profile, self.region, self.ca_bundle)
        return Client(self.endpoint, timeout or DEFAULT_TIMEOUT_S, settings)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def emit_json(self, document: Any) -> None:
        from hpcbatch.cli.render import print_json

        print_json(document, sys.stdout)


def warn(message: str) -> None:
    sys.stderr.write(message + "\n")
