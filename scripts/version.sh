#!/usr/bin/env sh
# Prints the version: the one in Sources/WebhookBridge/ProcessMetrics.swift, which
# /metrics reports as webhook_bridge_build_info{version=...}.
set -eu
cd "$(dirname "$0")/.."
sed -n 's/^ *static let version = "\([^"]*\)".*/\1/p' Sources/WebhookBridge/ProcessMetrics.swift
