"""What authentication costs the head (issue 12): 1,000 separate SubmitJob calls over HTTP, one
keep-alive client, into a queue with no nodes (the API and the store alone), three ways:

- ``unsigned``: no Authorization header; the head names the caller from the kernel's socket table
  (once per connection) and checks ownership rules on every call;
- ``signed``: every request signed with SigV4 with a key the head issued; the head verifies each
  (``head/auth/sigv4.py``). The requests are signed before the clock starts (signing is the
  client's cost, not the head's), and sent within the 5 minutes a signature is good for;
- ``--baseline-src DIR``: the same unsigned calls to a head run from another source tree (a
  checkout from before issue 12: ``git worktree add /tmp/preauth 079c6a1``), which checks nothing.

Runs alternate (baseline, unsigned, signed) ``--repeat`` times, each on a fresh head; the result
is each way's median calls per second and head CPU per call, and the signed and unsigned costs
relative to the baseline of the same round (the median over rounds). Also the head-side CPU of one verification, timed in this process (``verify_us``).

    .venv/bin/python -m bench.auth_submits [--submits 1000] [--repeat 5] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.head_throughput import make_holding_queue
from bench.headproc import BenchHead

BODY = json.dumps({"jobQueue": "hold", "jobDefinition": "default", "jobName": "s"}).encode()
RUN_BODY = BODY.replace(b'"hold"', b'"default"')
HEADERS = {"content-type": "application/json"}


def issue_key(client: httpx.Client) -> tuple[str, str]:
    response = client.post("/hpcbatch/v1/users", json={"name": "bench", "unixUser": "root"})
    response.raise_for_status()
    return response.json()["accessKeyId"], response.json()["secretAccessKey"]


def signed_headers(
    endpoint: str, key: tuple[str, str], n: int, body: bytes = BODY
) -> list[dict[str, str]]:
    signer = SigV4Auth(Credentials(*key), "batch", "local")
    host = endpoint.split("://", 1)[1]
    out = []
    for _ in range(n):
        request = AWSRequest("POST", f"{endpoint}/v1/submitjob", data=body, headers=dict(HEADERS))
        request.headers["Host"] = host
        signer.add_auth(request)
        out.append(dict(request.headers.items()))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


UNSIGNED_KEY = ("HPCB" + "U" * 16, "u" * 40)  # signs the unsigned ways' look-alike requests


def run(head: BenchHead, n: int, signed: bool, body: bytes = BODY) -> tuple[float, float]:
    """(calls per second, the head's CPU milliseconds per call). Every way sends the same
    bytes and the client does the same work: the unsigned ways' requests are signed requests
    with ``Authorization`` renamed (``X-Bench-Unsigned``, the same length), so the head sees
    no signature; only what the head does with a request differs. (Sending one shared header
    dict to the unsigned ways, as this benchmark first did, made their client's work lighter:
    3,000 signed header dicts in the client's heap cost its collector, about 2-3 % of the
    rate, counted as the signature's cost.)"""
    assert head.proc is not None
    with httpx.Client(base_url=head.endpoint, timeout=60) as client:
        make_holding_queue(client)
        all_headers = signed_headers(
            head.endpoint, issue_key(client) if signed else UNSIGNED_KEY, n, body
        )
        if not signed:
            for headers in all_headers:
                headers["X-Bench-Unsigned"] = headers.pop("Authorization")
        gc.collect()
        cpu = cpu_seconds(head.proc.pid)
        start = time.perf_counter()
        for headers in all_headers:
            client.post("/v1/submitjob", content=body, headers=headers).raise_for_status()
        rate = n / (time.perf_counter() - start)
        return rate, (cpu_seconds(head.proc.pid) - cpu) / n * 1000


def verify_cost(samples: int = 2000) -> float:
    """Microseconds of head CPU to check one signed SubmitJob (parse, scope, botocore's
    canonical request and HMACs, compare)."""
    from hpcbatch.head.auth.sigv4 import SignedRequest, parse_authorization, verify

    key = ("HPCB" + "A" * 16, "s" * 40)
    (headers,) = signed_headers("http://127.0.0.1:7650", key, 1)
    lowered = {k.lower(): [v] for k, v in headers.items()}
    request = SignedRequest("POST", "/v1/submitjob", "", lowered, BODY, "http")
    auth = parse_authorization(lowered["authorization"][0])
    now = time.time()
    start = time.perf_counter()
    for _ in range(samples):
        verify(request, parse_authorization(lowered["authorization"][0]), key[1], "local", now)
    del auth
    return (time.perf_counter() - start) / samples * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submits", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline-src", default=None)
    parser.add_argument(
        "--run-jobs",
        action="store_true",
        help="submit into `default` on one LOCAL node (32 vCPUs): every job also runs `true`",
    )
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"baseline": [], "unsigned": [], "signed": []}
    cpu: dict[str, list[float]] = {"baseline": [], "unsigned": [], "signed": []}
    for _ in range(args.repeat):
        ways: list[tuple[str, dict[str, Any], bool]] = [
            ("unsigned", {}, False),
            ("signed", {}, True),
        ]
        if args.baseline_src:
            ways.insert(0, ("baseline", {"src": args.baseline_src}, False))
        for name, options, signed in ways:
            nodes = 1 if args.run_jobs else 0
            with BenchHead(nodes=nodes, **options) as head:
                rate, head_ms = run(head, args.submits, signed, RUN_BODY if args.run_jobs else BODY)
            rates[name].append(round(rate, 1))
            cpu[name].append(round(head_ms, 3))
            line = {"way": name, "calls_per_second": rates[name][-1], "head_cpu_ms": cpu[name][-1]}
            print(json.dumps(line), flush=True)
    medians = {k: statistics.median(v) for k, v in rates.items() if v}
    result: dict[str, Any] = {"bench": "auth_submits", "jobs_run": args.run_jobs, "runs": rates}
    result["medians"] = medians
    result["head_cpu_ms_per_call_medians"] = {k: statistics.median(v) for k, v in cpu.items() if v}
    if rates["baseline"]:
        # each round's runs are minutes apart at most, so a round's ratio is what this VM's
        # drift (tens of percent over an hour) disturbs least: the median of the rounds'
        for way in ("unsigned", "signed"):
            costs = [1 - w / b for w, b in zip(rates[way], rates["baseline"], strict=True)]
            result[f"{way}_cost_percent"] = round(100 * statistics.median(costs), 1)
            head = [w - b for w, b in zip(cpu[way], cpu["baseline"], strict=True)]
            result[f"{way}_head_cpu_us_per_call"] = round(1000 * statistics.median(head), 1)
    result["verify_us"] = round(verify_cost(), 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
