"""Wall time of ``hpcbatch submit`` as a user pays it: a fresh process per submission.

Prints one JSON line: median / p90 / min / max milliseconds over N runs. Point it at a real
head with ``--endpoint``; ``--stub`` starts a trivial in-process head instead, which isolates
the CLI's own cost (interpreter start, imports, one HTTP round trip).

    python bench/cli_submit.py --endpoint http://127.0.0.1:7650 -n 30
    python bench/cli_submit.py --stub
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path


def find_script() -> str:
    beside = shutil.which("hpcbatch", path=str(Path(sys.executable).parent))
    found = beside or shutil.which("hpcbatch")
    if not found:
        raise SystemExit("bench: no 'hpcbatch' console script found; pip install -e . first")
    return found


class _StubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = b'{"jobArn":"arn:aws:batch:local:0:job/x","jobName":"bench","jobId":"x"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def start_stub() -> tuple[str, http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StubHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def time_runs(script: str, endpoint: str, runs: int, queue: str) -> tuple[list[float], int]:
    argv = [
        script,
        "submit",
        "--endpoint",
        endpoint,
        "--queue",
        queue,
        "--name",
        "bench",
        "--",
        "true",
    ]
    env = dict(os.environ)
    subprocess.run(argv, capture_output=True, env=env, check=False)  # warm the page cache and .pyc
    samples, failures = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, env=env, check=False)
        samples.append((time.perf_counter() - start) * 1000)
        failures += result.returncode != 0
    return samples, failures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--endpoint", default=os.environ.get("HPCBATCH_ENDPOINT", "http://127.0.0.1:7650")
    )
    parser.add_argument(
        "--stub", action="store_true", help="measure against an in-process stub head"
    )
    parser.add_argument("-n", "--runs", type=int, default=20)
    parser.add_argument("--queue", default="default")
    args = parser.parse_args()
    server = None
    endpoint = args.endpoint
    if args.stub:
        endpoint, server = start_stub()
    try:
        samples, failures = time_runs(find_script(), endpoint, args.runs, args.queue)
    finally:
        if server is not None:
            server.shutdown()
    ordered = sorted(samples)
    print(
        json.dumps(
            {
                "bench": "cli_submit",
                "endpoint": "stub" if args.stub else endpoint,
                "runs": args.runs,
                "failures": failures,
                "median_ms": round(statistics.median(ordered), 1),
                "p90_ms": round(ordered[max(0, int(len(ordered) * 0.9) - 1)], 1),
                "min_ms": round(ordered[0], 1),
                "max_ms": round(ordered[-1], 1),
            }
        )
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
