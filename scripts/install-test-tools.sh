#!/usr/bin/env bash
# Tools some tests run besides the build: kubernetes-validate (PyPI), which checks
# deploy/kubernetes against the Kubernetes schemas, in a venv of its own under .build-tools,
# opentelemetry-proto and grpcio for scripts/otlp-receiver.py (the tracing tests' OTLP
# receiver) and standardwebhooks for scripts/webhook-receiver.py (the HTTP sink tests'
# receiver, which checks every delivery with the official library) in the same venv, and promtool, which checks the /metrics exposition and the
# alert rules: taken alone out of Debian's prometheus package into .build-tools/bin
# (installing the package would also start a Prometheus server on port 9090), and Debian's
# chromium, which the inspector page's test drives headless (scripts/inspector-browser-check.py).
# `make test` runs this; without it those tests are reported as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ! -x .build-tools/bin/promtool ]; then
    # The package's Go binary is static: it runs from anywhere, with nothing else installed.
    $sudo apt-get update -qq
    download="$(mktemp -d)"
    (cd "$download" && apt-get download -o APT::Sandbox::User=root -qq prometheus > /dev/null)
    mkdir -p .build-tools/bin
    dpkg-deb --fsys-tarfile "$download"/prometheus_*.deb | tar -x -C "$download" ./usr/bin/promtool
    mv "$download/usr/bin/promtool" .build-tools/bin/promtool
    rm -rf "$download"
fi
if ! python3 -c "import venv, ensurepip" 2> /dev/null; then
    # Debian's python3 needs python3-venv for `python3 -m venv`.
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3 python3-venv > /dev/null
fi
if [ ! -x .build-tools/venv/bin/kubernetes-validate ] \
    || ! .build-tools/venv/bin/python -c "import grpc, opentelemetry.proto, standardwebhooks" 2> /dev/null; then
    mkdir -p .build-tools
    [ -x .build-tools/venv/bin/pip ] || python3 -m venv .build-tools/venv
    .build-tools/venv/bin/pip install -q --disable-pip-version-check kubernetes-validate opentelemetry-proto grpcio \
        standardwebhooks==1.3.0
fi
if ! command -v chromium > /dev/null; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core > /dev/null
fi
