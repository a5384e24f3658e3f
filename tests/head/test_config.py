"""The head's settings: TOML file, overrides, and clear errors naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcbatch.errors import ValidationError
from hpcbatch.head.config import load_config


def test_file_then_command_line(tmp_path: Path) -> None:
    path = tmp_path / "head.toml"
    path.write_text(
        'listen = "127.0.0.1:9000"\nretention_days = 1\n[local]\nnodes = 3\n'
        "[scheduler]\nbackfill_depth = 50\n"
    )
    config = load_config(path, data_dir=tmp_path, listen=None)
    assert (config.listen, config.local.nodes, config.backfill_depth) == ("127.0.0.1:9000", 3, 50)
    assert config.retention_ms == 86_400_000
    assert config.purge_every_s == 600  # a tenth of a day is more than 10 minutes
    assert load_config(path, listen="unix:/tmp/x.sock").listen == "unix:/tmp/x.sock"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("nosuch = 1", "config.nosuch"),
        ('min_timeout_seconds = "60"', "config.min_timeout_seconds"),
        ("agent_message_rate = 1.5", "config.agent_message_rate"),
        ("retention_days = 0", "config.retention_days"),
        ("retention_days = -1", "config.retention_days"),
        ("retention_days = nan", "config.retention_days"),
        ("[local]\nnodes = 65", "config.local.nodes"),
        ("[local]\ngpus = [-1]", "config.local.gpus"),
        ("[local]\ncolour = 1", "config.local.colour"),
        ("listen = ", "config"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "head.toml"
    path.write_text(text)
    with pytest.raises(ValidationError) as raised:
        load_config(path)
    assert raised.value.field.startswith(field)


@pytest.mark.parametrize(("days", "every_s"), [(7, 600), (1 / 1440, 6), (1e-6, 1)])
def test_the_purge_runs_every_tenth_of_the_retention_within_bounds(
    tmp_path: Path, days: float, every_s: float
) -> None:
    """A short retention is purged often enough that a steady stream of jobs does not hold
    ten minutes of finished jobs; never more than once a second, never less than every 10
    minutes."""
    path = tmp_path / "head.toml"
    path.write_text(f"retention_days = {days!r}\n")
    assert load_config(path).purge_every_s == pytest.approx(every_s, rel=1e-3)


def test_the_agent_message_limit_defaults_and_its_rules(tmp_path: Path) -> None:
    path = tmp_path / "head.toml"
    path.write_text("")
    assert str(load_config(path).agent_message_limit) == "limit: 10,000/s, bursts of 50,000"
    path.write_text("agent_message_rate = 200\nagent_message_burst = 1000\n")
    assert str(load_config(path).agent_message_limit) == "limit: 200/s, bursts of 1,000"
    for text, rule in [
        ("agent_message_rate = 0", "config.agent_message_rate: must be at least 1 message a "
         "second (got 0)"),
        ("agent_message_burst = -5", "config.agent_message_burst: must be at least 1 message "
         "(got -5)"),
    ]:  # fmt: skip
        path.write_text(text)
        with pytest.raises(ValidationError) as raised:
            load_config(path)
        assert str(raised.value) == rule


def test_a_non_loopback_listen_needs_tls_unless_insecure(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is not a loopback address, so it needs TLS"):
        load_config(None, data_dir=tmp_path, listen="10.1.2.3:7650")
    assert load_config(None, data_dir=tmp_path, listen="10.1.2.3:7650", insecure=True).insecure
    for loopback in ("127.0.0.1:1", "[::1]:1", "localhost:1", "unix:/run/x.sock"):
        load_config(None, data_dir=tmp_path, listen=loopback)
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    config = tmp_path / "head.toml"
    config.write_text(f'[tls]\ncert = "{cert}"\n')
    with pytest.raises(ValidationError, match="needs both cert and key"):
        load_config(config, data_dir=tmp_path)
    config.write_text(f'[tls]\ncert = "{cert}"\nkey = "{tmp_path}/missing.pem"\n')
    with pytest.raises(ValidationError, match="missing.pem does not exist or is not readable"):
        load_config(config, data_dir=tmp_path)


def test_the_socket_must_be_absolute_and_one_listener_must_remain(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="config.socket: must be an absolute path"):
        load_config(None, data_dir=tmp_path, socket="head.sock")
    with pytest.raises(ValidationError, match="the head would be unreachable"):
        load_config(None, data_dir=tmp_path, socket="", listen="")
