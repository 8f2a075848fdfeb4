#!/usr/bin/env bash
# `make dist`: the release binary (Swift stdlib linked in) and what it needs to be deployed,
# as dist/webhook-bridge-VERSION-linux-ARCH.tar.gz with one top directory of the same name:
#   bin/webhook-bridge, the example configs (*.json at the repo root), deploy/, docs/, README.md
#   (and LICENSE when there is one).
# The binary still needs librdkafka1, libhiredis0.14 and libssl3 on the target (Debian 12).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sh scripts/version.sh)
[ -n "$version" ] || { echo "no version in Sources/WebhookBridge/ProcessMetrics.swift" >&2; exit 1; }
name="webhook-bridge-$version-linux-$(uname -m)"

swift build -c release --static-swift-stdlib --product webhook-bridge
binary="$(swift build -c release --static-swift-stdlib --show-bin-path)/webhook-bridge"
if ldd "$binary" | grep -q libswift; then
  echo "$binary links Swift's shared libraries" >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/bin"
# Without the debug sections (symbols stay, for backtraces): about a third smaller.
strip --strip-debug -o "$stage/$name/bin/webhook-bridge" "$binary"
files=(./*.json deploy docs README.md)
[ -e LICENSE ] && files+=(LICENSE)
cp -R "${files[@]}" "$stage/$name/"

mkdir -p dist
# Same bytes for the same commit and binary: sorted, owned by root, dated by the commit.
mtime=$(git log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" \
  -c "$name" | gzip -n -9 >"dist/$name.tar.gz"

listing=$(tar -tzf "dist/$name.tar.gz")
for expected in bin/webhook-bridge config.example.json README.md deploy/systemd/webhook-bridge.service \
  deploy/kubernetes/kustomization.yaml "${files[@]#./}"; do
  grep -qx "$name/$expected/\?" <<<"$listing" || { echo "dist: $expected missing from the tarball" >&2; exit 1; }
done
echo "$listing"
echo "dist/$name.tar.gz ($(du -h "dist/$name.tar.gz" | cut -f1))"
