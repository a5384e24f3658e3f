"""The one error hierarchy of hpcbatch.

    HpcbatchError
    ├── ClientError        the caller asked for something wrong; AWS ``ClientException`` (HTTP 400)
    │   ├── ValidationError    a request field breaks a rule (names the field and the rule)
    │   ├── NotFoundError      a named queue / definition / compute environment / job is unknown
    │   ├── ConflictError      the request clashes with current state (e.g. delete an ENABLED queue)
    │   └── AccessDeniedError  the caller may not do this (AWS ``AccessDeniedException``, 403)
    ├── AuthError          the request's identity could not be established (403/400: AWS's
    │                      ``UnrecognizedClientException``, ``InvalidSignatureException``, ...)
    ├── ServerError        hpcbatch failed; AWS ``ServerException`` (HTTP 500)
    ├── DevClusterError    (hpcbatch.devcluster) a dev cluster could not be built or removed
    ├── VagrantError       (hpcbatch.provision.vagrant_config) vagrant failed, or its VMs are not up
    ├── TransportError     talking to an agent or the head failed (lost, unreachable)
    │   ├── ProtocolError      an agent spoke a malformed message or another protocol version
    │   └── HeadUnreachableError   (hpcbatch.cli.client) the CLI got no answer from the head
    └── StoreError         durable state could not be read or written

API errors map to AWS's shapes through ``aws_type`` and ``http_status``. The core raises only
``ClientError`` subclasses (it never does I/O, so it cannot fail any other way).
"""

from __future__ import annotations


class HpcbatchError(Exception):
    """Root of every error hpcbatch raises on purpose."""

    aws_type = "ServerException"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientError(HpcbatchError):
    aws_type = "ClientException"
    http_status = 400


class ValidationError(ClientError):
    """A request field breaks a rule; the message starts with the field's path."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}" if field else rule)
        self.field = field
        self.rule = rule


class NotFoundError(ClientError):
    pass


class ConflictError(ClientError):
    pass


class AccessDeniedError(ClientError):
    """An authenticated caller asked for what the rules keep from them: the message names the
    operation and the rule."""

    aws_type = "AccessDeniedException"
    http_status = 403


class AuthError(HpcbatchError):
    """Who sent the request is unknown or unproven; ``aws_type`` is AWS's name for why."""

    def __init__(self, aws_type: str, message: str, http_status: int = 403) -> None:
        super().__init__(message)
        self.aws_type = aws_type
        self.http_status = http_status


class ServerError(HpcbatchError):
    pass


class TransportError(HpcbatchError):
    pass


class ProtocolError(TransportError):
    pass


class StoreError(HpcbatchError):
    pass
