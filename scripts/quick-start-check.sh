#!/usr/bin/env bash
# The build `make run` makes for config.example.json: it must serve config.example.json (a
# 200 from /healthz) and take the same config with `tracing` (OTLP/HTTP is in every build),
# while a config asking for OTLP/gRPC, not in this build, is refused with its JSON path. CI
# runs it after the tests: it builds in .build like `make run`, which the tests' build left
# up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product webhook-bridge
binary=".build/debug/webhook-bridge"
work=$(mktemp -d)
pid=""
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
sed "s#\"port\": 8080#\"port\": 18080#" config.example.json > "$work/config.json"
(cd "$work" && exec "$OLDPWD/$binary" serve --config config.json) > "$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if curl -sf -o /dev/null http://127.0.0.1:18080/healthz; then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
  sleep 0.1
done
curl -sf -o /dev/null http://127.0.0.1:18080/healthz || { echo "no 200 from /healthz" >&2; cat "$work/log" >&2; exit 1; }
python3 - "$work/config.json" "$work" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["tracing"] = {"otlpEndpoint": "http://127.0.0.1:4318"}
json.dump(config, open(sys.argv[2] + "/tracing.json", "w"))
config["tracing"] = {"otlpEndpoint": "http://127.0.0.1:4317"}
json.dump(config, open(sys.argv[2] + "/grpc.json", "w"))
PY
"$binary" check-config "$work/tracing.json" > "$work/check" 2>&1 || { echo "a tracing config was refused" >&2; cat "$work/check" >&2; exit 1; }
if "$binary" check-config "$work/grpc.json" > "$work/check" 2>&1; then
  echo "a build without OTLPGRPC accepted an OTLP/gRPC endpoint" >&2; exit 1
fi
grep -q "tracing.otlpEndpoint: port 4317 means OTLP/gRPC" "$work/check" || { cat "$work/check" >&2; exit 1; }
echo "quick start build: serves config.example.json, takes tracing over OTLP/HTTP, refuses gRPC"
