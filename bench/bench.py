#!/usr/bin/env python3
"""`make bench`: webhook-bridge side by side with nginx and a Python receiver, in one run.

Every target gets the same load from wrk on loopback: 1 KiB JSON events, each with its own id
and a Standard Webhooks signature (bench/standard-webhooks.lua). For each target it measures
the requests/s and latency at full load (64 connections), the p99 at half that rate (paced
connections), the peak RSS of its processes, and, for the bridge, the time from exec to a
200 on /readyz. It prints a Markdown table and the budget of issue 7.

The targets:
- nginx answering 200 to every POST: the machine's HTTP ceiling.
- bench/receiver.py: FastAPI + standardwebhooks + confluent-kafka, answering after the delivery
  report (acks=all), two uvicorn workers, one per core.
- webhook-bridge (release build) with the same verification and a Kafka sink on the same
  broker: librdkafka's mock cluster in its own process (bench/kafka-mock.c).
- webhook-bridge with a Redis Streams sink (a redis-server this script starts, AOF fsynced
  every second), with a file sink (fsynced before each answer), and with an http sink
  delivering each event, signed, to nginx answering 204 (kept-alive connections).
- What shaping (`match`, `transform`) and the inspector (`admin`) add to a request: paced
  rounds taking turns (the inspector: four fresh pairs of processes, as bench/pairs.py
  does), CPU per request, and each one's work by layer in one process (bench/shaping-bench,
  bench/inspector-bench).

`--smoke` runs each target for a second and checks that it works (every answer 2xx, the
file sink holds every event answered); CI runs that. Timings are not checked in smoke mode.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = "bench-secret-0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY.encode()).decode()
TOPIC = "webhooks"
PATH = "/webhooks/bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port: int, path: str) -> int | None:
    """The status of a GET, or None when nothing answers yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
            line = s.recv(64).split(b"\r\n", 1)[0].split()
            return int(line[1]) if len(line) > 1 else None
    except OSError:
        return None



def layer_arguments(description: str, work: str) -> argparse.ArgumentParser:
    """The options bench/layers.py and bench/tracing.py share: the binary, rounds, seconds,
    the mock broker, wrk and the work directory."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bridge", nargs="?", default=".build/release/webhook-bridge")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--kafka-mock", default=".build-bench/kafka-mock")
    parser.add_argument("--wrk", default="/usr/bin/wrk")
    parser.add_argument("--nginx", default="/usr/sbin/nginx")
    parser.add_argument("--work", default=work)
    return parser


def layer_runner(args: argparse.Namespace) -> "Bench":
    """A Bench for one bridge under wrk -c64 with the Kafka mock, from `layer_arguments`."""
    return Bench(argparse.Namespace(
        bridge=args.bridge, kafka_mock=args.kafka_mock, python=None, nginx=args.nginx, wrk=args.wrk, work=args.work,
        duration=args.seconds, warmup=2, connections=64, targets="kafka", smoke=False,
    ))

def wait_ready(port: int, path: str, process: subprocess.Popen, timeout: float = 30) -> float:
    """Seconds from now until `path` answers 200; fails if the process exits first."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise SystemExit(f"the process exited with {process.returncode} before it was ready")
        if http_status(port, path) == 200:
            return time.monotonic() - started
        time.sleep(0.001)
    raise SystemExit(f"nothing answered 200 on :{port}{path} within {timeout} s")


def process_tree(pid: int) -> list[int]:
    pids, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        children = Path(f"/proc/{parent}/task/{parent}/children")
        if children.exists():
            found = [int(p) for p in children.read_text().split()]
            pids += found
            frontier += found
    return pids


def peak_rss_mb(pid: int) -> float:
    """The peak resident set (VmHWM) summed over a process and its children."""
    total_kb = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of a process and its children, in seconds."""
    ticks = 0
    for p in process_tree(pid):
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine since boot, from /proc/stat: a run's share
    of the machine kept busy is the difference of two readings. Busy is user, nice, system,
    irq and softirq; all adds idle, iowait and steal (guest time is inside user already)."""
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:9])
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(args.work).resolve()
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.services: list[subprocess.Popen] = []
        self.run_id = str(int(time.time()))
        self.failures: list[str] = []
        # A command prefix for wrk and the mock broker (bench/layers.py --pin: `taskset -c 0`).
        self.load_prefix: list[str] = []

    def log(self, name: str):
        return open(self.work / f"{name}.log", "w")

    # MARK: Shared services

    def start_kafka(self) -> str:
        process = subprocess.Popen(
            [*self.load_prefix, self.args.kafka_mock, TOPIC, "6"], stdout=subprocess.PIPE, stderr=self.log("kafka-mock"), text=True
        )
        self.services.append(process)
        bootstraps = process.stdout.readline().strip()
        if not bootstraps:
            raise SystemExit("the Kafka mock cluster did not start; see kafka-mock.log")
        return bootstraps

    def start_redis(self) -> int:
        port = free_port()
        data = self.work / "redis"
        data.mkdir()
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec"],
            stdout=self.log("redis"), stderr=subprocess.STDOUT,
        )
        self.services.append(process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return port
            except OSError:
                time.sleep(0.01)
        raise SystemExit("redis-server did not start; see redis.log")

    # MARK: Targets

    def nginx(self, prefix: list[str] | None = None) -> tuple[subprocess.Popen, int]:
        port = free_port()
        conf = self.work / "nginx.conf"
        conf.write_text(
            f"worker_processes auto; daemon off; pid {self.work}/nginx.pid; error_log {self.work}/nginx-error.log;\n"
            "events { worker_connections 4096; }\n"
            f"http {{ access_log off; client_body_temp_path {self.work}/nginx-body;\n"
            f"  server {{ listen 127.0.0.1:{port}; location / {{ return 200 '{{\"status\":\"accepted\"}}'; }}\n"
            # An OTLP/HTTP endpoint that takes every batch (an empty body is an empty
            # ExportTraceServiceResponse): the collector for the traced bridge row.
            "    location = /v1/traces { return 200 ''; } } }\n"
        )
        process = subprocess.Popen(
            [*(prefix or []), self.args.nginx, "-c", str(conf)], stdout=self.log("nginx"), stderr=subprocess.STDOUT)
        wait_ready(port, "/healthz", process)
        return process, port

    def nginx_receiver(self) -> tuple[subprocess.Popen, int]:
        """An internal service for the http sink to deliver to: nginx answering 204, keeping
        connections alive as long as the sink does."""
        port = free_port()
        conf = self.work / "nginx-receiver.conf"
        conf.write_text(
            f"worker_processes 1; daemon off; pid {self.work}/nginx-receiver.pid;\n"
            f"error_log {self.work}/nginx-receiver-error.log;\n"
            "events { worker_connections 4096; }\n"
            f"http {{ access_log off; client_body_temp_path {self.work}/nginx-receiver-body; keepalive_requests 1000000;\n"
            f"  server {{ listen 127.0.0.1:{port}; location / {{ return 204; }} }} }}\n"
        )
        process = subprocess.Popen([self.args.nginx, "-c", str(conf)], stdout=self.log("nginx-receiver"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while http_status(port, "/healthz") != 204:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the nginx receiver did not start; see nginx-receiver.log")
            time.sleep(0.05)
        self.services.append(process)
        return process, port

    def python(self, bootstraps: str) -> tuple[subprocess.Popen, int]:
        port = free_port()
        env = dict(os.environ, BENCH_SECRET=SECRET, KAFKA_BOOTSTRAP_SERVERS=bootstraps, BENCH_TOPIC=TOPIC)
        process = subprocess.Popen(
            [self.args.python, "-m", "uvicorn", "receiver:app", "--app-dir", str(HERE), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "2", "--loop", "uvloop", "--http", "httptools",
             "--no-access-log", "--log-level", "warning"],
            stdout=self.log("python"), stderr=subprocess.STDOUT, env=env,
        )
        wait_ready(port, "/healthz", process)
        return process, port

    def bridge(
        self, name: str, sink: dict, tracing: dict | None = None, admin: bool = False, extra: dict | None = None,
        binary: str | None = None, tag: str = "",
    ) -> tuple[subprocess.Popen, int, float]:
        port = free_port()
        config = {
            "listen": {"host": "127.0.0.1", "port": port},
            "limits": {"maxBodyBytes": 1048576, "ackTimeoutMs": 5000},
            "idempotency": {"store": "memory", "ttlSeconds": 86400},
            "sinks": {name: sink},
            "sources": {
                "bench": {
                    "path": PATH,
                    "verify": {"scheme": "standard-webhooks", "secrets": [SECRET]},
                    "sinks": [name],
                }
            },
        }
        if tracing:
            config["tracing"] = tracing
        if admin:
            config["admin"] = {"host": "127.0.0.1", "port": free_port(), "token": "bench-admin-token-0123456789"}
        for key, value in (extra or {}).items():
            # `admin` given as an object gets its listener and token filled in.
            if key == "admin" and isinstance(value, dict):
                value = {"host": "127.0.0.1", "port": free_port(), "token": "bench-admin-token-0123456789", **value}
            config[key] = value
        path = self.work / f"bridge-{name}{'-admin' if admin else ''}{tag}.json"
        path.write_text(json.dumps(config, indent=2))
        started = time.monotonic()
        process = subprocess.Popen(
            [binary or self.args.bridge, "serve", "--config", str(path)], stdout=self.log(f"bridge-{name}{tag}"),
            stderr=subprocess.STDOUT,
        )
        wait_ready(port, "/readyz", process)
        return process, port, time.monotonic() - started

    # MARK: Load

    def wrk(self, port: int, seconds: float, connections: int, delay_ms: int = 0) -> dict:
        result = self.work / "wrk-result.json"
        result.unlink(missing_ok=True)
        env = dict(
            os.environ, BENCH_KEY=KEY, BENCH_PATH=PATH, BENCH_RUN=f"{self.run_id}{self.wrk_runs}",
            BENCH_DELAY_MS=str(delay_ms), BENCH_RESULT=str(result),
        )
        self.wrk_runs += 1
        threads = min(2, connections)
        subprocess.run(
            [*self.load_prefix, self.args.wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
             "-s", str(HERE / "standard-webhooks.lua"), f"http://127.0.0.1:{port}/"],
            check=True, env=env, stdout=subprocess.DEVNULL,
        )
        return json.loads(result.read_text())

    wrk_runs = 0

    # What shaping costs: one bridge, one Kafka sink, two sources that differ only in a route
    # with a five-condition match and a two-operation transform. Both paths get the same
    # paced load (32 connections, 10 ms apart: about 2,500 requests/s, below saturation), so
    # CPU per request compares the work, not how well a saturated loop batches its wakeups.
    # The two paths take turns, round after round, so drift on the machine falls on both;
    # the medians are compared.
    SHAPING_MATCH = {
        "body": {
            "type": "invoice.paid",
            "id": {"$startsWith": "msg_"},
            "data": {"object": "invoice", "amount_due": {"$gte": 100}, "currency": {"$in": ["eur", "usd"]}},
        }
    }
    SHAPING_TRANSFORM = [
        {"op": "remove", "path": "/data/object"},
        {"op": "add", "path": "/data/redacted", "value": True},
    ]

    def shaping(self, bootstraps: str) -> dict:
        global PATH
        port = free_port()
        verify = {"scheme": "standard-webhooks", "secrets": [SECRET]}
        config = {
            "listen": {"host": "127.0.0.1", "port": port},
            "sinks": {"kafka": {"type": "kafka", "brokers": bootstraps, "topic": TOPIC, "key": "{id}"}},
            "sources": {
                "plain": {"path": "/webhooks/plain", "verify": verify, "sinks": ["kafka"]},
                "shaped": {
                    "path": "/webhooks/shaped", "verify": verify,
                    "routes": [{"match": self.SHAPING_MATCH, "transform": self.SHAPING_TRANSFORM, "sinks": ["kafka"]}],
                },
            },
        }
        path = self.work / "bridge-shaping.json"
        path.write_text(json.dumps(config, indent=2))
        process = subprocess.Popen(
            [self.args.bridge, "serve", "--config", str(path)], stdout=self.log("bridge-shaping"), stderr=subprocess.STDOUT,
        )
        saved = PATH
        cpu: dict[str, list[float]] = {"plain": [], "shaped": []}
        rates: dict[str, list[float]] = {"plain": [], "shaped": []}
        try:
            wait_ready(port, "/readyz", process)
            for _ in range(1 if self.args.smoke else 5):
                for name in cpu:
                    PATH = f"/webhooks/{name}"
                    if self.args.warmup > 0:
                        self.wrk(port, 1, 32, delay_ms=10)
                    before = cpu_seconds(process.pid)
                    result = self.wrk(port, self.args.duration, 32, delay_ms=10)
                    if result["non2xx"] or result["socket_errors"] or result["requests"] == 0:
                        self.failures.append(f"shaping, {name}: {result['non2xx']} answers not 2xx of {result['requests']}")
                    cpu[name].append((cpu_seconds(process.pid) - before) * 1e6 / max(result["requests"], 1))
                    rates[name].append(result["rps"])
        finally:
            PATH = saved
            stop(process)
        plain, shaped = statistics.median(cpu["plain"]), statistics.median(cpu["shaped"])
        rps = statistics.median(rates["plain"] + rates["shaped"])
        layers = []
        if self.args.shaping_bench:
            iterations = "2000" if self.args.smoke else "400000"
            output = subprocess.run([self.args.shaping_bench, iterations], check=True, capture_output=True, text=True).stdout
            # The last line ends with the work's checksum, " (N)", which the report leaves out.
            layers = [re.sub(r" \(\d+\)$", "", line) for line in output.splitlines()]
            print("\n".join(f"  {line}" for line in layers))
        print(
            f"  shaping at {rps:.0f} req/s: {plain:.1f} us/request plain, {shaped:.1f} with match and transform "
            f"({shaped - plain:+.1f})"
        )
        return {
            "target": "shaping", "plain_cpu_us": plain, "shaped_cpu_us": shaped, "rps": rps, "rounds": cpu, "rates": rates,
            "layers": layers,
        }

    def fresh_pair(
        self, sink: dict, a: tuple[dict, str | None], b: tuple[dict, str | None], seconds: float, delay_ms: int,
        tag: str,
    ) -> tuple[float, float, float]:
        """One fresh pair of bridges, A and B (config additions and binary each), each measured in
        two of four rounds (A B B A) under 32 connections: their CPU us/request and the rate.
        Two processes with one config differ by up to +-10 us/request for their whole lives, so
        a setting's cost is the median of several fresh pairs' differences, not one pair's."""
        processes = {
            name: self.bridge("kafka", sink, extra=extra, binary=binary, tag=f"-{name}{tag}")
            for name, (extra, binary) in (("a", a), ("b", b))
        }
        cpu: dict[str, list[float]] = {"a": [], "b": []}
        rates: list[float] = []
        warmed: set[str] = set()
        try:
            for name in ("a", "b", "b", "a"):
                process, port, _ = processes[name]
                # Each process is warmed once, for --warmup seconds (none in smoke mode).
                if name not in warmed and self.args.warmup > 0:
                    self.wrk(port, self.args.warmup, 32, delay_ms=delay_ms)
                    warmed.add(name)
                before = cpu_seconds(process.pid)
                result = self.wrk(port, seconds, 32, delay_ms=delay_ms)
                if result["non2xx"] or result["socket_errors"] or result["requests"] == 0:
                    self.failures.append(f"pair {tag} {name}: {result['non2xx']} answers not 2xx of {result['requests']}")
                cpu[name].append((cpu_seconds(process.pid) - before) * 1e6 / max(result["requests"], 1))
                rates.append(result["rps"])
        finally:
            for process, _, _ in processes.values():
                stop(process)
        return statistics.mean(cpu["a"]), statistics.mean(cpu["b"]), statistics.median(rates)

    def inspector(self, sink: dict) -> dict:
        """The Kafka bridge with the inspector off (A) and on (B): four fresh pairs of processes
        under the same paced load, each measured A B B A; then inspector-bench's figure of the
        same work in a loop."""
        pairs = [
            self.fresh_pair(sink, ({}, None), ({"admin": {}}, None), max(1, self.args.duration // 2), 10, str(index))
            for index in range(1 if self.args.smoke else 4)
        ]
        off = statistics.median(a for a, _, _ in pairs)
        on = statistics.median(b for _, b, _ in pairs)
        added = statistics.median(b - a for a, b, _ in pairs)
        rps = statistics.median(rate for _, _, rate in pairs)
        layer = ""
        if self.args.inspector_bench:
            iterations = "2000" if self.args.smoke else "400000"
            output = subprocess.run([self.args.inspector_bench, iterations], check=True, capture_output=True, text=True).stdout
            layer = re.sub(r" \(\d+\)$", "", output.strip())
            print(f"  {layer}")
        print(f"  inspector at {rps:.0f} req/s: {off:.1f} us/request off, {on:.1f} on ({added:+.1f}, median of the pairs)")
        print(f"    pairs {' '.join(f'{a:.1f}/{b:.1f}' for a, b, _ in pairs)}")
        return {"target": "inspector", "off_cpu_us": off, "on_cpu_us": on, "added_cpu_us": added, "rps": rps,
                "pairs": pairs, "layer": layer}

    def measure(self, name: str, process: subprocess.Popen, port: int) -> dict:
        a = self.args
        if a.warmup > 0:
            self.wrk(port, a.warmup, a.connections)
        cpu_before = cpu_seconds(process.pid)
        full = self.wrk(port, a.duration, a.connections)
        cpu_us = (cpu_seconds(process.pid) - cpu_before) * 1e6 / max(full["requests"], 1)
        # Half the rate just measured, from connections that each pause `delay` ms between
        # requests: about connections x 1000 / (delay + latency) requests/s. A short run
        # calibrates the number of connections, then the measured run uses it.
        delay_ms = 10
        half_rps = full["rps"] / 2
        connections = max(1, round(half_rps * delay_ms / 1000))
        if not a.smoke:
            calibration = self.wrk(port, 2, connections, delay_ms=delay_ms)
            connections = max(1, round(connections * half_rps / max(calibration["rps"], 1)))
        half = self.wrk(port, a.duration, connections, delay_ms=delay_ms)
        row = {
            "target": name, "rps": full["rps"], "p50_ms": full["p50_ms"], "p99_ms": full["p99_ms"], "cpu_us": cpu_us,
            "half_rps": half["rps"], "half_p99_ms": half["p99_ms"], "rss_mb": peak_rss_mb(process.pid),
            "half_connections": connections, "requests": full["requests"] + half["requests"], "non2xx": full["non2xx"] + half["non2xx"],
            "socket_errors": full["socket_errors"] + half["socket_errors"],
        }
        if process.poll() is not None:
            self.failures.append(f"{name}: the process exited with {process.returncode} under load")
        if row["non2xx"] or row["socket_errors"]:
            self.failures.append(
                f"{name}: {row['non2xx']} answers were not 2xx and {row['socket_errors']} socket errors"
            )
        if full["requests"] == 0:
            self.failures.append(f"{name}: no request completed")
        print(
            f"  {name}: {row['rps']:.0f} req/s, p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
            f"CPU {row['cpu_us']:.0f} us/request; "
            f"at {row['half_rps']:.0f} req/s p99 {row['half_p99_ms']:.2f} ms; peak RSS {row['rss_mb']:.1f} MB",
            flush=True,
        )
        return row

    def run(self) -> int:
        rows: dict[str, dict] = {}
        try:
            bootstraps = self.start_kafka()
            redis_port = self.start_redis()
            print(f"load: wrk -t2 -c{self.args.connections}, {self.args.duration} s a run, 1 KiB signed events", flush=True)

            wanted = self.args.targets.split(",")
            if "nginx" in wanted:
                process, port = self.nginx()
                try:
                    rows["nginx"] = self.measure("nginx (200, no work)", process, port)
                finally:
                    stop(process)

            if "python" in wanted:
                process, port = self.python(bootstraps)
                try:
                    rows["python"] = self.measure("Python receiver, Kafka", process, port)
                finally:
                    stop(process)

            events = self.work / "events.jsonl"
            sinks = {
                "kafka": {"type": "kafka", "brokers": bootstraps, "topic": TOPIC, "key": "{id}"},
                "redis": {"type": "redis", "url": f"redis://127.0.0.1:{redis_port}/0", "stream": "webhooks:{source}"},
                "file": {"type": "file", "path": str(events)},
            }
            if "http" in wanted:
                # Delivered onward, signed, to nginx answering 204 (one worker: a small
                # internal service); its CPU is not counted in the bridge's.
                _, receiver_port = self.nginx_receiver()
                sinks["http"] = {
                    "type": "http", "url": f"http://127.0.0.1:{receiver_port}/hooks/{{type}}", "sign": {"secrets": [SECRET]},
                }
            for name, sink in sinks.items():
                if name not in wanted:
                    continue
                process, port, startup = self.bridge(name, sink)
                try:
                    row = self.measure(f"webhook-bridge, {name} sink", process, port)
                    row["startup_ms"] = startup * 1000
                    rows[f"bridge-{name}"] = row
                finally:
                    stop(process)
                if process.returncode != 0:
                    self.failures.append(f"bridge with the {name} sink exited with {process.returncode} on SIGTERM")
            # What tracing costs: the Kafka row again with every request traced (server span,
            # three children, the event's traceparent), exported over OTLP/HTTP to an nginx
            # that takes every batch. The rows above run with tracing off.
            if "kafka-traced" in wanted:
                collector, collector_port = self.nginx()
                tracing = {"otlpEndpoint": f"http://127.0.0.1:{collector_port}", "sampleRatio": 1.0}
                process, port, startup = self.bridge("kafka", sinks["kafka"], tracing=tracing)
                try:
                    row = self.measure("webhook-bridge, kafka sink, every request traced", process, port)
                    row["startup_ms"] = startup * 1000
                    rows["bridge-kafka-traced"] = row
                finally:
                    stop(process)
                    stop(collector)
                if process.returncode != 0:
                    self.failures.append(f"traced bridge exited with {process.returncode} on SIGTERM")
            if "shaping" in wanted:
                rows["shaping"] = self.shaping(bootstraps)
            if "inspector" in wanted:
                rows["inspector"] = self.inspector(sinks["kafka"])
            # The machine's own latency at the bridge's half load: nginx under the same paced
            # connections, so the p99 budget line can be read against it.
            if "nginx" in wanted and "bridge-kafka" in rows:
                process, port = self.nginx()
                try:
                    paced = self.wrk(port, self.args.duration, rows["bridge-kafka"]["half_connections"], delay_ms=10)
                    rows["nginx"]["paced_like_kafka"] = {"rps": paced["rps"], "p99_ms": paced["p99_ms"]}
                    print(f"  nginx at the Kafka bridge's half load: {paced['rps']:.0f} req/s, p99 {paced['p99_ms']:.2f} ms")
                finally:
                    stop(process)
            written = sum(1 for _ in events.open()) if events.exists() else 0
            if "bridge-file" in rows and written < rows["bridge-file"]["requests"]:
                self.failures.append(
                    f"file sink: {written} events in the file, {rows['bridge-file']['requests']} answered 2xx"
                )
        finally:
            for service in self.services:
                stop(service)

        report = self.report(rows)
        print()
        print(report)
        (self.work / "results.md").write_text(report + "\n")
        (self.work / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
        for failure in self.failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        return 1 if self.failures else 0

    def report(self, rows: dict[str, dict]) -> str:
        shaping = rows.pop("shaping", None)
        inspector = rows.pop("inspector", None)
        lines = self.throughput_report(rows)
        if shaping:
            added = shaping["shaped_cpu_us"] - shaping["plain_cpu_us"]
            lines += "\n".join([
                "",
                "",
                f"| shaping (Kafka sink, paced at {shaping['rps']:.0f} req/s, medians of the rounds) | CPU us/request |",
                "| --- | ---: |",
                f"| no match, no transform | {shaping['plain_cpu_us']:.1f} |",
                f"| five-condition match + two-operation transform | {shaping['shaped_cpu_us']:.1f} |",
                f"| added | {added:+.1f} |",
            ])
            if shaping["layers"]:
                lines += "\n\nThe same by layer, in one process (shaping-bench, each layer's best of five rounds, the layers taking turns):\n\n"
                lines += "\n".join(f"- {line}" for line in shaping["layers"])
            rows["shaping"] = shaping
        if inspector:
            lines += "\n".join([
                "",
                "",
                f"| inspector (Kafka sink, paced at {inspector['rps']:.0f} req/s, {len(inspector['pairs'])} fresh pairs of processes) | CPU us/request |",
                "| --- | ---: |",
                f"| `admin` off | {inspector['off_cpu_us']:.1f} |",
                f"| `admin` on (recent 1000, maxBodyBytes 65536) | {inspector['on_cpu_us']:.1f} |",
                f"| added (median of the pairs' differences) | {inspector['added_cpu_us']:+.1f} |",
            ])
            if inspector["layer"]:
                lines += f"\n\nThe same work in one process (inspector-bench, best of five rounds): {inspector['layer']}"
            rows["inspector"] = inspector
        return lines

    def throughput_report(self, rows: dict[str, dict]) -> str:
        if not {"nginx", "python", "bridge-kafka"} <= rows.keys():
            return "\n".join(json.dumps(row) for row in rows.values())
        nginx, python, kafka = rows["nginx"]["rps"], rows["python"]["rps"], rows["bridge-kafka"]["rps"]
        lines = [
            "| target | req/s | p50 ms | p99 ms | p99 ms at half load | CPU us/req | peak RSS MB | startup ms "
            "| x nginx | x Python |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in rows.values():
            startup = f"{row['startup_ms']:.0f}" if "startup_ms" in row else ""
            lines.append(
                f"| {row['target']} | {row['rps']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
                f"{row['half_p99_ms']:.2f} (at {row['half_rps']:.0f}/s) | {row['cpu_us']:.0f} | {row['rss_mb']:.0f} | {startup} | "
                f"{row['rps'] / nginx:.2f} | {row['rps'] / python:.1f} |"
            )
        k = rows["bridge-kafka"]
        budget = [
            ("Kafka: >= 0.5x nginx req/s", kafka / nginx >= 0.5, f"{kafka / nginx:.2f}x"),
            ("Kafka: >= 10x Python req/s", kafka / python >= 10, f"{kafka / python:.1f}x"),
            ("Kafka: p99 < 5 ms at half load", k["half_p99_ms"] < 5, f"{k['half_p99_ms']:.2f} ms"),
            ("Kafka: peak RSS < 100 MB", k["rss_mb"] < 100, f"{k['rss_mb']:.0f} MB"),
            ("startup to ready < 200 ms", k["startup_ms"] < 200, f"{k['startup_ms']:.0f} ms"),
        ]
        if "bridge-http" in rows:
            ratio = rows["bridge-http"]["cpu_us"] / k["cpu_us"]
            budget.append(("HTTP sink: CPU/request <= 1.3x the Kafka sink's", ratio <= 1.3, f"{ratio:.2f}x"))
        lines += ["", "| budget (issue 7) | measured | met |", "| --- | ---: | --- |"]
        lines += [f"| {what} | {value} | {'yes' if ok else 'no'} |" for what, ok, value in budget]
        if "paced_like_kafka" in rows["nginx"]:
            paced = rows["nginx"]["paced_like_kafka"]
            lines += [
                "",
                f"Reference: nginx under the same paced connections as the Kafka half-load run: "
                f"{paced['rps']:.0f} req/s, p99 {paced['p99_ms']:.2f} ms.",
            ]
        return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bridge", required=True, help="the webhook-bridge binary")
    parser.add_argument("--kafka-mock", required=True, help="the bench/kafka-mock.c binary")
    parser.add_argument("--python", default=sys.executable, help="a Python with bench/requirements.txt")
    parser.add_argument("--shaping-bench", help="the shaping-bench binary: shaping's CPU by layer, in one process")
    parser.add_argument("--inspector-bench", help="the inspector-bench binary: the inspector's CPU, in one process")
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--work", default=".build-bench/run", help="a folder for configs, logs and results")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before measuring")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--targets", default="nginx,python,kafka,redis,file,http,kafka-traced,shaping,inspector", help="which targets to run"
    )
    parser.add_argument("--smoke", action="store_true", help="one-second runs that check every target works")
    args = parser.parse_args()
    if args.smoke:
        args.duration, args.warmup, args.connections = 1, 0, 8
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
