#!/bin/bash
# Builds (once) a Go command the tests use as an independent checker, from the Go module proxy, into
#   ${SELFHOSTED_LANE_CACHE:-/var/cache/selfhosted-lane}/tools/NAME-VERSION
# and prints that path. Modules and the build cache are the lane's (gomod/, gocache/); the machine's
# Go settings are not used (GOENV=off). Idempotent: a built binary is reused. Commands that need cgo
# (flanneld) build with GO_TOOL_CGO=1: linked statically (gcc and libc6-dev), so they run in any image.
# Usage: go-tool.sh NAME PACKAGE@VERSION
#   e.g. go-tool.sh ignition-validate github.com/coreos/ignition/v2/validate@v2.24.0
set -euo pipefail
NAME=${1:?usage: go-tool.sh NAME PACKAGE@VERSION}
PKG=${2:?usage: go-tool.sh NAME PACKAGE@VERSION}
VERSION=${PKG##*@}
CACHE=${SELFHOSTED_LANE_CACHE:-/var/cache/selfhosted-lane}
OUT=$CACHE/tools/$NAME-$VERSION
if [ -x "$OUT" ]; then echo "$OUT"; exit 0; fi
mkdir -p "$CACHE/tools"
exec 9>"$CACHE/tools/.lock"
flock 9
if [ -x "$OUT" ]; then echo "$OUT"; exit 0; fi
export GOENV=off GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
export GOPROXY=${GOPROXY:-https://proxy.golang.org} GOSUMDB=${GOSUMDB:-sum.golang.org}
export GOMODCACHE=$CACHE/gomod GOCACHE=$CACHE/gocache GOPATH=$CACHE/gopath
TMP=$(mktemp -d "$CACHE/tools/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo "go-tool: building $PKG" >&2
if [ "${GO_TOOL_CGO:-}" = 1 ]; then
  CGO_ENABLED=1 GOBIN=$TMP go install -ldflags '-extldflags=-static' "$PKG" >&2
else
  GOBIN=$TMP go install "$PKG" >&2
fi
BUILT=$(find "$TMP" -maxdepth 1 -type f -perm -u+x | head -1)
[ -n "$BUILT" ] || { echo "go-tool: go install $PKG produced no binary" >&2; exit 1; }
mv -f "$BUILT" "$OUT"
echo "$OUT"
