"""``[metrics] listen``: default on, "" off, HOST:PORT only, no other key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcbatch.errors import ValidationError
from hpcbatch.head.config import load_config


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "head.toml"
    path.write_text(text)
    return path


def test_default_is_on_and_the_table_and_the_override_set_it(tmp_path: Path) -> None:
    assert load_config(None).metrics_listen == "127.0.0.1:9650"
    off = config(tmp_path, '[metrics]\nlisten = ""\n')
    assert load_config(off).metrics_listen == ""
    assert load_config(off, metrics_listen="0.0.0.0:9100").metrics_listen == "0.0.0.0:9100"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[metrics]\nport = 9650\n", "config.metrics.port: is not a known setting"),
        ('[metrics]\nlisten = "unix:/run/m.sock"\n', "config.metrics.listen: must be HOST:PORT"),
        ("[metrics]\nlisten = 9650\n", "config.metrics_listen: must be str (got 9650)"),
        ('metrics = "x"\n', "config.metrics: must be a table"),
    ],
)
def test_bad_metrics_settings_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_config(config(tmp_path, text))
    assert message in str(caught.value)
