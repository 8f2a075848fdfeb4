#!/usr/bin/env bash
# `make image-test`: builds the container image from Containerfile with a binary built on
# this host and proves the binary inside serves. Needs root, apt (Debian 12) and
# deb.debian.org; it pulls nothing from a container registry:
#
#   1. installs podman and debootstrap when missing;
#   2. builds the release binary with the Swift stdlib linked in and checks `ldd` names no
#      libswift*.so (the image has no Swift);
#   3. makes a Debian bookworm base image with debootstrap (--variant=minbase) and imports it
#      as $BASE_IMAGE, unless it exists (it is kept for the next run);
#   4. `podman build --isolation chroot` of the runtime stage with BINARY_STAGE=prebuilt;
#   5. checks the image config (non-root user, entrypoint, healthcheck), then creates a
#      container from it without running it (`podman run` is not needed), mounts its root
#      file system and runs the image's entrypoint and command in a chroot as the image's
#      user, in its working directory, with its environment and its config (only the port
#      changed: config.example.json hard-codes 8080);
#   6. waits for 200 on /readyz from the host, runs the HEALTHCHECK command, posts a signed
#      webhook with the image's own `webhook-bridge send`, checks it reached the file sink,
#      and stops the server with SIGTERM (expects exit 0).
#
# Prints PASS/FAIL lines and the time of each phase; exits non-zero on the first failure.
# The images live in the test's own podman store, STORE (default
# /var/tmp/webhook-bridge-image-test), so that pruning them touches nobody else's:
#   podman --root $STORE/storage --runroot $STORE/run images
# Environment: STORE, IMAGE (default localhost/webhook-bridge:test), BASE_IMAGE (default
# localhost/debian-bookworm-slim:test; `podman ... rmi` it to make it again), DEBIAN_MIRROR,
# PODMAN_STORAGE_DRIVER (e.g. vfs if overlay fails). The built image is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/webhook-bridge:test}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian-bookworm-slim:test}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STORE=${STORE:-/var/tmp/webhook-bridge-image-test}
podman=(podman --root "$STORE/storage" --runroot "$STORE/run")
[ -n "${PODMAN_STORAGE_DRIVER:-}" ] && podman+=(--storage-driver "$PODMAN_STORAGE_DRIVER")

timings=()
phase_start=0
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
milliseconds() { echo $((${EPOCHREALTIME/./} / 1000)); }
begin() {
  echo "== $*"
  phase_start=$(milliseconds)
}
end() {
  local ms=$(($(milliseconds) - phase_start))
  timings+=("$(printf '%-16s %4d.%d s' "$1" $((ms / 1000)) $((ms % 1000 / 100)))")
}

workdir=$(mktemp -d /tmp/image-test.XXXXXX)
container=""
server_pid=""
mounts=()
cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" || true; done
  if [ -n "$container" ]; then
    "${podman[@]}" umount "$container" >/dev/null 2>&1 || true
    "${podman[@]}" rm -f "$container" >/dev/null 2>&1 || true
  fi
  # debootstrap mounts /proc and /sys in its target and may leave them on a failure.
  findmnt -rn -o TARGET | grep "^$workdir/" | sort -r | xargs -r umount -l || true
  rm -rf --one-file-system "$workdir"
  if [ ${#timings[@]} -gt 0 ]; then
    echo "== times"
    printf '  %s\n' "${timings[@]}"
  fi
  if [ $rc -eq 0 ]; then echo "PASS: image-test"; else echo "FAIL: image-test (exit $rc)" >&2; fi
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || fail "needs root (podman image storage, chroot, debootstrap)"

# --- 1. tools -------------------------------------------------------------------------------
begin "tools"
missing=()
for package in podman debootstrap uidmap fuse-overlayfs curl; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bash scripts/install-deps.sh
"${podman[@]}" info >/dev/null || fail "podman info (try PODMAN_STORAGE_DRIVER=vfs)"
pass "podman $(podman --version | awk '{print $3}'), debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"
end "tools"

# --- 2. the release binary ------------------------------------------------------------------
begin "release build"
swift build -c release --static-swift-stdlib --product webhook-bridge
binary="$(swift build -c release --static-swift-stdlib --show-bin-path)/webhook-bridge"
[ -x "$binary" ] || fail "no binary at $binary"
if ldd "$binary" | grep -q 'libswift'; then
  ldd "$binary" >&2
  fail "the binary links Swift's shared libraries: build with --static-swift-stdlib"
fi
pass "release binary without libswift*.so ($(du -h "$binary" | cut -f1))"
# As the Containerfile's build stage does: without the debug sections (symbols stay, for
# backtraces), about a third of the size.
mkdir -p prebuilt && strip --strip-debug -o prebuilt/webhook-bridge "$binary"
end "release build"

# --- 3. the base image ----------------------------------------------------------------------
begin "base image"
if "${podman[@]}" image exists "$BASE_IMAGE"; then
  pass "base image $BASE_IMAGE exists (cached from an earlier run)"
else
  rootfs="$workdir/rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$workdir/debootstrap.log" 2>&1 \
    || { tail -20 "$workdir/debootstrap.log" >&2; fail "debootstrap"; }
  # Like debian:bookworm-slim: the updates and security suites, no package lists, no caches.
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -f "$rootfs/etc/apt/sources.list"
  # debian:bookworm-slim leaves out documentation, manuals and translations, also of the
  # packages installed later (dpkg path-exclude), and keeps the copyright files.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,groff,lintian}/*
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | "${podman[@]}" import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE_IMAGE" >/dev/null \
    || fail "podman import"
  rm -rf "$rootfs"
  pass "base image $BASE_IMAGE from debootstrap ($("${podman[@]}" image inspect --format '{{.Size}}' "$BASE_IMAGE" | numfmt --to=iec))"
fi
end "base image"

# --- 4. podman build ------------------------------------------------------------------------
begin "podman build"
version=$(sh scripts/version.sh)
# --pull=never: nothing may come from a registry, in particular not the Swift image of the
# build stage, which BINARY_STAGE=prebuilt leaves out. --format docker keeps HEALTHCHECK.
if ! "${podman[@]}" build --isolation chroot --pull=never --format docker -f Containerfile \
  --build-arg BINARY_STAGE=prebuilt --build-arg BASE_IMAGE="$BASE_IMAGE" \
  --build-arg VERSION="$version" -t "$IMAGE" . 2>&1 | tee "$workdir/build.log"; then
  fail "podman build"
fi
! grep -i 'library/swift' "$workdir/build.log" || fail "the build touched the Swift image"
# The last run's image and stages, now untagged (the layers this one reuses stay).
"${podman[@]}" image prune -f >/dev/null
pass "podman build $IMAGE ($("${podman[@]}" image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec)), without the Swift image"
end "podman build"

# --- 5. the image config --------------------------------------------------------------------
begin "image checks"
inspect() { "${podman[@]}" image inspect --format "$1" "$IMAGE"; }
user=$(inspect '{{.Config.User}}')
case "${user%%:*}" in
  "" | 0 | root) fail "the image runs as root (User: '$user')" ;;
esac
pass "non-root user $user"
lines() { inspect "{{range $1}}{{println .}}{{end}}" | sed '/^$/d'; }
entrypoint=$(inspect '{{json .Config.Entrypoint}}')
cmd=$(inspect '{{json .Config.Cmd}}')
[ "$entrypoint" = '["webhook-bridge"]' ] || fail "entrypoint $entrypoint"
[ "$cmd" = '["serve","--config","/etc/webhook-bridge/config.json"]' ] || fail "cmd $cmd"
pass "entrypoint $entrypoint, cmd $cmd"
healthcheck=$(inspect '{{json .HealthCheck.Test}}')
[[ $healthcheck == '["CMD",'* ]] || fail "no HEALTHCHECK ($healthcheck)"
pass "HEALTHCHECK $healthcheck"
[ "$(inspect '{{index .Config.Labels "org.opencontainers.image.version"}}')" = "$version" ] \
  || fail "label org.opencontainers.image.version is not $version"
pass "label org.opencontainers.image.version=$version"

container=$("${podman[@]}" create "$IMAGE")
rootfs=$("${podman[@]}" mount "$container")
[ -x "$rootfs/usr/local/bin/webhook-bridge" ] || fail "no /usr/local/bin/webhook-bridge in the image"
# What a container runtime gives a container: /proc (Swift reads its arguments from
# /proc/self/cmdline) and /dev.
mount -t proc proc "$rootfs/proc" && mounts+=("$rootfs/proc")
mount --bind /dev "$rootfs/dev" && mounts+=("$rootfs/dev")
if chroot "$rootfs" ldd /usr/local/bin/webhook-bridge | grep 'not found'; then
  fail "libraries missing in the image"
fi
pass "every library of the binary is in the image"
end "image checks"

# --- 6. serve from the image ----------------------------------------------------------------
begin "to /readyz"
port=""
for _ in $(seq 50); do
  candidate=$((20000 + RANDOM % 30000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate && break; fi
done
[ -n "$port" ] || fail "no free port"
# The image's own config, with only the port changed, beside it in the container's layer.
config=/etc/webhook-bridge/config.json
test_config=/tmp/image-test/config.json
mkdir -p "$rootfs/tmp/image-test"
sed "s/\"port\": 8080/\"port\": $port/" "$rootfs$config" >"$rootfs$test_config"
grep -q "\"port\": $port" "$rootfs$test_config" || fail "could not change the port in $config"

mapfile -t environment < <(lines .Config.Env)
workingdir=$(inspect '{{.Config.WorkingDir}}')
# The entrypoint is found on the image's PATH, as a container runtime would find it.
mapfile -t command < <(lines .Config.Entrypoint; lines .Config.Cmd)
for i in "${!command[@]}"; do [ "${command[$i]}" = "$config" ] && command[i]=$test_config; done
echo "chroot as $user in $workingdir: ${command[*]} (WEBHOOK_BRIDGE_HOST=127.0.0.1, port $port)"
chroot --userspec="$user" "$rootfs" env -i "${environment[@]}" WEBHOOK_BRIDGE_HOST=127.0.0.1 \
  sh -c 'cd "$0" && exec "$@"' "$workingdir" "${command[@]}" >"$workdir/server.log" 2>&1 &
server_pid=$!
ready=""
for _ in $(seq 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$workdir/server.log" >&2
    fail "the server exited before it was ready"
  fi
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
  [ "$code" = 200 ] && ready=1 && break
  sleep 0.1
done
[ -n "$ready" ] || { cat "$workdir/server.log" >&2; fail "no 200 on /readyz within 30 s"; }
pass "200 on http://127.0.0.1:$port/readyz"
end "to /readyz"

begin "webhook"
mapfile -t probe < <(lines .HealthCheck.Test | tail -n +2)
if chroot --userspec="$user" "$rootfs" env -i "${environment[@]}" HEALTHCHECK_PORT="$port" "${probe[@]}"; then
  pass "the HEALTHCHECK command succeeds in the image"
else
  fail "the HEALTHCHECK command fails in the image"
fi

id="image-test-$$"
printf '{"zen":"Design for failure.","hook_id":1}' >"$rootfs/tmp/image-test/body.json"
if answer=$(chroot --userspec="$user" "$rootfs" env -i "${environment[@]}" \
  /usr/local/bin/webhook-bridge send "http://127.0.0.1:$port/webhooks/github" \
  --scheme github --secret dev-github-secret --type ping --id "$id" --body /tmp/image-test/body.json 2>&1); then
  echo "$answer"
  [[ $answer == 2??* ]] || fail "send: not a 2xx: $answer"
  pass "signed webhook accepted: $(echo "$answer" | head -1)"
else
  echo "$answer" >&2
  fail "send exited non-zero"
fi
events="$rootfs$workingdir/var/events.jsonl"
grep -q "\"id\":\"$id\"" "$events" 2>/dev/null || fail "event $id not in $workingdir/var/events.jsonl"
[ "$(stat -c %u "$events")" = "${user%%:*}" ] || fail "events.jsonl is not owned by $user"
pass "event $id in $workingdir/var/events.jsonl, written as $user"

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
[ $status -eq 0 ] || { cat "$workdir/server.log" >&2; fail "the server exited $status after SIGTERM"; }
pass "graceful stop on SIGTERM (exit 0)"
if chroot --userspec="$user" "$rootfs" env -i "${environment[@]}" HEALTHCHECK_PORT="$port" "${probe[@]}" 2>/dev/null; then
  fail "the HEALTHCHECK command succeeds with the server stopped"
fi
pass "the HEALTHCHECK command fails with the server stopped"
end "webhook"

for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}"; done
mounts=()
"${podman[@]}" umount "$container" >/dev/null
"${podman[@]}" rm "$container" >/dev/null 2>&1 || fail "podman rm $container"
container=""
pass "unmounted and removed the test container; $IMAGE kept in $STORE"
