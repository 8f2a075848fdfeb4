"""What tracing costs per request, by sampling ratio: the Kafka path of `make bench` (one
bridge, librdkafka's mock cluster, wrk -t2 -c64 with the signed 1 KiB events), with tracing
off, with `sampleRatio` 0.01 and with 1.0, spans exported over OTLP/HTTP to an nginx that
takes every batch (as `make bench`'s traced row).

Two bridge processes with the same config can differ by several µs/request for their whole
life, so each round starts a fresh process per setting, in turn, and the differences to the
round's untraced process are taken; the medians over the rounds are printed.

    .build-bench/venv/bin/python bench/tracing.py [BIN] [--rounds 3] [--seconds 8]

It needs what `make bench` installed and a release build.
"""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

SETTINGS = {"off": None, "sampleRatio 0.01": 0.01, "sampleRatio 1.0": 1.0}


def main() -> int:
    parser = bench.layer_arguments(__doc__, ".build-bench/tracing")
    args = parser.parse_args()
    runner = bench.layer_runner(args)
    cpu: dict[str, list[float]] = {name: [] for name in SETTINGS}
    rps: dict[str, list[float]] = {name: [] for name in SETTINGS}
    try:
        bootstraps = runner.start_kafka()
        collector, collector_port = runner.nginx()
        runner.services.append(collector)
        sink = {"type": "kafka", "brokers": bootstraps, "topic": bench.TOPIC}
        for round_number in range(args.rounds):
            for name, ratio in SETTINGS.items():
                tracing = None if ratio is None else {
                    "otlpEndpoint": f"http://127.0.0.1:{collector_port}", "sampleRatio": ratio}
                process, port, _ = runner.bridge("kafka", sink, tracing=tracing)
                try:
                    runner.wrk(port, runner.args.warmup, 64)
                    before = bench.cpu_seconds(process.pid)
                    result = runner.wrk(port, args.seconds, 64)
                    used = (bench.cpu_seconds(process.pid) - before) * 1e6 / max(result["requests"], 1)
                finally:
                    bench.stop(process)
                if result["non2xx"] or result["socket_errors"] or not result["requests"]:
                    print(f"{name}: {result['non2xx']} answers not 2xx", file=sys.stderr)
                    return 1
                cpu[name].append(used)
                rps[name].append(result["rps"])
                print(f"round {round_number + 1} {name}: {used:.1f} us/request, {result['rps']:.0f} req/s", flush=True)
    finally:
        for service in runner.services:
            bench.stop(service)
    print("| tracing | CPU µs/request | x off (median of the rounds' ratios) | req/s |\n| --- | ---: | ---: | ---: |")
    for name in SETTINGS:
        ratio = statistics.median(c / off for c, off in zip(cpu[name], cpu["off"]))
        print(f"| {name} | {statistics.median(cpu[name]):.1f} | {ratio:.3f} | {statistics.median(rps[name]):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
