"""Where a Kafka-acknowledged request's CPU goes, by subtraction: one bridge, three paths,
the same load (wrk -t2 -c64, the signed 1 KiB events of bench/standard-webhooks.lua).

- `/unknown`: the HTTP layer alone. The bridge reads and parses the POST and answers 404;
  the body is read but not kept (keeping it is counted in the next layer).
- `/webhooks/noroute`: plus the work in front of a sink. A source whose only route matches
  no event type: verification, the event id, the idempotency store, the answer (200).
- `/webhooks/bench`: plus the Kafka sink. librdkafka's produce, its broker threads, the
  delivery report and its hand-back to the event loop (librdkafka's mock cluster in its own
  process, as in `make bench`).

After the table comes the Kafka glue, per round: the Kafka path minus the no-route path,
each without what librdkafka's own threads (`rdk:*`, read by thread from /proc) spent.

The bridge runs with LOG_LEVEL=warning: an event no route matches is logged at info, one
line per request, which would be measured instead. Each round runs the three paths one
after the other; the medians and the differences between them are printed. Every accepted
event stays in the memory idempotency store, so later rounds run against a larger table
(up to its bound of a million keys), as a long `make bench` target does.

    .build-bench/venv/bin/python bench/layers.py [BIN] [--rounds 3] [--seconds 8] [--allocations] [--pin] [--paced N]

It needs what `make bench` installed (.build-bench/kafka-mock, wrk) and a release build.
`--allocations` (root, Linux `perf`) also counts libc `malloc` calls per request on each
path under a light load (wrk -c4, 4 s), with a uprobe: unlike CPU time, the count does not
move from one run to the next.

`--pin` runs the bridge on CPU 1 with one event loop (`NIO_SINGLETON_GROUP_LOOP_COUNT=1`), and
wrk and the mock broker on CPU 0. Unpinned, wrk shares both cores with the bridge, and how they share them differs from
path to path: on the no-route path a loop's thread is often switched out for the wrk thread
its answer wakes (scheduler time inside write(2) that the HTTP-only path hardly has), and
the subtraction counts that as the layer's. Pinned, nothing else runs on the bridge's core.

`--paced N` also measures each path's latency under N paced connections (a 10 ms pause
between requests, as the half-load run of `make bench`; 169 is the Kafka row's half load
there), with nginx answering 200 under the same pacing as the machine's own: which layer the
half-load p99 comes from. Each round runs nginx and the three paths in turn; the medians are
printed, with each path's CPU per request at that rate and the share of the machine's two
cores kept busy (every process: the target, wrk, the mock broker).
"""

import json
import os
import statistics
import subprocess
import sys
import urllib.request
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
    parser.add_argument("--pin", action="store_true", help="the bridge on CPU 1 with one loop, wrk and the mock broker on CPU 0")
    parser.add_argument("--paced", type=int, default=0, metavar="N", help="also the p99 of each path under N paced connections")
    args = parser.parse_args()
    runner = bench.layer_runner(args)
    bridge_prefix, bridge_env = [], {}
    if args.pin:
        runner.load_prefix, bridge_prefix = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
        # NIO sizes its event loop group by the CPUs online, not by the affinity mask.
        bridge_env = {"NIO_SINGLETON_GROUP_LOOP_COUNT": "1"}
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
            [*bridge_prefix, args.bridge, "serve", "--config", str(path)], stdout=runner.log("bridge-layers"),
            stderr=subprocess.STDOUT, env=dict(os.environ, LOG_LEVEL="warning", **bridge_env),
        )
        bench.wait_ready(port, "/readyz", process)
        for round_number in range(args.rounds):
            for name, url_path in PATHS.items():
                bench.PATH = url_path
                runner.wrk(port, runner.args.warmup, 64)
                before, kafka_before = bench.cpu_seconds(process.pid), librdkafka_seconds(process.pid)
                result = runner.wrk(port, args.seconds, 64)
                cpu_us = (bench.cpu_seconds(process.pid) - before) * 1e6 / max(result["requests"], 1)
                librdkafka_us = (librdkafka_seconds(process.pid) - kafka_before) * 1e6 / max(result["requests"], 1)
                expected_errors = result["requests"] if url_path == "/unknown" else 0
                if result["requests"] == 0:
                    print(f"{name}: no request completed", file=sys.stderr)
                    return 1
                if result["non2xx"] != expected_errors or result["socket_errors"]:
                    print(f"{name}: {result['non2xx']} answers not as expected", file=sys.stderr)
                    return 1
                runs[name].append({"cpu_us": cpu_us, "rps": result["rps"], "librdkafka_us": librdkafka_us})
                print(f"round {round_number + 1} {name}: {cpu_us:.1f} us/request ({librdkafka_us:.1f} in librdkafka's "
                      f"threads), {result['rps']:.0f} req/s", flush=True)
        paced: dict[str, list[dict]] = {}
        if args.paced:
            paced = measure_paced(runner, process, port, args, bridge_prefix)
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
    # The Kafka glue: what the Kafka path adds beyond the no-route path and beyond
    # librdkafka's own threads (its broker and main threads, `rdk:*`), per round.
    glue = [(kafka["cpu_us"] - kafka["librdkafka_us"]) - (no_route["cpu_us"] - no_route["librdkafka_us"])
            for kafka, no_route in zip(runs["+ Kafka sink"], runs["+ verify, dedupe, answer (no route)"])]
    threads = statistics.median(r["librdkafka_us"] for r in runs["+ Kafka sink"])
    print(f"\nKafka glue (Kafka path - no-route path - librdkafka's threads, {threads:.1f} µs): median "
          f"{statistics.median(glue):.1f} µs/request, rounds {', '.join(f'{g:.1f}' for g in glue)}")
    if paced:
        print(f"\n| under {args.paced} paced connections | CPU µs/request | added by this layer | req/s | machine busy "
              "| p50 ms | p99 ms | p99, x nginx |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        nginx_p99 = statistics.median(r["p99_ms"] for r in paced["nginx (200, no work)"])
        previous = 0.0
        for name, results in paced.items():
            cpu, p99 = (statistics.median(r[key] for r in results) for key in ("cpu_us", "p99_ms"))
            added = "" if name.startswith("nginx") else f"{cpu - previous:+.1f}"
            previous = 0.0 if name.startswith("nginx") else cpu
            print(f"| {name} | {cpu:.1f} | {added} | {statistics.median(r['rps'] for r in results):.0f} | "
                  f"{statistics.median(r['busy'] for r in results):.0f}% | "
                  f"{statistics.median(r['p50_ms'] for r in results):.2f} | {p99:.2f} | {p99 / nginx_p99:.2f} |")
        for name, results in paced.items():
            if all("acks" in r for r in results):
                shares = ", ".join(f"{statistics.median(r['acks'][le] for r in results):.1%} within {float(le) * 1000:g} ms"
                                   for le in ACK_BOUNDS)
                print(f"\n{name}: the sink's acknowledgements (webhook_sink_latency_seconds), {shares}")
    return 0


def measure_paced(
    runner: "bench.Bench", bridge: subprocess.Popen, port: int, args, prefix: list[str]
) -> dict[str, list[dict]]:
    """Each path's latency, and nginx's (run with the bridge's `prefix`), under the same paced
    connections, round after round."""
    nginx, nginx_port = runner.nginx(prefix)
    runner.services.append(nginx)
    targets = {"nginx (200, no work)": (nginx, nginx_port, "/")}
    targets |= {name: (bridge, port, path) for name, path in PATHS.items()}
    results: dict[str, list[dict]] = {name: [] for name in targets}
    for round_number in range(args.rounds):
        for name, (process, target_port, url_path) in targets.items():
            bench.PATH = url_path
            # The scrapes of /metrics stay outside the measured window.
            acks = sink_latency_buckets(port)
            before, (busy, ticks) = bench.cpu_seconds(process.pid), bench.machine_ticks()
            result = runner.wrk(target_port, args.seconds, args.paced, delay_ms=10)
            result["cpu_us"] = (bench.cpu_seconds(process.pid) - before) * 1e6 / max(result["requests"], 1)
            busy_after, ticks_after = bench.machine_ticks()
            result["busy"] = 100 * (busy_after - busy) / max(ticks_after - ticks, 1)
            acks_after = sink_latency_buckets(port)
            expected_errors = result["requests"] if url_path == "/unknown" else 0
            if result["requests"] == 0 or result["non2xx"] != expected_errors or result["socket_errors"]:
                raise SystemExit(f"paced {name}: {result['requests']} requests, {result['non2xx']} answers not 2xx, "
                                 f"{result['socket_errors']} socket errors")
            if acks_after.get("+Inf", 0) > acks.get("+Inf", 0):
                delivered = acks_after["+Inf"] - acks["+Inf"]
                result["acks"] = {le: (acks_after.get(le, 0) - acks.get(le, 0)) / delivered for le in ACK_BOUNDS}
            results[name].append(result)
            print(f"round {round_number + 1} paced {name}: {result['rps']:.0f} req/s, {result['cpu_us']:.1f} us/request, "
                  f"machine {result['busy']:.0f}% busy, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
                  + ("".join(f", {share:.1%} of acks within {float(le) * 1000:g} ms" for le, share in result["acks"].items())
                     if "acks" in result else ""), flush=True)
    return results


# The sink latency histogram's bounds (seconds, as /metrics writes them) reported for the
# Kafka path: the share of acknowledgements within each, from the histogram's counts.
ACK_BOUNDS = ("0.001", "0.0025", "0.005", "0.01")


def sink_latency_buckets(port: int) -> dict[str, float]:
    """The bridge's `webhook_sink_latency_seconds` bucket counts by bound, summed over sinks."""
    buckets: dict[str, float] = {}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("webhook_sink_latency_seconds_bucket{"):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                buckets[bound] = buckets.get(bound, 0) + float(line.rsplit(" ", 1)[1])
    return buckets


def librdkafka_seconds(pid: int) -> float:
    """CPU seconds of librdkafka's own threads in the bridge (named `rdk:broker…`, `rdk:main`)."""
    ticks = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
            if stat[stat.index("(") + 1:].startswith("rdk:"):
                fields = stat.rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


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
