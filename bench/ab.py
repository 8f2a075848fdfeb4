"""A/B of webhook-bridge binaries (or of Kafka properties) at one fixed load.

`make bench` drives each target as hard as it goes, so its CPU per request moves with the
throughput of that run (about 15% from run to run on a 2-core VM). This script holds the
load still instead: the same paced connections (a 10 ms pause between requests) for every
binary, in alternating rounds, against one Kafka mock broker, and prints each run's CPU per
request of the bridge's process, its rate and p99, then the medians. `--full` drives each
binary as hard as it goes, as `make bench` does.

    .build-bench/venv/bin/python bench/ab.py BEFORE AFTER [--rounds 3] [--connections 90]
    .build-bench/venv/bin/python bench/ab.py 'BIN::{"max.in.flight": "5"}' BIN

A binary may carry its own Kafka properties after `::` (JSON), so two settings of one
binary alternate like two binaries.

It needs what `make bench` installed (.build-bench/kafka-mock, wrk).
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="+", help="webhook-bridge binaries to compare, each BIN or BIN::PROPERTIES")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=90, help="paced connections (10 ms pause each)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run")
    parser.add_argument("--full", action="store_true", help="64 connections without pauses instead")
    parser.add_argument("--props", default="{}", help="Kafka properties for every binary, as JSON")
    parser.add_argument("--sink", choices=["kafka", "file"], default="kafka", help="the sink every request goes to")
    parser.add_argument("--kafka-mock", default=".build-bench/kafka-mock")
    parser.add_argument("--wrk", default="/usr/bin/wrk")
    parser.add_argument("--work", default=".build-bench/ab")
    args = parser.parse_args()

    settings = argparse.Namespace(
        bridge=None, kafka_mock=args.kafka_mock, python=None, nginx=None, wrk=args.wrk, work=args.work,
        duration=args.seconds, warmup=2, connections=64, targets="kafka", smoke=False,
    )
    runner = bench.Bench(settings)
    properties = json.loads(args.props)
    runs: dict[str, list[dict]] = {binary: [] for binary in args.binaries}
    try:
        bootstraps = runner.start_kafka()
        for round_number in range(args.rounds):
            for binary in args.binaries:
                path, _, own = binary.partition("::")
                sink = {"type": "kafka", "brokers": bootstraps, "topic": bench.TOPIC}
                if args.sink == "file":
                    sink = {"type": "file", "path": str(runner.work / "events.jsonl")}
                elif properties or own:
                    sink["properties"] = {**properties, **(json.loads(own) if own else {})}
                settings.bridge = path
                process, port, _ = runner.bridge("kafka", sink)
                try:
                    runner.wrk(port, 2, 64)
                    before = bench.cpu_seconds(process.pid)
                    if args.full:
                        result = runner.wrk(port, args.seconds, 64)
                    else:
                        result = runner.wrk(port, args.seconds, args.connections, delay_ms=10)
                    cpu_us = (bench.cpu_seconds(process.pid) - before) * 1e6 / max(result["requests"], 1)
                finally:
                    bench.stop(process)
                run = {"cpu_us": cpu_us, "rps": result["rps"], "p99_ms": result["p99_ms"], "non2xx": result["non2xx"]}
                runs[binary].append(run)
                print(
                    f"round {round_number + 1} {binary}: {run['cpu_us']:.1f} us/request, {run['rps']:.0f} req/s, "
                    f"p99 {run['p99_ms']:.2f} ms, non-2xx {run['non2xx']}",
                    flush=True,
                )
    finally:
        for service in runner.services:
            bench.stop(service)
    for binary, results in runs.items():
        print(
            f"{binary}: median {statistics.median(r['cpu_us'] for r in results):.1f} us/request, "
            f"{statistics.median(r['rps'] for r in results):.0f} req/s, "
            f"p99 {statistics.median(r['p99_ms'] for r in results):.2f} ms over {len(results)} runs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
