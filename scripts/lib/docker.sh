# A private Docker engine for the tests, and the builder base image they build with.
# Source it, then `docker_start` (exports DOCKER_HOST), `docker_prune`, `builder_image` (exports
# DEPLOYER_TEST_BUILDER_IMAGE, tags rust:1-bookworm) and, at the end, `docker_stop`.
#
# Why by hand: this machine runs no init system, and no image registry is reachable. The daemon
# runs without iptables or a bridge (builds use --network=none) on overlay2 (vfs copies every
# layer: 28 GB and 12 minutes to delete). The builder base is made locally: debootstrap of the
# machine's own Debian release and mirror, gcc for the linker, and the host's Rust toolchain.

DOCKER_DIR=${DEPLOYER_DOCKER_DIR:-/var/tmp/deployer-docker}

_docker_apt() {
  echo "docker.sh: installing $* (Debian packages)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The mirror and release this machine's apt uses (deb822 sources or the classic list).
_apt_mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [[ -n $uri ]] || uri=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "$uri"
}

docker_start() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  ((${#missing[@]} == 0)) || _docker_apt "${missing[@]}"
  mkdir -p "$DOCKER_DIR/data" "$DOCKER_DIR/exec"
  export DOCKER_HOST=unix://$DOCKER_DIR/docker.sock
  if docker version >/dev/null 2>&1; then
    return 0
  fi
  rm -f "$DOCKER_DIR/docker.pid"
  dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2 \
    --data-root "$DOCKER_DIR/data" --exec-root "$DOCKER_DIR/exec" \
    --pidfile "$DOCKER_DIR/docker.pid" -H "$DOCKER_HOST" >"$DOCKER_DIR/dockerd.log" 2>&1 &
  local i
  for ((i = 0; i < 60; i++)); do
    docker version >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "docker.sh: dockerd did not answer on $DOCKER_HOST within 30 s; its log:" >&2
  tail -n 20 "$DOCKER_DIR/dockerd.log" >&2
  return 1
}

# The data root outlives a run (it keeps the builder image); each run's builds leave untagged
# layers (about 3.5 GB: the tests build cold on purpose) that nothing later uses. Dropping them
# keeps the disk bounded; the tagged builder image stays.
docker_prune() {
  docker image prune --force >/dev/null
  docker builder prune --all --force >/dev/null
}

docker_stop() {
  local pid
  pid=$(cat "$DOCKER_DIR/docker.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && kill "$pid" 2>/dev/null; then
    local i
    for ((i = 0; i < 60 && $(kill -0 "$pid" 2>/dev/null && echo 1 || echo 0); i++)); do
      sleep 0.5
    done
  fi
  # dockerd unmounts its layers on a clean exit; anything left (a crash) is unmounted here,
  # deepest first.
  awk -v dir="$DOCKER_DIR" 'index($2, dir) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r mount; do umount "$mount" 2>/dev/null || umount -l "$mount"; done
}

# The image the tests pass as the Dockerfile's BUILDER_IMAGE: what the public rust:1-bookworm
# gives (Debian, gcc, and a rustup-managed toolchain in /usr/local/rustup), made offline from the
# host's toolchain. It is also tagged rust:1-bookworm in this private daemon (no registry is
# reachable here), so a build that names no builder image runs the default path: for an arm64
# function, deployer derives its cross-compiling image from it (`rustup target add` and Debian's
# cross gcc, the one step with network). The arm64 standard library is left out of the copy so
# that step really adds it. Rebuilt when the toolchain changes.
builder_image() {
  local sysroot version tag toolchain
  sysroot=$(rustc --print sysroot)
  toolchain=$(basename "$sysroot")
  version=$(rustc --version | awk '{print $2}')
  tag=deployer-test/builder:rust-$version-rustup
  export DEPLOYER_TEST_BUILDER_IMAGE=$tag
  if docker image inspect "$tag" >/dev/null 2>&1; then
    docker tag "$tag" rust:1-bookworm
    return 0
  fi
  local release mirror rootfs home
  release=$(. /etc/os-release && echo "$VERSION_CODENAME")
  mirror=$(_apt_mirror)
  rootfs=$(mktemp -d "$DOCKER_DIR/rootfs.XXXXXX")
  echo "docker.sh: making $tag (debootstrap $release, about a minute)" >&2
  if ! debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates "$release" "$rootfs" "$mirror" \
    >"$DOCKER_DIR/debootstrap.log" 2>&1; then
    echo "docker.sh: debootstrap failed; its log:" >&2
    tail -n 20 "$DOCKER_DIR/debootstrap.log" >&2
    rm -rf "$rootfs"
    return 1
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # The certificate authorities this machine trusts (a proxy's own included), so that rustup in
  # the image reaches what the host's rustup reaches.
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  # The toolchain without its docs, sources and other targets (~600 MB instead of 1.4 GB).
  home=$rootfs/usr/local/rustup/toolchains/$toolchain
  mkdir -p "$home" "$rootfs/usr/local/cargo/bin"
  (cd "$sysroot" && tar -c --exclude=lib/rustlib/src --exclude=share --exclude='lib/rustlib/aarch64-*' \
    --exclude='lib/rustlib/manifest-rust-std-aarch64-*' bin lib libexec) | tar -x -C "$home"
  sed -i '/^rust-std-aarch64-/d' "$home/lib/rustlib/components"
  perl -0pi -e 's/\[\[components\]\]\npkg = "rust-std"\ntarget = "aarch64-[^"]*"\nis_extension = false\n\n?//g' \
    "$home/lib/rustlib/multirust-config.toml"
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\nauto_self_update = "disable"\n' \
    "$toolchain" >"$rootfs/usr/local/rustup/settings.toml"
  cp "$(command -v rustup)" "$rootfs/usr/local/cargo/bin/rustup"
  for proxy in cargo rustc rustdoc; do ln -s rustup "$rootfs/usr/local/cargo/bin/$proxy"; done
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    - "$tag" >/dev/null
  rm -rf "$rootfs"
  docker tag "$tag" rust:1-bookworm
}

# A docker client that builds with BuildKit, for the tests of that path: the installed buildx, or
# Debian's docker.io client (20.10), which carries BuildKit itself (`DOCKER_BUILDKIT=1`).
buildkit_client() {
  if docker buildx version >/dev/null 2>&1; then
    export DEPLOYER_TEST_BUILDKIT_DOCKER=$(command -v docker)
  elif [[ -x /usr/bin/docker ]] && DOCKER_BUILDKIT=1 /usr/bin/docker build --help 2>/dev/null | grep -q -- '--output'; then
    export DEPLOYER_TEST_BUILDKIT_DOCKER=/usr/bin/docker
  else
    echo "docker.sh: no docker client here can build with BuildKit (no buildx, no docker.io client)" >&2
    return 1
  fi
}
