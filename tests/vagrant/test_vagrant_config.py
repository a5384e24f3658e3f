"""The pure parts of hpcbatch vagrant against outputs recorded from vagrant 2.3.4: SSH entries,
compute names, running checks and the head's host list (which the head's own parser accepts)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from hpcbatch.head.hosts import parse_compute_environments
from hpcbatch.provision import vagrant_config as vc
from tests.vagrant.conftest import RECORDED, VAGRANT_DIR, Replay, import_python_vagrant

LIBVIRT_KEYS = "/home/alice/src/hpcbatch/vagrant/.vagrant/machines"
SETTINGS = vc.HeadSettings(known_hosts="/home/alice/vagrant_known_hosts")

vagrant = import_python_vagrant()


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def test_libvirt_ssh_config_gives_each_machine_its_address_port_user_and_key() -> None:
    entries = vc.parse_ssh_config(recorded("ssh-config-libvirt.txt"))
    assert entries == (
        vc.SshEntry(
            "compute1",
            "192.168.121.37",
            22,
            "vagrant",
            f"{LIBVIRT_KEYS}/compute1/libvirt/private_key",
        ),
        vc.SshEntry(
            "compute2",
            "192.168.121.154",
            22,
            "vagrant",
            f"{LIBVIRT_KEYS}/compute2/libvirt/private_key",
        ),
    )


def test_virtualbox_ssh_config_forwarded_ports_and_a_quoted_key_path() -> None:
    entries = vc.parse_ssh_config(recorded("ssh-config-virtualbox.txt"))
    assert [(e.name, e.hostname, e.port) for e in entries] == [
        ("compute1", "127.0.0.1", 2200),
        ("compute2", "127.0.0.1", 2201),
        ("compute3", "127.0.0.1", 2202),
    ]
    assert entries[2].identity_file == (
        "/home/alice/My Projects/hpcbatch/vagrant/.vagrant/machines/compute3/virtualbox/private_key"
    )


def test_keywords_are_case_insensitive_and_the_first_value_wins() -> None:
    text = "Host compute1\n  hostname 10.0.0.1\n  HOSTNAME 10.0.0.2\n  port 2222\n"
    assert vc.parse_ssh_config(text) == (
        vc.SshEntry("compute1", "10.0.0.1", 2222, "vagrant", None),
    )


def test_a_port_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(vc.VagrantError, match="compute1 the port 'ssh'"):
        vc.parse_ssh_config("Host compute1\n  HostName h\n  Port ssh\n")


def test_head_host_list_golden() -> None:
    entries = vc.parse_ssh_config(recorded("ssh-config-libvirt.txt"))
    toml = vc.head_hosts_toml(entries, ["compute1", "compute2"], SETTINGS)
    assert toml == (
        "[[compute_environments]]\n"
        'name = "vagrant"\n'
        'kind = "SSH"\n'
        "[[compute_environments.hosts]]\n"
        'name = "compute1"\n'
        'address = "192.168.121.37"\n'
        "port = 22\n"
        'user = "vagrant"\n'
        f'key = "{LIBVIRT_KEYS}/compute1/libvirt/private_key"\n'
        'known_hosts = "/home/alice/vagrant_known_hosts"\n'
        "trust_on_first_use = true\n"
        'state_dir = "/var/lib/hpcbatch-agent"\n'
        "[[compute_environments.hosts]]\n"
        'name = "compute2"\n'
        'address = "192.168.121.154"\n'
        "port = 22\n"
        'user = "vagrant"\n'
        f'key = "{LIBVIRT_KEYS}/compute2/libvirt/private_key"\n'
        'known_hosts = "/home/alice/vagrant_known_hosts"\n'
        "trust_on_first_use = true\n"
        'state_dir = "/var/lib/hpcbatch-agent"\n'
    )


def test_the_heads_own_parser_accepts_the_host_list(tmp_path: Path) -> None:
    """VirtualBox's three VMs share 127.0.0.1 on distinct ports; the keys must exist (0600)."""
    entries = []
    for entry in vc.parse_ssh_config(recorded("ssh-config-virtualbox.txt")):
        key = tmp_path / "My Keys" / entry.name
        key.parent.mkdir(exist_ok=True)
        key.write_text("key\n")
        key.chmod(0o600)
        entries.append(dataclasses.replace(entry, identity_file=str(key)))
    toml = vc.head_hosts_toml(entries, ["compute1", "compute2", "compute3"], SETTINGS)
    (ce,) = parse_compute_environments(tomllib.loads(toml)["compute_environments"], set())
    assert [(h.name, h.address, h.port, h.user) for h in ce.hosts] == [
        ("compute1", "127.0.0.1", 2200, "vagrant"),
        ("compute2", "127.0.0.1", 2201, "vagrant"),
        ("compute3", "127.0.0.1", 2202, "vagrant"),
    ]
    assert all(h.trust_on_first_use for h in ce.hosts)
    assert ce.hosts[0].key == tmp_path / "My Keys" / "compute1"


def test_a_machine_without_hostname_is_named_in_the_error() -> None:
    entries = vc.parse_ssh_config(recorded("ssh-config-no-hostname.txt"))
    with pytest.raises(vc.VagrantError, match="^compute2 has no HostName .* not created"):
        vc.head_hosts_toml(entries, ["compute1", "compute2"], SETTINGS)


def test_a_machine_missing_from_the_output_is_named_in_the_error() -> None:
    entries = vc.parse_ssh_config(recorded("ssh-config-libvirt.txt"))
    with pytest.raises(vc.VagrantError, match="nothing for compute3"):
        vc.head_hosts_toml(entries, ["compute1", "compute2", "compute3"], SETTINGS)


def test_compute_names_in_number_order_without_the_head() -> None:
    statuses = [SimpleNamespace(name=n, state="running") for n in ("head", "compute10", "compute9")]
    statuses.append(SimpleNamespace(name="computer", state="running"))
    assert vc.compute_names(statuses) == ["compute9", "compute10"]


def test_recorded_statuses_through_python_vagrant(replay: Replay) -> None:
    replay.answer("status-libvirt-not-created.txt")
    statuses = vagrant.Vagrant(root=str(VAGRANT_DIR)).status()
    assert [(s.name, s.state, s.provider) for s in statuses] == [
        ("head", "not_created", "libvirt"),
        ("compute1", "not_created", "libvirt"),
        ("compute2", "not_created", "libvirt"),
    ]
    assert replay.calls == ["status --machine-readable"]
    with pytest.raises(vc.VagrantError, match="^compute1 is not_created, compute2 is not_created"):
        vc.check_running(statuses, vc.compute_names(statuses))


def test_running_libvirt_machines_pass_the_check(replay: Replay) -> None:
    replay.answer("status-libvirt-running.txt")
    statuses = vagrant.Vagrant(root=str(VAGRANT_DIR)).status()
    assert {s.state for s in statuses} == {"running"}
    vc.check_running(statuses, vc.compute_names(statuses))


def test_virtualbox_mixed_states_name_each_idle_machine(replay: Replay) -> None:
    replay.answer("status-virtualbox-mixed.txt")
    statuses = vagrant.Vagrant(root=str(VAGRANT_DIR)).status()
    assert [(s.name, s.state) for s in statuses] == [
        ("head", "running"),
        ("compute1", "running"),
        ("compute2", "poweroff"),
        ("compute3", "not_created"),
    ]
    with pytest.raises(vc.VagrantError, match="^compute2 is poweroff, compute3 is not_created:"):
        vc.check_running(statuses, vc.compute_names(statuses))
