"""Names and subnets: pure functions, no root needed."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

from hpcbatch.devcluster import naming


def test_a_random_prefix_is_hb_and_four_hex_digits() -> None:
    assert naming.random_prefix(lambda n: "3f2a"[: 2 * n]) == "hb3f2a"
    prefix = naming.random_prefix()
    assert naming.check_prefix(prefix) is None
    assert len(prefix) == 6


def test_every_name_fits_the_kernels_interface_limit() -> None:
    longest = "a" * 10
    assert naming.check_prefix(longest) is None
    last = naming.MAX_HOSTS
    for name in (
        naming.bridge_name(longest),
        naming.veth_name(longest, last),
        naming.host_name(longest, last),
    ):
        assert len(name) <= naming.IFNAMSIZ, name


def test_bad_prefixes_are_refused_with_a_reason() -> None:
    for bad in ("", "h", "HB12", "1abc", "hb-12", "a" * 11, "hb 1"):
        reason = naming.check_prefix(bad)
        assert reason is not None and "prefix" in reason


def test_a_cluster_owns_only_its_own_names() -> None:
    assert naming.owns_name("hb3f2a", "hb3f2a-br")
    assert naming.owns_name("hb3f2a", "hb3f2a-h12")
    assert naming.owns_name("hb3f2a", "hb3f2a-v3")
    assert not naming.owns_name("hb3f2a", "hb3f2ab-h1")
    assert not naming.owns_name("hb3f2", "hb3f2a-h1")
    assert not naming.owns_name("hb3f2a", "hb3f2a-x")
    assert not naming.owns_name("hb3f2a", "eth0")


def test_addresses_bridge_is_1_hosts_from_11() -> None:
    subnet = IPv4Network("10.77.12.0/24")
    assert str(naming.bridge_address(subnet)) == "10.77.12.1"
    assert str(naming.host_address(subnet, 1)) == "10.77.12.11"
    assert str(naming.host_address(subnet, naming.MAX_HOSTS)) == "10.77.12.254"


def test_host_count_bounds() -> None:
    assert naming.check_host_count(1) is None
    assert naming.check_host_count(naming.MAX_HOSTS) is None
    assert naming.check_host_count(0) is not None
    assert naming.check_host_count(naming.MAX_HOSTS + 1) is not None


def test_the_subnet_follows_from_the_prefix_and_differs_between_prefixes() -> None:
    first = naming.choose_subnet("hb3f2a", [])
    assert first == naming.choose_subnet("hb3f2a", [])
    assert first.prefixlen == 24 and first.subnet_of(IPv4Network("10.0.0.0/8"))
    others = {naming.choose_subnet(f"hb{i:04x}", []) for i in range(200)}
    assert len(others) > 190  # a hash, not a counter: collisions are rare


def test_the_subnet_avoids_every_routed_network() -> None:
    first = naming.choose_subnet("hb3f2a", [])
    second = naming.choose_subnet("hb3f2a", [first])
    assert second != first
    wide = IPv4Network(f"{first.network_address}/16", strict=False)
    third = naming.choose_subnet("hb3f2a", [wide])
    assert not third.overlaps(wide)


def test_routes_are_read_from_ip_json_ignoring_default_and_ipv6() -> None:
    output = json.dumps(
        [
            {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
            {"dst": "192.0.2.0/24", "dev": "eth0"},
            {"type": "local", "dst": "10.9.8.7", "table": "local"},
            {"dst": "fe80::/64", "dev": "eth0"},
        ]
    )
    assert naming.routed_networks(output) == [
        IPv4Network("192.0.2.0/24"),
        IPv4Network("10.9.8.7/32"),
    ]
    assert naming.routed_networks("") == []
