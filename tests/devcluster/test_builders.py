"""Text and command lines that cross a boundary: sshd_config (golden), ip argv, the start
command, known_hosts, the descriptor and the head configuration. Pure; no root needed."""

from __future__ import annotations

import tomllib
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from hpcbatch.devcluster import descriptor as desc
from hpcbatch.devcluster import keys, network, sshd

GOLDEN = Path(__file__).parent / "golden"
BASE = Path("/tmp/hpcbatch-devcluster")
FILES = sshd.SshdFiles.in_dir(BASE / "hosts" / "hb3f2a-h1")
CLIENT_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbA9d0vF3xQm3kP+u/7Zr0Vf6yq1Y2sT4hW8nE5cJdL"


def test_sshd_config_matches_the_golden_file() -> None:
    text = sshd.sshd_config("hb3f2a-h1", IPv4Address("10.77.12.11"), 22, FILES, CLIENT_KEY)
    assert text == (GOLDEN / "sshd_config").read_text()


def test_sshd_keeps_strict_modes_and_reads_only_the_hosts_own_authorized_keys() -> None:
    lines = sshd.sshd_config("h", IPv4Address("10.0.0.11"), 22, FILES, CLIENT_KEY).splitlines()
    assert "StrictModes yes" in lines
    assert f"AuthorizedKeysFile {BASE}/hosts/hb3f2a-h1/authorized_keys" in lines
    assert f"AuthorizedKeysCommand /bin/echo {CLIENT_KEY}" in lines
    assert "AuthorizedKeysCommandUser nobody" in lines


def test_a_client_key_that_is_not_type_and_base64_is_refused() -> None:
    for bad in ("ssh-ed25519", "ssh-ed25519 AAAA extra", "ssh-ed25519 AA%h", "a\nb c", ""):
        assert sshd.key_problem(bad) is not None, bad
    assert sshd.key_problem(CLIENT_KEY) is None


def test_sshd_starts_in_the_hosts_namespaces_with_bashrc_hidden() -> None:
    argv = sshd.start_argv("hb3f2a-h1", "/run/netns/hb3f2a-h1", FILES, BASE / "empty")
    assert argv[:8] == [
        "nsenter",
        "--net=/run/netns/hb3f2a-h1",
        "unshare",
        "--uts",
        "--mount",
        "--propagation",
        "private",
        "sh",
    ]
    assert argv[8:9] == ["-c"]
    assert argv[9] == (
        "hostname hb3f2a-h1 && "
        "{ [ ! -e /root/.bashrc ] || mount --bind /tmp/hpcbatch-devcluster/empty /root/.bashrc; }"
        " && exec /usr/sbin/sshd -D -f /tmp/hpcbatch-devcluster/hosts/hb3f2a-h1/sshd_config"
        " -E /tmp/hpcbatch-devcluster/hosts/hb3f2a-h1/sshd.log"
    )


def test_an_sshd_is_ours_only_if_it_names_our_config() -> None:
    conf = str(FILES.config)
    assert sshd.is_our_sshd(["/usr/sbin/sshd", "-D", "-f", conf, "-E", "x"], FILES)
    retitled = f"sshd: /usr/sbin/sshd -D -f {conf} -E x [listener] 0 of 100-200 startups"
    assert sshd.is_our_sshd([retitled], FILES)
    assert not sshd.is_our_sshd(["/usr/sbin/sshd", "-D", "-f", conf + "x"], FILES)
    assert not sshd.is_our_sshd(["sshd: root@notty"], FILES)
    assert not sshd.is_our_sshd(["/usr/bin/python3", "/usr/sbin/sshd", "-f", conf], FILES)
    assert not sshd.is_our_sshd([], FILES)


def test_paths_sshd_config_cannot_hold_are_refused() -> None:
    assert sshd.unsafe_path_reason(Path("/tmp/a b")) is not None
    assert sshd.unsafe_path_reason(Path("/tmp/100%")) is not None
    assert sshd.unsafe_path_reason(Path("/tmp/hpcbatch-devcluster")) is None


def test_ip_argv_for_a_host() -> None:
    subnet = IPv4Network("10.77.12.0/24")
    assert network.bridge_argvs("hb3f2a-br", IPv4Address("10.77.12.1"), subnet) == [
        ["ip", "link", "add", "hb3f2a-br", "type", "bridge"],
        ["ip", "addr", "add", "10.77.12.1/24", "dev", "hb3f2a-br"],
        ["ip", "link", "set", "hb3f2a-br", "up"],
    ]
    argvs = network.host_argvs(
        "hb3f2a-h1", "hb3f2a-v1", "hb3f2a-br", IPv4Address("10.77.12.11"), subnet
    )
    assert argvs == [
        ["ip", "netns", "add", "hb3f2a-h1"],
        [
            "ip",
            "link",
            "add",
            "hb3f2a-v1",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            "hb3f2a-h1",
        ],
        ["ip", "link", "set", "hb3f2a-v1", "master", "hb3f2a-br", "up"],
        ["ip", "-n", "hb3f2a-h1", "addr", "add", "10.77.12.11/24", "dev", "eth0"],
        ["ip", "-n", "hb3f2a-h1", "link", "set", "lo", "up"],
        ["ip", "-n", "hb3f2a-h1", "link", "set", "eth0", "up"],
    ]
    assert not any("route" in argv for argv in argvs)  # no default route: nothing leaves
    assert network.link_state_argv("hb3f2a-v1", up=False) == [
        "ip", "link", "set", "hb3f2a-v1", "down",
    ]  # fmt: skip


def test_known_hosts_lists_hosts_by_address() -> None:
    text = keys.known_hosts_text(
        [("10.77.12.11", 22, "ssh-ed25519 AAAA1"), ("10.77.12.12", 2222, "ssh-ed25519 AAAA2")]
    )
    assert text == "10.77.12.11 ssh-ed25519 AAAA1\n[10.77.12.12]:2222 ssh-ed25519 AAAA2\n"


def test_head_config_matches_the_golden_file_and_parses_as_toml() -> None:
    plan = desc.plan(BASE, "hb3f2a", IPv4Network("10.77.12.0/24"), 2, created_dir=True)
    text = desc.head_config(plan.hosts)
    assert text == (GOLDEN / "head-ce.toml").read_text()
    document = tomllib.loads(text)
    (environment,) = document["compute_environments"]
    assert environment["name"] == "devcluster" and environment["kind"] == "SSH"
    assert [h["address"] for h in environment["hosts"]] == ["10.77.12.11", "10.77.12.12"]
    assert environment["hosts"][0]["state_dir"] == f"{BASE}/hosts/hb3f2a-h1/agent"


def test_the_descriptor_round_trips() -> None:
    plan = desc.plan(BASE, "hb3f2a", IPv4Network("10.77.12.0/24"), 3, created_dir=False)
    ready = plan.with_pids({"hb3f2a-h2": 4242})
    assert desc.from_json(desc.to_json(ready)) == ready
    assert [h.sshd_pid for h in ready.hosts] == [None, 4242, None]
