"""``hpcbatch top``'s frame (cli/topview.py) fits the terminal it is drawn for: at 80x24 with
many queues, nodes and long names no line is wider than 80 and the frame is 24 lines, every
section still shown and a cut one saying how many rows it left out."""

from __future__ import annotations

import io
import re
from typing import Any

from rich.console import Console

from hpcbatch.cli.topview import frame, frame_text, short_id

NOW = 1_700_000_000_000
UUID = "75d3fefe-5861-4baf-9465-db8d30201791"


def crowded(queues: int = 40, nodes: int = 60, jobs: int = 10) -> dict[str, Any]:
    depth = {"SUBMITTED": 7, "PENDING": 12, "RUNNABLE": 123456, "STARTING": 3, "RUNNING": 4096}
    return {
        "time": NOW,
        "queues": [
            {"name": f"a-queue-with-a-very-long-name-{i}", "state": "ENABLED", "depth": depth}
            for i in range(queues)
        ],
        "nodes": [
            {
                "name": f"node-{i:03d}.rack-17.cluster.example.org",
                "computeEnvironment": "a-compute-environment",
                "state": "DOWN" if i % 7 == 0 else "ONLINE",
                "vcpus": "128",
                "allocatedVcpus": "127.5",
                "gpus": 8,
                "allocatedGpus": 3,
                "runningJobs": 130,
                "lastHeartbeatAt": NOW - 1234,
            }
            for i in range(nodes)
        ],
        "running": [
            {
                "jobId": f"{UUID}:{i}",
                "jobName": "a-job-name-far-longer-than-any-column",
                "jobQueue": "a-queue-with-a-very-long-name-1",
                "node": "node-001.rack-17.cluster.example.org",
                "startedAt": NOW - 3_600_000,
                "startReason": "started immediately: " + "room " * 40,
            }
            for i in range(jobs)
        ],
        "failed": [
            {
                "jobId": UUID,
                "jobName": "boom",
                "jobQueue": "default",
                "exitCode": 137,
                "statusReason": "OutOfMemory:\nthe container used more\tmemory than it asked for",
            }
            for _ in range(jobs)
        ],
    }


def test_80x24_with_many_queues_and_nodes_fits_and_says_what_it_cut() -> None:
    lines = frame_text(crowded(), "http://head.example.org:7650", 80, 24).splitlines()
    assert len(lines) == 24
    assert max(len(line) for line in lines) <= 80
    for title in ("Queues", "Nodes", "Running (newest)", "Failed (newest)"):
        assert title in lines
    more = [int(m.group(1)) for line in lines if (m := re.fullmatch(r"\+(\d+) more", line))]
    assert len(more) == 4  # every section was cut, and says by how much
    queue_rows = [line for line in lines if line.startswith("a-queue-with")]
    assert more[0] == 40 - len(queue_rows)
    node_rows = [line for line in lines if line.startswith("node-")]
    assert more[1] == 60 - len(node_rows)
    assert node_rows[0].split()[2:5] == ["DOWN", "######", "127.5/128"]
    assert node_rows[1].split()[2:8] == ["ONLINE", "######", "127.5/128", "##----", "3/8", "130"]
    # a reason's newline and tab never break a row in two
    failed = [line for line in lines if line.startswith("75d3fefe ")]
    assert failed and all("OutOfMemory: the container" in line for line in failed)


def test_the_live_frame_with_colours_and_block_bars_fits_80x24_too() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, height=24, force_terminal=True, color_system="truecolor")
    console.print(frame(crowded(), "http://head:7650", 80, 24, unicode=True), crop=True)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    lines = plain.splitlines()
    assert len(lines) == 24 and max(len(line) for line in lines) <= 80
    assert any("█" in line and "127.5/128" in line for line in lines)


def test_small_clusters_show_every_row_and_empty_sections_say_none() -> None:
    doc = crowded(queues=1, nodes=2, jobs=0)
    lines = frame_text(doc, "http://head:7650", 80, 24).splitlines()
    assert len(lines) <= 24
    assert sum(1 for line in lines if line.startswith("node-")) == 2
    assert lines.count("none") == 2  # no running and no failed jobs
    assert not any("more" in line for line in lines)


def test_once_without_a_height_shows_every_row_and_still_never_wraps() -> None:
    lines = frame_text(crowded(), "http://head:7650", 80).splitlines()
    assert sum(1 for line in lines if line.startswith("a-queue-with")) == 40
    assert sum(1 for line in lines if line.startswith("node-")) == 60
    assert max(len(line) for line in lines) <= 80


def test_a_narrow_terminal_crops_rather_than_wraps() -> None:
    lines = frame_text(crowded(), "http://head:7650", 40, 24).splitlines()
    assert len(lines) == 24 and max(len(line) for line in lines) <= 40


def test_a_document_missing_fields_still_draws() -> None:
    doc = {"queues": [{"name": "q"}], "nodes": [{"name": "n"}], "running": [{}], "failed": [{}]}
    text = frame_text(doc, "http://head:7650", 80, 24)
    assert "q" in text and "n" in text


def test_short_ids_keep_the_array_index_and_node_number() -> None:
    assert short_id(UUID) == "75d3fefe"
    assert short_id(f"{UUID}:12") == "75d3fefe:12"
    assert short_id(f"{UUID}#0") == "75d3fefe#0"
