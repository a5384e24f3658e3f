"""What a Hydra proxy started through hpcbatch's launcher sees: mpiexec's environment, carried by
the launch client, over its node's job's, except the node's own variables (mpienv.py); the
request field that carries it, bound by the proof (launchwire.py); and the client that sends it
for Hydra's proxy alone (launchclient.py). The real thing: test_agent_launch_mpi.py."""

from __future__ import annotations

import pytest
from hpcbatch_agent import launchclient
from hpcbatch_agent import launchwire as w
from hpcbatch_agent.mpienv import gang_environment, is_node_variable, rank_environment

NODE = {
    "AWS_BATCH_JOB_NODE_INDEX": "2",
    "AWS_BATCH_JOB_ID": "j#2",
    "AWS_BATCH_JOB_NUM_NODES": "4",
    "HPCBATCH_ATTEMPT_ID": "j#2-a1",
    "CUDA_VISIBLE_DEVICES": "1",
    "PATH": "/usr/bin",
    "ONLY_ON_NODE": "kept",
}
MPIEXEC = {
    "AWS_BATCH_JOB_NODE_INDEX": "0",
    "AWS_BATCH_JOB_ID": "j#0",
    "AWS_BATCH_JOB_NUM_NODES": "4",
    "HPCBATCH_ATTEMPT_ID": "j#0-a1",
    "HPCBATCH_HOSTFILE": "/state/launch/j#0/hostfile",
    "HYDRA_HOST_FILE": "/state/launch/j#0/hostfile.mpich",
    "CUDA_VISIBLE_DEVICES": "0",
    "PATH": "/opt/app/bin:/usr/bin",
    "OMP_NUM_THREADS": "4",
}


def test_a_rank_keeps_its_nodes_own_variables_and_gets_the_rest_from_mpiexec() -> None:
    assert rank_environment(NODE, MPIEXEC) == {
        "AWS_BATCH_JOB_NODE_INDEX": "2",
        "AWS_BATCH_JOB_ID": "j#2",
        "AWS_BATCH_JOB_NUM_NODES": "4",
        "HPCBATCH_ATTEMPT_ID": "j#2-a1",
        "CUDA_VISIBLE_DEVICES": "1",
        "PATH": "/opt/app/bin:/usr/bin",  # what the user changed before mpiexec
        "OMP_NUM_THREADS": "4",
        "ONLY_ON_NODE": "kept",
    }  # the main node's hostfile paths are not this node's: left out


def test_every_path_into_a_nodes_launch_dir_is_a_node_variable() -> None:
    env = {"HPCBATCH_HOSTS": "10.0.0.1:1,10.0.0.2:1"}
    added = gang_environment(env, "/state/launch/j#0", run_as_root=False)
    paths = [name for name, value in added.items() if value.startswith("/state/launch/")]
    assert paths and all(is_node_variable(name) for name in paths), added
    assert added["HYDRA_ENV"] == "none"
    assert "HYDRA_ENV" not in gang_environment(env | {"HYDRA_ENV": "all"}, "/d", False)


def test_the_proof_binds_the_environment_and_a_bad_one_is_named() -> None:
    text = w.client_text("s", "c", "a", "cmd", {"B": "2", "A": "1"})
    assert text == w.client_text("s", "c", "a", "cmd", {"A": "1", "B": "2"})
    assert text != w.client_text("s", "c", "a", "cmd", {"A": "1", "B": "3"})
    assert text != w.client_text("s", "c", "a", "cmd")
    request = {"nonce": "0" * 64, "proof": "0" * 64, "attempt_id": "a", "command": "c"}
    assert w.request_problem(request | {"env": {"A": "1"}}) is None
    for bad in ({"A=B": "1"}, {"": "1"}, {"A": 1}, {"A": "x\0y"}, ["A"]):
        problem = w.request_problem(request | {"env": bad})
        assert problem is not None and "'env'" in problem, bad


@pytest.mark.parametrize(
    ("command", "sent"),
    [
        ('"/usr/bin/hydra_pmi_proxy" --control-port h:1 --proxy-id 1', True),
        ("hydra_pmi_proxy --control-port h:1", True),
        ("orted -mca ess env -mca ess_base_jobid 1", False),
        ("echo hydra_pmi_proxy", False),
    ],
)
def test_the_client_sends_its_environment_to_hydras_proxy_alone(
    command: str, sent: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FROM_MPIEXEC", "yes")
    env = launchclient.forwarded_env(command)
    assert (env is not None and env["FROM_MPIEXEC"] == "yes") == sent
