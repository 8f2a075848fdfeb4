"""Where a Kafka-acknowledged request's CPU goes, by subtraction: one bridge, three paths,
the same load (wrk -t2 -c64, the signed 1 KiB events of bench/standard-webhooks.lua).

- `/unknown`: the HTTP layer alone. The bridge reads and parses the POST and answers 404;
  the body is read but not kept (keeping it is counted in the next layer).
- `/webhooks/noroute`: plus the work in front of a sink. A source whose only route matches
  no event type: verification, the event id, the idempotency store, the answer (200).
- `/webhooks/bench`: plus the Kafka sink. librdkafka's produce, its broker threads, the
  delivery report and its hand-back to the event loop (librdkafka's mock cluster in its own
  process, as in `make bench`).

The bridge runs with LOG_LEVEL=warning: an event no route matches is logged at info, one
line per request, which would be measured instead. Each round runs the three paths one
after the other; the medians and the differences between them are printed. Every accepted
event stays in the memory idempotency store, so later rounds run against a larger table
(up to its bound of a million keys), as a long `make bench` target does.

    .build-bench/venv/bin/python bench/layers.py [BIN] [--rounds 3] [--seconds 8] [--allocations]

It needs what `make bench` installed (.build-bench/kafka-mock, wrk) and a release build.
`--allocations` (root, Linux `perf`) also counts libc `malloc` calls per request on each
path under a light load (wrk -c4, 4 s), with a uprobe: unlike CPU time, the count does not
move from one run to the next.
"""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

PATHS = {
    "HTTP only (404)": "/unknown",
    "+ verify, dedupe, answer (no route)": "/webhooks/noroute",
    "+ Kafka sink": bench.PATH,
}


def main() -> int:
    parser = bench.layer_arguments(__doc__, ".build-bench/layers")
    parser.add_argument("--allocations", action="store_true", help="also count mallocs per request (perf uprobe)")
    args = parser.parse_args()
    runner = bench.layer_runner(args)
    runs: dict[str, list[dict]] = {name: [] for name in PATHS}
    process = None
    try:
        bootstraps = runner.start_kafka()
        port = bench.free_port()
        verify = {"scheme": "standard-webhooks", "secrets": [bench.SECRET]}
        config = {
            "listen": {"host": "127.0.0.1", "port": port},
            "limits": {"maxBodyBytes": 1048576, "ackTimeoutMs": 5000},
            "idempotency": {"store": "memory", "ttlSeconds": 86400},
            "sinks": {"kafka": {"type": "kafka", "brokers": bootstraps, "topic": bench.TOPIC}},
            "sources": {
                "bench": {"path": bench.PATH, "verify": verify, "sinks": ["kafka"]},
                "noroute": {
                    "path": "/webhooks/noroute", "verify": verify,
                    "routes": [{"types": ["never.matches"], "sinks": ["kafka"]}],
                },
            },
        }
        path = runner.work / "bridge-layers.json"
        path.write_text(json.dumps(config, indent=2))
        process = subprocess.Popen(
            [args.bridge, "serve", "--config", str(path)], stdout=runner.log("bridge-layers"),
            stderr=subprocess.STDOUT, env=dict(os.environ, LOG_LEVEL="warning"),
        )
        bench.wait_ready(port, "/readyz", process)
        for round_number in range(args.rounds):
            for name, url_path in PATHS.items():
                bench.PATH = url_path
                runner.wrk(port, runner.args.warmup, 64)
                before = bench.cpu_seconds(process.pid)
                result = runner.wrk(port, args.seconds, 64)
                cpu_us = (bench.cpu_seconds(process.pid) - before) * 1e6 / max(result["requests"], 1)
                expected_errors = result["requests"] if url_path == "/unknown" else 0
                if result["requests"] == 0:
                    print(f"{name}: no request completed", file=sys.stderr)
                    return 1
                if result["non2xx"] != expected_errors or result["socket_errors"]:
                    print(f"{name}: {result['non2xx']} answers not as expected", file=sys.stderr)
                    return 1
                runs[name].append({"cpu_us": cpu_us, "rps": result["rps"]})
                print(f"round {round_number + 1} {name}: {cpu_us:.1f} us/request, {result['rps']:.0f} req/s", flush=True)
        allocations: dict[str, float] = {}
        if args.allocations:
            allocations = count_allocations(runner, port, process.pid)
        if process.poll() is not None:
            print(f"the bridge exited with {process.returncode}", file=sys.stderr)
            return 1
    finally:
        if process is not None:
            bench.stop(process)
        for service in runner.services:
            bench.stop(service)
    previous = 0.0
    header = "| path | CPU µs/request | added by this layer | req/s |"
    rule = "| --- | ---: | ---: | ---: |"
    if allocations:
        header += " mallocs/request | added by this layer |"
        rule += " ---: | ---: |"
    print(header + "\n" + rule)
    previous_allocations = 0.0
    for name, results in runs.items():
        cpu = statistics.median(r["cpu_us"] for r in results)
        line = f"| {name} | {cpu:.1f} | {cpu - previous:+.1f} | {statistics.median(r['rps'] for r in results):.0f} |"
        if allocations:
            line += f" {allocations[name]:.1f} | {allocations[name] - previous_allocations:+.1f} |"
            previous_allocations = allocations[name]
        print(line)
        previous = cpu
    return 0


def count_allocations(runner: "bench.Bench", port: int, pid: int) -> dict[str, float]:
    """mallocs per request on each path: a uprobe on libc's malloc counted by `perf stat`
    around a 4 s wrk run with 4 connections (the probe's own cost would swamp a full load)."""
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    subprocess.run(["perf", "probe", "-q", "-x", libc, "malloc"], stderr=subprocess.DEVNULL)
    counts = {}
    for name, url_path in PATHS.items():
        bench.PATH = url_path
        output = runner.work / "perf-malloc.txt"
        stat = subprocess.Popen(
            ["perf", "stat", "-e", "probe_libc:malloc", "-x", ",", "-o", str(output), "-p", str(pid), "--", "sleep", "6"])
        result = runner.wrk(port, 4, 4)
        stat.wait()
        mallocs = next(int(line.split(",")[0]) for line in output.read_text().splitlines() if "malloc" in line)
        counts[name] = mallocs / max(result["requests"], 1)
        print(f"{name}: {counts[name]:.1f} mallocs/request", flush=True)
    return counts


if __name__ == "__main__":
    sys.exit(main())
