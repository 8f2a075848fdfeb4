#!/usr/bin/env bash
# Installs what webhook-bridge needs to build and test on Debian/Ubuntu, and only what is
# missing: the C libraries behind the Kafka and Redis sinks, pkg-config, and redis-server for
# the Redis tests. The Swift toolchain (6.1 or newer) is not in Debian's archive and must be
# on PATH already (https://www.swift.org/install/linux/).
set -euo pipefail

packages=(pkg-config openssl libssl-dev librdkafka-dev libhiredis-dev redis-server)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "swift is not on PATH: install Swift 6.1 or newer (https://www.swift.org/install/linux/)" >&2
  exit 1
fi
