"""Where credentials, region and CA bundle come from: the environment, profiles, the options."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcbatch.cli.credentials import Credentials, CredentialsError, resolve

CREDENTIALS = """\
[default]
aws_access_key_id = AKDEFAULT
aws_secret_access_key = default%secret

[alice]
aws_access_key_id = AKALICE
aws_secret_access_key = alicesecret
aws_session_token = alicetoken
"""

CONFIG = """\
[default]
region = default-region

[profile alice]
region = alice-region
ca_bundle = /alice/ca.pem

[profile configonly]
aws_access_key_id = AKCONFIG
aws_secret_access_key = configsecret
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "credentials").write_text(CREDENTIALS)
    (tmp_path / "config").write_text(CONFIG)
    return {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
    }


ENV_KEYS = {"AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "envsecret"}


def key_of(env: dict[str, str], profile: str | None = None) -> str | None:
    credentials = resolve(env, profile).credentials
    return credentials.access_key if credentials else None


def test_environment_keys_come_first(files: dict[str, str]) -> None:
    env = {**files, **ENV_KEYS, "AWS_PROFILE": "alice"}
    assert resolve(env).credentials == Credentials("AKENV", "envsecret", None, "environment")


def test_an_explicit_profile_beats_the_environment_as_in_the_aws_cli(
    files: dict[str, str],
) -> None:
    assert key_of({**files, **ENV_KEYS}, profile="alice") == "AKALICE"


def test_profile_from_aws_profile_else_default(files: dict[str, str]) -> None:
    assert key_of({**files, "AWS_PROFILE": "alice"}) == "AKALICE"
    assert key_of(files) == "AKDEFAULT"
    alice = resolve(files, "alice").credentials
    assert alice is not None and alice.token == "alicetoken" and "alice" in alice.source


def test_a_secret_is_read_raw_and_half_a_pair_in_the_environment_is_none(
    files: dict[str, str],
) -> None:
    default = resolve(files).credentials
    assert default is not None and default.secret_key == "default%secret"
    assert key_of({**files, "AWS_ACCESS_KEY_ID": "AKHALF"}) == "AKDEFAULT"


def test_keys_in_the_config_file_count_too(files: dict[str, str]) -> None:
    assert key_of(files, profile="configonly") == "AKCONFIG"


def test_no_files_and_no_environment_means_unsigned(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}  # ~/.aws does not exist there
    assert resolve(env) == (None, "local", None)


def test_home_aws_files_are_read_without_the_variables(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(CREDENTIALS)
    (tmp_path / ".aws" / "config").write_text(CONFIG)
    settings = resolve({"HOME": str(tmp_path)}, "alice")
    assert settings.credentials is not None
    assert (settings.credentials.access_key, settings.region) == ("AKALICE", "alice-region")


@pytest.mark.parametrize("how", ["option", "AWS_PROFILE"])
def test_a_named_profile_that_exists_nowhere_is_an_error(files: dict[str, str], how: str) -> None:
    env = {**files, **ENV_KEYS, **({"AWS_PROFILE": "nobody"} if how != "option" else {})}
    with pytest.raises(CredentialsError, match="'nobody' is in neither"):
        resolve(env, "nobody" if how == "option" else None)


def test_an_unreadable_file_is_an_error(files: dict[str, str]) -> None:
    Path(files["AWS_SHARED_CREDENTIALS_FILE"]).write_text("no section header\n")
    with pytest.raises(CredentialsError, match="cannot read .*credentials"):
        resolve(files)


@pytest.mark.parametrize(
    ("option", "env", "expected"),
    [
        ("opt", {"HPCBATCH_REGION": "h", "AWS_REGION": "a", "AWS_DEFAULT_REGION": "d"}, "opt"),
        (None, {"HPCBATCH_REGION": "h", "AWS_REGION": "a", "AWS_DEFAULT_REGION": "d"}, "h"),
        (None, {"AWS_REGION": "a", "AWS_DEFAULT_REGION": "d"}, "a"),
        (None, {"AWS_DEFAULT_REGION": "d"}, "d"),
        (None, {}, "default-region"),
        (None, {"AWS_PROFILE": "alice"}, "alice-region"),
        (None, {"AWS_PROFILE": "configonly"}, "local"),
    ],
)
def test_region_precedence(
    files: dict[str, str], option: str | None, env: dict[str, str], expected: str
) -> None:
    assert resolve({**files, **env}, region=option).region == expected


def test_ca_bundle_precedence(files: dict[str, str]) -> None:
    env = {**files, "AWS_PROFILE": "alice"}
    assert resolve(env, ca_bundle="/opt.pem").ca_bundle == "/opt.pem"
    assert resolve({**env, "AWS_CA_BUNDLE": "/env.pem"}).ca_bundle == "/env.pem"
    assert resolve(env).ca_bundle == "/alice/ca.pem"
    assert resolve(files).ca_bundle is None
