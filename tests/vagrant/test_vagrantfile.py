"""vagrant/Vagrantfile under Debian's vagrant 2.3.4: it validates with every setting in its
range, refuses a bad one naming the variable and the rule, and lists head + N VMs. Nothing is
created: `vagrant up` needs a box download and a hypervisor."""

from __future__ import annotations

import subprocess

import pytest

from hpcbatch.cli.main import main
from tests.vagrant.conftest import VAGRANT_DIR, import_python_vagrant, require_vagrant

vagrant = import_python_vagrant()


def validate(env: dict[str, str], *extra: str, **settings: str) -> subprocess.CompletedProcess[str]:
    require_vagrant()
    env = {**env, **{f"HPCBATCH_VAGRANT_{k.upper()}": v for k, v in settings.items()}}
    return subprocess.run(
        ["vagrant", "validate", *extra],
        cwd=VAGRANT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"compute": "1"},
        {"compute": "5", "cpus": "4", "memory": "4096"},
        {"box": "generic/debian12", "subnet": "10.42.7"},
    ],
    ids=["defaults", "one-compute", "five-computes", "custom-box-and-subnet"],
)
def test_validates_without_a_provider(
    vagrant_env: dict[str, str], settings: dict[str, str]
) -> None:
    done = validate(vagrant_env, "--ignore-provider", **settings)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Vagrantfile validated successfully." in done.stdout


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"compute": "0"}, 'HPCBATCH_VAGRANT_COMPUTE must be an integer from 1 to 64 (got "0")'),
        (
            {"compute": "abc"},
            'HPCBATCH_VAGRANT_COMPUTE must be an integer from 1 to 64 (got "abc")',
        ),
        ({"compute": "65"}, "HPCBATCH_VAGRANT_COMPUTE must be an integer from 1 to 64"),
        ({"cpus": "0"}, "HPCBATCH_VAGRANT_CPUS must be an integer from 1 to 64"),
        ({"memory": "256"}, "HPCBATCH_VAGRANT_MEMORY must be an integer from 512 to 262144"),
        ({"box": "debian bookworm"}, "HPCBATCH_VAGRANT_BOX must be a box name"),
        ({"subnet": "192.168.300"}, "HPCBATCH_VAGRANT_SUBNET must be the first three octets"),
    ],
    ids=["compute-0", "compute-abc", "compute-65", "cpus-0", "memory-256", "box", "subnet"],
)
def test_a_bad_setting_fails_naming_the_variable_and_rule(
    vagrant_env: dict[str, str], settings: dict[str, str], message: str
) -> None:
    done = validate(vagrant_env, "--ignore-provider", **settings)
    assert done.returncode != 0
    assert message in done.stderr


def test_every_bad_setting_is_named_at_once(vagrant_env: dict[str, str]) -> None:
    done = validate(vagrant_env, "--ignore-provider", compute="x", memory="1")
    assert "HPCBATCH_VAGRANT_COMPUTE" in done.stderr and "HPCBATCH_VAGRANT_MEMORY" in done.stderr


def test_validates_with_the_libvirt_provider(vagrant_libvirt: dict[str, str]) -> None:
    done = validate(vagrant_libvirt)
    assert done.returncode == 0, done.stderr + done.stdout
    vagrant.Vagrant(root=str(VAGRANT_DIR)).validate(str(VAGRANT_DIR))  # raises if it fails


@pytest.mark.parametrize("compute", [1, 5])
def test_python_vagrant_lists_head_and_n_computes_not_created(
    vagrant_libvirt: dict[str, str], monkeypatch: pytest.MonkeyPatch, compute: int
) -> None:
    monkeypatch.setenv("HPCBATCH_VAGRANT_COMPUTE", str(compute))
    statuses = vagrant.Vagrant(root=str(VAGRANT_DIR)).status()
    names = ["head"] + [f"compute{k}" for k in range(1, compute + 1)]
    assert [(s.name, s.state, s.provider) for s in statuses] == [
        (name, "not_created", "libvirt") for name in names
    ]


def test_hpcbatch_vagrant_on_vms_not_created(
    vagrant_libvirt: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["vagrant", "status", "--dir", str(VAGRANT_DIR)]) == 1
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [
        ["head", "not_created"],
        ["compute1", "not_created"],
        ["compute2", "not_created"],
    ]
    assert main(["vagrant", "ssh-config", "--dir", str(VAGRANT_DIR)]) == 1
    assert "compute1 is not_created, compute2 is not_created" in capsys.readouterr().err
