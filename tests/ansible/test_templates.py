"""The files the head role writes for programs it does not run here: the systemd unit (no
systemd in these machines: the tests run the start-script path) checked by systemd-analyze, and
the Prometheus scrape job checked by promtool. Rendered by Ansible's own template module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.ansible.provision import ANSIBLE_DIR, VENV_BIN
from tests.cluster.prometheus_proc import require_program

VENV = Path(sys.executable).parent.parent


def render(template: str, dest: Path, tmp_path: Path, **values: object) -> str:
    variables = {
        "head_venv": str(VENV),
        "head_etc": "/etc/hpcbatch",
        "head_data_dir": "/var/lib/hpcbatch",
        "head_log_dir": "/var/log/hpcbatch",
        "head_run_dir": "/run/hpcbatch",
        "head_prefix": "/opt/hpcbatch",
        "head_metrics_listen": "10.0.0.10:9650",
        "head_prometheus_file_sd_dir": "",
        **values,
    }
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "home"), "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run(
        [
            str(VENV_BIN / "ansible"),
            "localhost",
            "-c",
            "local",
            "-m",
            "ansible.builtin.template",
            "-a",
            f"src={ANSIBLE_DIR / 'roles/head/templates' / template} dest={dest}",
            "-e",
            f"@{tmp_path / 'vars.json'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dest.read_text()


def test_the_systemd_unit_is_one_systemd_accepts(tmp_path: Path) -> None:
    analyze = require_program("systemd-analyze")
    unit = tmp_path / "hpcbatch-head.service"
    text = render("hpcbatch-head.service.j2", unit, tmp_path)
    assert f"ExecStart={VENV}/bin/hpcbatch head --config /etc/hpcbatch/head.toml" in text
    assert "KillMode=process" in text  # a restart must not kill the jobs the head re-adopts
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), (
        done.stdout + done.stderr
    )


def test_the_prometheus_scrape_job_is_one_promtool_accepts(tmp_path: Path) -> None:
    promtool = require_program("promtool")
    snippet = render("prometheus-scrape.yml.j2", tmp_path / "scrape.yml", tmp_path)
    config = tmp_path / "prometheus.yml"
    config.write_text("scrape_configs:\n" + "".join(f"  {line}\n" for line in snippet.splitlines()))
    done = subprocess.run(
        [promtool, "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10.0.0.10:9650" in snippet
