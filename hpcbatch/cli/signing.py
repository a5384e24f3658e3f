"""Signing one CLI request with AWS Signature Version 4, by botocore's own signer.

Vocabulary: a **signed request** is method, target (path and query exactly as sent), the
headers sent (``Host`` among them, with a non-default port as it goes on the wire) and the body;
signing adds ``X-Amz-Date``, ``Authorization`` (and ``X-Amz-Security-Token`` for session
credentials) to those headers. The scope is the region and the service ``batch``.

The caller sends exactly the headers this returns, in this order, and the body it was given:
the head recomputes the signature from the bytes it receives.

botocore costs ~85 ms of imports, so it is imported here, inside :func:`sign`, and only a call
that has credentials and a TCP endpoint ever reaches it.
"""

from __future__ import annotations

from hpcbatch.cli.credentials import Credentials

SERVICE = "batch"


def sign(
    credentials: Credentials,
    region: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
) -> dict[str, str]:
    """The headers to send: ``headers`` (which must hold ``Host``) plus the signature's."""
    from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
    from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]

    request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}
