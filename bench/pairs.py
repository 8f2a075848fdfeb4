"""What one setting costs a request, measured over fresh pairs of processes.

Two bridge processes started with the same config differ by up to +-10 us of CPU per request
for as long as they run (how the heap and the threads happen to land), so comparing one
process with one other says little about a few microseconds. This script starts `--pairs`
fresh pairs of bridges (A and B, the Kafka sink on one mock cluster), measures each process
of a pair in four rounds of `--seconds` (A B B A), and prints the median and the mean of
the pairs' differences (B - A) in CPU us per request, with every pair's figure.

    .build-bench/venv/bin/python bench/pairs.py BIN --b '{"admin": {}}'          # the inspector
    .build-bench/venv/bin/python bench/pairs.py BIN                                # a control: A = B
    .build-bench/venv/bin/python bench/pairs.py BIN --b-binary OTHER --paced        # two builds

`--a` and `--b` are JSON objects merged into the top of each bridge's config; an `admin`
object gets its listener and token filled in. The load is 32 connections without pauses, or
with `--paced` each pausing 10 ms between requests (about 2,500 requests/s, below
saturation). It needs what `make bench` installed (.build-bench/kafka-mock, wrk).
"""

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def main() -> int:
    parser = bench.layer_arguments(__doc__, ".build-bench/pairs")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--a", default="{}", help="JSON merged into A's config")
    parser.add_argument("--b", default="{}", help="JSON merged into B's config")
    parser.add_argument("--b-binary", help="B's binary (default: the same as A's)")
    parser.add_argument("--paced", action="store_true", help="each connection pauses 10 ms between requests")
    parser.set_defaults(seconds=4)
    args = parser.parse_args()
    runner = bench.layer_runner(args)
    variants = {"a": (json.loads(args.a), args.bridge), "b": (json.loads(args.b), args.b_binary or args.bridge)}
    delay = 10 if args.paced else 0
    differences: list[float] = []
    try:
        sink = {"type": "kafka", "brokers": runner.start_kafka(), "topic": bench.TOPIC}
        for pair in range(args.pairs):
            a, b, _ = runner.fresh_pair(sink, variants["a"], variants["b"], args.seconds, delay, str(pair))
            if runner.failures:
                raise SystemExit("; ".join(runner.failures))
            differences.append(b - a)
            print(f"pair {pair + 1}: a {a:.1f}, b {b:.1f} us/request: {b - a:+.1f}", flush=True)
    finally:
        for service in runner.services:
            bench.stop(service)
    print(
        f"b - a over {len(differences)} pairs: median {statistics.median(differences):+.1f} us/request, "
        f"mean {statistics.mean(differences):+.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
