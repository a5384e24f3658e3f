"""/metrics under faults: a metrics port in use stops the head before its state, ``listen = ""``
turns it off, a collector that raises is counted and the scrape answers, and scrapes across a
head restart are each whole or refused, never a broken answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hpcbatch.core.state import State
from hpcbatch.head.listener import bind_listener
from hpcbatch.metrics.exporter import HeadMetrics
from hpcbatch.metrics.server import MetricsServer
from tests.head.headproc import HeadProcess, free_port, wait_for
from tests.metrics.scrape import metrics_head, scrape, value

HEAD_TIMEOUT_S = 60


def env_without_metrics_override() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "HPCBATCH_METRICS_LISTEN"}


def test_a_metrics_port_in_use_stops_the_head_before_its_state(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "head.toml"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config.write_text(f'[local]\nnodes = 1\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
        cmd = [sys.executable, "-m", "hpcbatch.cli.main", "head", "--data-dir", str(data)]
        cmd += ["--listen", f"127.0.0.1:{free_port()}", "--config", str(config)]
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=HEAD_TIMEOUT_S,
            check=False,
            env=env_without_metrics_override(),
        )
    assert (done.returncode, done.stdout) == (4, "")
    assert done.stderr == (
        f"error: cannot listen on 127.0.0.1:{port}: the address is already in use (another "
        "head, or another program, listens there); stop it or choose another [metrics] listen "
        "(or --metrics-listen)\n"
    )
    assert sorted(p.name for p in data.iterdir()) == ["head.lock"]  # no state.db, no agents


def listening_sockets(pid: int) -> int:
    """How many TCP sockets in LISTEN state process ``pid`` holds."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                listening.add(fields[9])
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(target[len("socket:[") : -1])
    return len(held & listening)


@pytest.mark.parametrize("listen", ["", None])
def test_listen_empty_turns_metrics_off(tmp_path: Path, listen: str | None) -> None:
    """``listen = ""``: the head holds one listening socket (its API); the default: two."""
    extra = "" if listen is None else f'\n[metrics]\nlisten = "{listen}"\n'
    env = env_without_metrics_override()
    if listen is None:
        env["HPCBATCH_METRICS_LISTEN"] = "127.0.0.1:0"  # the default's behaviour, on a free port
    head = HeadProcess(tmp_path / "head", extra_config=extra, env=env)
    try:
        head.start()
        assert head.proc is not None
        assert listening_sockets(head.proc.pid) == (1 if listen == "" else 2)
        assert head.get("/hpcbatch/v1/health")["status"] == "ok"
    finally:
        head.cleanup()


class Raising:
    def collect(self) -> list[object]:
        raise RuntimeError("a collector bug")


def test_a_collector_that_raises_is_counted_and_the_scrape_answers() -> None:
    metrics = HeadMetrics()
    metrics.add_collector("broken", Raising())
    listener = bind_listener("127.0.0.1:0")
    server = MetricsServer(listener.sock, metrics.registry)
    server.start()
    try:
        url = f"{listener.url}/metrics"
        for expected in (1, 2):
            families = scrape(url)
            assert value(families, "hpcbatch_collector_errors", collector="broken") == expected
            assert value(families, "hpcbatch_collector_errors", collector="snapshot") == 0
            assert "process_cpu_seconds" in families
            assert "hpcbatch_queue_jobs" in families  # the other collectors still answer
    finally:
        server.stop()
        listener.close()


def test_scrapes_across_a_head_restart_are_whole_or_refused(tmp_path: Path) -> None:
    head, url = metrics_head(tmp_path / "head", nodes=1, vcpus=2, memory=2048)
    outcomes: list[str] = []
    stop = threading.Event()

    def scraper() -> None:
        while not stop.is_set():
            try:
                response = httpx.get(url, timeout=5)
            except httpx.TransportError:
                outcomes.append("refused")
                continue
            families = list(text_string_to_metric_families(response.text))  # parses whole
            names = {f.name for f in families}
            whole = response.status_code == 200 and "hpcbatch_queue_jobs" in names
            outcomes.append("ok" if whole else f"broken {response.status_code}")

    try:
        head.start()
        job = head.batch().submit_job(
            jobName="survivor",
            jobQueue="default",
            jobDefinition="default",
            containerOverrides={"command": ["sleep", "60"]},
        )["jobId"]
        head.wait_status(job, "RUNNING")
        thread = threading.Thread(target=scraper)
        thread.start()
        try:
            wait_for(lambda: "ok" in outcomes, 10, "a scrape before the restart")
            head.stop()
            wait_for(lambda: outcomes[-1] == "refused", 10, "scrapes refused while it is down")
            head.start()

            def running_again() -> bool:
                families = scrape(url)
                return (
                    value(families, "hpcbatch_queue_jobs", queue="default", status="RUNNING") == 1
                )

            wait_for(running_again, 30, "the adopted job RUNNING in /metrics")
        finally:
            stop.set()
            thread.join()
        assert not [o for o in outcomes if o.startswith("broken")], outcomes
        assert head.describe(job)["status"] == "RUNNING"
    finally:
        head.cleanup()


def test_a_snapshot_that_cannot_be_built_never_stops_the_loop() -> None:
    metrics = HeadMetrics()
    metrics.attach(object(), {})  # type: ignore[arg-type]  # no State: building it raises
    metrics.batch_committed([], 0.001, 0.002)  # does not raise
    metrics.refresh()
    assert metrics.collector_errors.labels("loop")._value.get() == 2
    assert metrics.pass_time._sum.get() == 0.001  # what came before the failure is counted


class Blocking:
    """A collector that holds its scrape until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def collect(self) -> list[object]:
        self.entered.set()
        assert self.release.wait(30)
        return []


def test_a_slow_scrape_never_holds_up_the_loop_side(tmp_path: Path) -> None:
    """While a scrape is stuck in a collector, what the loop calls (counting a batch, a new
    snapshot) and what the API calls (a request) finish at once: they share no lock with it."""
    metrics = HeadMetrics()
    blocking = Blocking()
    metrics.add_collector("slow", blocking)
    metrics.attach(State(), {})
    listener = bind_listener("127.0.0.1:0")
    server = MetricsServer(listener.sock, metrics.registry)
    server.start()
    answers: list[int] = []
    scraper = threading.Thread(
        target=lambda: answers.append(httpx.get(f"{listener.url}/metrics", timeout=30).status_code)
    )
    try:
        scraper.start()
        assert blocking.entered.wait(10)
        done = threading.Event()

        def loop_side() -> None:
            metrics.batch_committed([], 0.001, 0.001)
            metrics.refresh()
            metrics.commands_sent(0.001)
            metrics.request_done("SubmitJob", 200, 0.001)
            done.set()

        threading.Thread(target=loop_side).start()
        assert done.wait(5), "the loop's side waited for a scrape"
        assert not answers  # the scrape is still held
    finally:
        blocking.release.set()
        scraper.join()
        server.stop()
        listener.close()
    assert answers == [200]
