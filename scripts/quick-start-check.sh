#!/usr/bin/env bash
# The build `make run` makes for config.example.json (no `tracing` in it, so without the
# OTLP package trait): it must compile, serve config.example.json (a 200 from /healthz),
# and refuse a config with `tracing`, naming the path. CI runs it after the tests: it
# builds in .build like `make run`, so only the package's own modules are rebuilt (and are
# again by the next `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."
flags=$(make -s --no-print-directory print-run-flags)
[[ "$flags" == *--disable-default-traits* ]] || { echo "make run would build with the OTLP trait: $flags" >&2; exit 1; }
swift build $flags --product webhook-bridge
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
python3 - "$work/config.json" "$work/tracing.json" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["tracing"] = {"otlpEndpoint": "http://127.0.0.1:4318"}
json.dump(config, open(sys.argv[2], "w"))
PY
if "$binary" check-config "$work/tracing.json" > "$work/check" 2>&1; then
  echo "a build without OTLP accepted a tracing config" >&2; exit 1
fi
grep -q "tracing: span export is not in this build" "$work/check" || { cat "$work/check" >&2; exit 1; }
echo "quick start build: serves config.example.json, refuses tracing"
