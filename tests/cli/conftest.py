"""Fixtures for CLI tests: a stub head over TCP, TLS or a unix socket, UTC times, a clean env."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.cli.stubhead import StubHead, serving, tcp_server, tls_server, unix_server

# Everything the CLI reads to sign or verify: none may leak in from the developer's shell.
AWS_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE",
    "HPCBATCH_REGION",
)


class Certificate(NamedTuple):
    cert: Path  # self-signed for 127.0.0.1: its own CA
    key: Path


@pytest.fixture
def stub() -> Iterator[StubHead]:
    head = StubHead()
    with serving(tcp_server(head)):
        yield head


@pytest.fixture
def unix_stub(tmp_path: Path) -> Iterator[StubHead]:
    head = StubHead()
    with serving(unix_server(head, tmp_path / "head.sock")):
        yield head


def self_signed(directory: Path, name: str) -> Certificate:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}"]
        + ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Certificate(cert, key)


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Certificate, Certificate]:
    """The head's certificate, and another one that did not sign it (a wrong CA)."""
    directory = tmp_path_factory.mktemp("tls")
    return self_signed(directory, "head"), self_signed(directory, "other")


@pytest.fixture
def tls_stub(certificates: tuple[Certificate, Certificate]) -> Iterator[StubHead]:
    head = StubHead()
    with serving(tls_server(head, certificates[0].cert, certificates[0].key)):
        yield head


@pytest.fixture(autouse=True)
def _utc_and_clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Times render in UTC; no endpoint, key, profile or ~/.aws file leaks in."""
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("HPCBATCH_ENDPOINT", raising=False)
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws" / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws" / "config"))
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
