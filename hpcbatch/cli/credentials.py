"""Where the CLI's AWS-style credentials, region and CA bundle come from.

Vocabulary:
- **credentials**: an access key id and its secret (and a session token, when STS issued them),
  as ``hpcbatch users add`` prints them. They sign requests to http:// and https:// endpoints.
- **profile**: a named section of the shared files: ``[NAME]`` in the credentials file
  (``AWS_SHARED_CREDENTIALS_FILE``, else ``~/.aws/credentials``) and ``[profile NAME]``
  (``[default]`` for the default one) in the config file (``AWS_CONFIG_FILE``, else
  ``~/.aws/config``), as the aws CLI reads them.
- **settings**: what one call signs with: credentials (or none), region and CA bundle.

Precedence, the aws CLI's own:
- credentials: an explicit ``--profile``; else ``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY``;
  else the profile named by ``AWS_PROFILE``, else ``default`` (keys from its credentials-file
  section, else its config-file section). A profile named explicitly that exists nowhere is an
  error; a missing ``default`` means no credentials (the request goes unsigned).
- region: ``--region``, ``HPCBATCH_REGION``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, the
  profile's ``region``, else ``local`` (the head's default).
- CA bundle: ``--ca-bundle``, ``AWS_CA_BUNDLE``, the profile's ``ca_bundle``, else the system's.

The files are read with :mod:`configparser` (2 ms) rather than a botocore Session (~120 ms with
its imports): every ``hpcbatch`` call against a TCP endpoint pays for this.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from hpcbatch.errors import HpcbatchError

DEFAULT_REGION = "local"
DEFAULT_PROFILE = "default"
REGION_ENVS = ("HPCBATCH_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")


class CredentialsError(HpcbatchError):
    """The credentials asked for cannot be found or read (a usage error: nothing was sent)."""


class Credentials(NamedTuple):
    """The attribute names botocore's signers read (``access_key``, ``secret_key``, ``token``)."""

    access_key: str
    secret_key: str
    token: str | None = None
    source: str = ""  # where they came from, for messages: "environment", "profile 'x'"


class Settings(NamedTuple):
    credentials: Credentials | None
    region: str
    ca_bundle: str | None


class Profile(NamedTuple):
    """One profile's keys from both files; empty dicts where a file has no such section."""

    name: str
    credentials: dict[str, str]
    config: dict[str, str]

    @property
    def exists(self) -> bool:
        return bool(self.credentials) or bool(self.config)

    def get(self, key: str) -> str | None:
        return self.credentials.get(key) or self.config.get(key) or None


def resolve(
    env: Mapping[str, str],
    profile: str | None = None,
    region: str | None = None,
    ca_bundle: str | None = None,
) -> Settings:
    """The settings for one call; ``profile``/``region``/``ca_bundle`` are the CLI's options."""
    chosen = load_profile(env, profile or env.get("AWS_PROFILE") or DEFAULT_PROFILE)
    named = profile or env.get("AWS_PROFILE")
    if named and not chosen.exists:
        raise CredentialsError(
            f"the profile {named!r} is in neither {credentials_path(env)} nor {config_path(env)}"
        )
    credentials = env_credentials(env) if not profile else None
    if credentials is None:
        credentials = profile_credentials(chosen)
    return Settings(
        credentials=credentials,
        region=region or first_env(env, REGION_ENVS) or chosen.get("region") or DEFAULT_REGION,
        ca_bundle=ca_bundle or env.get("AWS_CA_BUNDLE") or chosen.get("ca_bundle"),
    )


def env_credentials(env: Mapping[str, str]) -> Credentials | None:
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    return Credentials(key, secret, env.get("AWS_SESSION_TOKEN") or None, "environment")


def profile_credentials(profile: Profile) -> Credentials | None:
    # Both keys from one file: half a pair from each would sign with a mismatched secret.
    for section in (profile.credentials, profile.config):
        key, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
        if key and secret:
            token = section.get("aws_session_token") or None
            return Credentials(key, secret, token, f"profile {profile.name!r}")
    return None


def first_env(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if env.get(name):
            return env[name]
    return None


def home(env: Mapping[str, str]) -> str:
    return env.get("HOME") or os.path.expanduser("~")


def credentials_path(env: Mapping[str, str]) -> str:
    path = env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(home(env), ".aws", "credentials")
    return os.path.expanduser(path)


def config_path(env: Mapping[str, str]) -> str:
    path = env.get("AWS_CONFIG_FILE") or os.path.join(home(env), ".aws", "config")
    return os.path.expanduser(path)


def load_profile(env: Mapping[str, str], name: str) -> Profile:
    config_section = name if name == DEFAULT_PROFILE else f"profile {name}"
    return Profile(
        name=name,
        credentials=read_section(credentials_path(env), name),
        config=read_section(config_path(env), config_section),
    )


def read_section(path: str, section: str) -> dict[str, str]:
    """One section of an INI file as a dict; {} when the file or the section is absent."""
    import configparser

    parser = configparser.RawConfigParser()  # raw: a secret may contain '%'
    try:
        with open(path, encoding="utf-8") as stream:
            parser.read_file(stream, source=path)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise CredentialsError(f"cannot read {path}: {describe(exc)}") from exc
    if not parser.has_section(section):
        return {}
    return {key: value.strip() for key, value in parser.items(section)}


def describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__
