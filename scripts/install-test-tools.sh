#!/usr/bin/env bash
# Tools some tests run besides the build: kubernetes-validate (PyPI), which checks
# deploy/kubernetes against the Kubernetes schemas, in a venv of its own under .build-tools,
# opentelemetry-proto and grpcio for scripts/otlp-receiver.py (the tracing tests' OTLP
# receiver) in the same venv, and promtool (Debian's prometheus package), which checks the
# /metrics exposition.
# `make test` runs this; without it those tests are reported as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v promtool > /dev/null; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus > /dev/null
fi
if ! python3 -c "import venv, ensurepip" 2> /dev/null; then
    # Debian's python3 needs python3-venv for `python3 -m venv`.
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3 python3-venv > /dev/null
fi
if [ ! -x .build-tools/venv/bin/kubernetes-validate ] \
    || ! .build-tools/venv/bin/python -c "import grpc, opentelemetry.proto" 2> /dev/null; then
    mkdir -p .build-tools
    [ -x .build-tools/venv/bin/pip ] || python3 -m venv .build-tools/venv
    .build-tools/venv/bin/pip install -q --disable-pip-version-check kubernetes-validate opentelemetry-proto grpcio
fi
