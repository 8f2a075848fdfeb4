#!/usr/bin/env bash
# `make bench` (and `make bench-smoke`, which passes --smoke): installs what the benchmark
# needs, builds webhook-bridge and the Kafka mock broker, and runs bench/bench.py.
# Results: .build-bench/run/results.md and results.json.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
missing=()
command -v wrk > /dev/null || missing+=(wrk)
command -v nginx > /dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v gcc > /dev/null || missing+=(gcc)
# Debian's python3 needs python3-venv for `python3 -m venv` (a pyenv or python.org build has it).
python3 -c "import venv, ensurepip" 2> /dev/null || missing+=(python3 python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

mkdir -p .build-bench
if [ ! -x .build-bench/venv/bin/python ]; then
    python3 -m venv .build-bench/venv
fi
.build-bench/venv/bin/pip install -q --disable-pip-version-check -r bench/requirements.txt

gcc -O2 -Wall -o .build-bench/kafka-mock bench/kafka-mock.c $(pkg-config --cflags --libs rdkafka)

if [[ " $* " == *" --smoke "* ]]; then
    configuration=debug # the build the tests already made; smoke mode checks it works, not its speed
else
    configuration=release
fi
swift build -c "$configuration" --product webhook-bridge
swift build -c "$configuration" --product shaping-bench
swift build -c "$configuration" --product inspector-bench
bin="$(swift build -c "$configuration" --show-bin-path)"

exec .build-bench/venv/bin/python bench/bench.py --bridge "$bin/webhook-bridge" --kafka-mock .build-bench/kafka-mock \
    --shaping-bench "$bin/shaping-bench" --inspector-bench "$bin/inspector-bench" --python .build-bench/venv/bin/python "$@"
