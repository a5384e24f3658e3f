"""hpcbatch vagrant against a stand-in vagrant that replays recorded outputs."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from hpcbatch.cli.main import main
from tests.vagrant.conftest import VAGRANT_DIR, Replay, import_python_vagrant

DIR = ["--dir", str(VAGRANT_DIR)]

vagrant = import_python_vagrant()


def test_status_prints_each_vm_and_exits_0_when_all_run(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    replay.answer("status-libvirt-running.txt")
    assert main(["vagrant", "status", *DIR]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["VM", "STATE", "PROVIDER"]
    assert [line.split() for line in lines[1:]] == [
        ["head", "running", "libvirt"],
        ["compute1", "running", "libvirt"],
        ["compute2", "running", "libvirt"],
    ]


def test_status_json_and_exit_1_when_a_vm_is_not_running(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    replay.answer("status-virtualbox-mixed.txt")
    assert main(["vagrant", "status", *DIR, "-o", "json"]) == 1
    machines = json.loads(capsys.readouterr().out)["machines"]
    assert [(m["name"], m["state"]) for m in machines][2:] == [
        ("compute2", "poweroff"),
        ("compute3", "not_created"),
    ]


def test_ssh_config_prints_the_head_host_list_from_one_vagrant_call(
    replay: Replay, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    replay.answer("status-libvirt-running.txt", "ssh-config-libvirt.txt")
    known = tmp_path / "known_hosts"
    assert main(["vagrant", "ssh-config", *DIR, "--known-hosts", str(known)]) == 0
    config = tomllib.loads(capsys.readouterr().out)
    (ce,) = config["compute_environments"]
    assert ce["name"] == "vagrant"
    assert [(h["name"], h["address"], h["port"]) for h in ce["hosts"]] == [
        ("compute1", "192.168.121.37", 22),
        ("compute2", "192.168.121.154", 22),
    ]
    assert {h["known_hosts"] for h in ce["hosts"]} == {str(known)}
    assert replay.calls == ["status --machine-readable", "ssh-config /^compute[0-9]+$/"]


def test_ssh_config_refuses_vms_that_are_not_running(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    replay.answer("status-virtualbox-mixed.txt")
    assert main(["vagrant", "ssh-config", *DIR]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "compute2 is poweroff, compute3 is not_created" in captured.err
    assert "hpcbatch vagrant up" in captured.err


def test_ssh_config_names_a_vm_without_hostname(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    replay.answer("status-libvirt-running.txt", "ssh-config-no-hostname.txt")
    assert main(["vagrant", "ssh-config", *DIR]) == 1
    assert "compute2 has no HostName" in capsys.readouterr().err


def test_a_failing_vagrant_is_reported_with_its_exit_status(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    replay.answer("status-libvirt-running.txt")  # and no ssh-config: vagrant says not ready
    assert main(["vagrant", "ssh-config", *DIR]) == 1
    assert "`vagrant ssh-config` failed (exit 1)" in capsys.readouterr().err


def test_up_runs_vagrant_up_and_says_what_next(
    replay: Replay, capsys: pytest.CaptureFixture[str]
) -> None:
    replay.answer("status-libvirt-running.txt")
    assert main(["vagrant", "up", *DIR, "--provider", "libvirt", "--no-provision"]) == 0
    assert replay.calls == ["up --no-provision --provider=libvirt"]
    assert "hpcbatch vagrant ssh-config" in capsys.readouterr().out


def test_no_vagrantfile_and_no_vagrant_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["vagrant", "status", "--dir", str(tmp_path)]) == 1
    assert f"no Vagrantfile in {tmp_path}" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["vagrant", "status", *DIR]) == 1
    assert "the vagrant program is not on PATH" in capsys.readouterr().err
