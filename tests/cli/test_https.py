"""https endpoints: the certificate is verified against the CA bundle given, else the system's."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcbatch.cli.main import main
from tests.cli.conftest import Certificate
from tests.cli.stubhead import StubHead

Certificates = tuple[Certificate, Certificate]
HEALTH = {"status": "ok", "version": "x"}


def test_the_ca_bundle_option_is_accepted(
    tls_stub: StubHead, certificates: Certificates, capsys: pytest.CaptureFixture[str]
) -> None:
    tls_stub.on("GET", "/hpcbatch/v1/health", HEALTH)
    argv = ["health", "-e", tls_stub.endpoint, "--ca-bundle", str(certificates[0].cert)]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("ok (hpcbatch x at https://127.0.0.1:")


def test_the_ca_bundle_from_the_environment_or_the_profile(
    tls_stub: StubHead,
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    tls_stub.on("GET", "/hpcbatch/v1/health", HEALTH)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificates[0].cert))
    assert main(["health", "-e", tls_stub.endpoint]) == 0
    monkeypatch.delenv("AWS_CA_BUNDLE")
    config = tmp_path / "config"
    config.write_text(f"[profile lab]\nca_bundle = {certificates[0].cert}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert main(["health", "--profile", "lab", "-e", tls_stub.endpoint]) == 0
    assert len(tls_stub.calls()) == 2


@pytest.mark.parametrize("bundle", ["wrong", "system"])
def test_a_certificate_that_does_not_verify_is_exit_4(
    tls_stub: StubHead,
    certificates: Certificates,
    capsys: pytest.CaptureFixture[str],
    bundle: str,
) -> None:
    tls_stub.on("GET", "/hpcbatch/v1/health", HEALTH)
    ca = ["--ca-bundle", str(certificates[1].cert)] if bundle == "wrong" else []
    assert main(["health", "-e", tls_stub.endpoint, *ca]) == 4
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the head at {tls_stub.endpoint}: ")
    assert "certificate verify failed: self-signed certificate" in err
    assert tls_stub.calls() == []


def test_a_ca_bundle_that_cannot_be_loaded_is_named(
    tls_stub: StubHead, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.pem"
    assert main(["health", "-e", tls_stub.endpoint, "--ca-bundle", str(missing)]) == 4
    assert f"cannot load the CA bundle {missing}" in capsys.readouterr().err


def test_a_signed_request_over_https_verifies(
    tls_stub: StubHead, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls_stub.keys = {"AKIDTLS": "tlssecret"}
    tls_stub.require_signature = True
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTLS")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "tlssecret")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificates[0].cert))
    tls_stub.on("POST", "/v1/describejobqueues", {"jobQueues": []})
    assert main(["queues", "-e", tls_stub.endpoint]) == 0
    assert tls_stub.calls()[0].signer == "AKIDTLS"
