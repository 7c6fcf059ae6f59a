#!/bin/bash
# Builds (once) the Kubernetes v1.20.2 server binaries the real control-plane lane runs, and a static
# `pause`, into a cache outside any clone:
#   ${SELFHOSTED_LANE_CACHE:-/var/cache/selfhosted-lane}/v1.20.2/bin/{kube-apiserver,kube-controller-manager,
#   kube-scheduler,kubelet,pause}   + bin/.stamp once all are there.
# Sources: Debian's `kubernetes` source package (upstream's v1.20.2 tree with vendor/) from bookworm's
# deb-src, built with Debian bullseye's golang-1.15 (Go >= 1.18 breaks the vendored reflect2). Both are
# fetched through a PRIVATE apt configuration under the cache (the machine's apt setup is not touched;
# the Go toolchain is unpacked with dpkg -x, not installed). Needs: apt-get, dpkg, make, gcc (static
# libc: libc6-dev), rsync, tar, and the machine's Debian mirror reachable.
# Idempotent: with the stamp present it only verifies and exits. Compiles under `nice -n 19`.
# Also makes the local OCI images (images/*.tar beside bin/). The build tree (work/, toolchain/, ~2.9 GB)
# is kept for quick rebuilds; SELFHOSTED_LANE_CLEAN_WORK=1 removes it.
# Usage: build.sh [--print-bin]   (prints the bin dir on stdout as its last line)
set -euo pipefail
V=v1.20.2
CACHE=${SELFHOSTED_LANE_CACHE:-/var/cache/selfhosted-lane}
OUT=$CACHE/$V
BIN=$OUT/bin
STAMP=$BIN/.stamp
WANT=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
T0=$(date +%s.%N)
log() { awk -v t0="$T0" -v t1="$(date +%s.%N)" -v m="$*" 'BEGIN{printf "[lane-build %6.1fs] %s\n", t1-t0, m}' >&2; }

have_all() {
  [ -f "$STAMP" ] || return 1
  for b in "${WANT[@]}" pause; do [ -x "$BIN/$b" ] || return 1; done
}
images() { # the local OCI images (made from bin/ once, then kept beside it)
  local t
  for t in kube-apiserver kube-controller-manager kube-scheduler pause; do
    if [ ! -f "$OUT/images/$t.tar" ] || [ "$BIN/$t" -nt "$OUT/images/$t.tar" ]; then
      SELFHOSTED_LANE_VERSION=$V SELFHOSTED_LANE_CACHE=$CACHE "$HERE/controller.sh" images 2>/dev/null; log "images made in $OUT/images"; return
    fi
  done
}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if have_all; then
  log "cache hit: $BIN ($(cat "$STAMP"))"
  images
  echo "$BIN"; exit 0
fi

mkdir -p "$BIN" "$OUT/logs"
exec 9>"$OUT/.lock"
flock 9   # one build at a time per cache
if have_all; then log "cache hit after waiting for another build: $BIN"; echo "$BIN"; exit 0; fi

# --- private apt configuration: same mirror as the machine, bookworm deb-src + bullseye deb ---
A=$OUT/apt
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/parts" "$A/prefs"
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
cat >"$A/sources.list" <<SRC
deb-src $MIRROR bookworm main
deb $MIRROR bullseye main
SRC
cat >"$A/apt.conf" <<CONF
Dir::Etc::SourceList "$A/sources.list";
Dir::Etc::SourceParts "$A/parts";
Dir::Etc::Preferences "$A/none-preferences";
Dir::Etc::PreferencesParts "$A/prefs";
Dir::State::Lists "$A/lists";
Dir::Cache "$A/cache";
APT::Sandbox::User "root";
CONF
export APT_CONFIG=$A/apt.conf

SRCDIR=$OUT/work/src/kubernetes-1.20.2
GOTC=$OUT/toolchain
if [ ! -d "$SRCDIR" ] || [ ! -x "$GOTC/usr/lib/go-1.15/bin/go" ]; then
  log "apt-get update (private lists under $A)"
  apt-get update -qq >"$OUT/logs/apt-update.log" 2>&1 || { cat "$OUT/logs/apt-update.log" >&2; exit 1; }
fi
if [ ! -d "$SRCDIR" ]; then
  log "fetching Debian source package kubernetes (bookworm)"
  mkdir -p "$OUT/work/debsrc"
  (cd "$OUT/work/debsrc" && apt-get source --download-only -qq kubernetes) >"$OUT/logs/apt-source.log" 2>&1 \
    || { cat "$OUT/logs/apt-source.log" >&2; exit 1; }
  rm -rf "$OUT/work/src.tmp"; mkdir -p "$OUT/work/src.tmp"
  tar -xzf "$OUT"/work/debsrc/kubernetes_*.orig.tar.gz -C "$OUT/work/src.tmp"
  [ -d "$OUT/work/src.tmp/kubernetes-1.20.2" ] || { echo "unexpected orig tarball layout: $(ls "$OUT/work/src.tmp")" >&2; exit 1; }
  mkdir -p "$OUT/work/src"; mv "$OUT/work/src.tmp/kubernetes-1.20.2" "$SRCDIR"; rmdir "$OUT/work/src.tmp"
  log "source unpacked: $SRCDIR"
fi
if [ ! -x "$GOTC/usr/lib/go-1.15/bin/go" ]; then
  log "fetching golang-1.15-go + golang-1.15-src (bullseye), unpacking with dpkg -x"
  mkdir -p "$OUT/work/debs"
  (cd "$OUT/work/debs" && apt-get download -qq golang-1.15-go golang-1.15-src) >"$OUT/logs/apt-download.log" 2>&1 \
    || { cat "$OUT/logs/apt-download.log" >&2; exit 1; }
  rm -rf "$GOTC.tmp"; mkdir -p "$GOTC.tmp"
  for d in "$OUT"/work/debs/golang-1.15-*.deb; do dpkg -x "$d" "$GOTC.tmp"; done
  rm -rf "$GOTC"; mv "$GOTC.tmp" "$GOTC"
fi
export GOROOT=$GOTC/usr/lib/go-1.15
export PATH=$GOROOT/bin:$PATH
# The machine's own Go settings (`go env -w`, e.g. GOFLAGS=-buildvcs=false for a newer Go) are not
# for Go 1.15, which refuses flags it does not know.
export GOENV=off
go version >&2
command -v rsync >/dev/null || { echo "rsync is required (apt-get install rsync)" >&2; exit 1; }

export GOCACHE=$OUT/work/gocache GOPATH=$OUT/work/gopath GOFLAGS=-p=2 CGO_ENABLED=0
export KUBE_BUILD_PLATFORMS=linux/amd64 KUBE_VERBOSE=1
export KUBE_GIT_VERSION=$V KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean \
  KUBE_GIT_COMMIT=debian-kubernetes-orig-1.20.2
cd "$SRCDIR"
if [ ! -f "$OUT/work/.generated" ]; then
  log "make generated_files"
  s=$(date +%s)
  nice -n 19 make generated_files >"$OUT/logs/generated_files.log" 2>&1 \
    || { tail -30 "$OUT/logs/generated_files.log" >&2; exit 1; }
  touch "$OUT/work/.generated"
  log "generated_files done in $(( $(date +%s) - s ))s"
fi
for c in "${WANT[@]}"; do
  if [ -x "$BIN/$c" ]; then log "$c already built"; continue; fi
  s=$(date +%s)
  nice -n 19 make WHAT=cmd/$c >"$OUT/logs/build-$c.log" 2>&1 || { tail -30 "$OUT/logs/build-$c.log" >&2; exit 1; }
  install -m 0755 "_output/local/bin/linux/amd64/$c" "$BIN/$c.tmp" && mv -f "$BIN/$c.tmp" "$BIN/$c"
  log "$c built in $(( $(date +%s) - s ))s"
done
if [ ! -x "$BIN/pause" ]; then
  nice -n 19 gcc -Os -Wall -Werror -static -DVERSION=v3.2-selfhosted-lane -o "$BIN/pause.tmp" build/pause/linux/pause.c
  strip "$BIN/pause.tmp"; mv -f "$BIN/pause.tmp" "$BIN/pause"
  log "pause built"
fi
"$BIN/kube-apiserver" --version >&2
echo "$V built $(date -u +%FT%TZ) go1.15 debian-src kubernetes" >"$STAMP"
images
if [ "${SELFHOSTED_LANE_CLEAN_WORK:-0}" = 1 ]; then
  # off by default: deleting the 2.5 GB tree took 81 s on a busy machine; CI caches bin/ only
  log "removing the build tree and toolchain"
  rm -rf "$OUT/work" "$GOTC" "$A/cache/archives"/*.deb
fi
log "done: $BIN"
echo "$BIN"
