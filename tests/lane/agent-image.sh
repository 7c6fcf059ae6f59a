#!/bin/bash
# Builds the node agent (crates/agent) as a static binary and packs it into a one-layer OCI image
# tarball under the reference the rendered manifests use by default, for `ctr images import`.
# A release publishes the same image (see docs); the lane, which reaches no registry, imports it.
#   agent-image.sh          prints the tarball's path as its last line
# Idempotent and quick when nothing changed (cargo's own up-to-date check; the tarball is remade only
# when the binary is newer). Output: ${SELFHOSTED_AGENT_TARGET_DIR:-<cargo's target dir>/agent}/selfhosted-agent.tar
# (cargo's target dir: <repo>/target, or $CARGO_TARGET_DIR, which scripts/test.sh points at a cache
# shared by fresh clones under CI=true, so the agent's release dependencies are built once there too).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${SELFHOSTED_AGENT_TARGET_DIR:-$(bash "$REPO/scripts/target-dir.sh")/agent}
TRIPLE=$(rustc -vV | awk '/^host:/{print $2}')
# The repository is crates/render/manifests/src/images.rs's AGENT_REPOSITORY; the tag the crate version.
VERSION=$(awk -F'"' '/^version *=/{print $2; exit}' "$REPO/crates/agent/Cargo.toml")
REF=ghcr.io/selfhosted-dev/selfhosted-agent:v$VERSION
mkdir -p "$TARGET_DIR"
exec 9>"$TARGET_DIR/.lock"
flock 9
# Another checkout may have built there last (a shared CARGO_TARGET_DIR): its agent is not reused.
bash "$REPO/scripts/claim-target.sh" "$TARGET_DIR" "$REPO/Cargo.toml" --release --target "$TRIPLE" >&2
# Static: the image holds nothing but the binary.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --locked \
  --manifest-path "$REPO/Cargo.toml" -p selfhosted-agent --target "$TRIPLE" --target-dir "$TARGET_DIR" >&2
BIN=$TARGET_DIR/$TRIPLE/release/selfhosted-agent
TAR=$TARGET_DIR/selfhosted-agent.tar
if [ ! -f "$TAR" ] || [ "$BIN" -nt "$TAR" ] || [ "$(cat "$TAR.ref" 2>/dev/null)" != "$REF" ]; then
  python3 "$HERE/ociimage.py" "$TAR" "$REF" /usr/local/bin/selfhosted-agent "$BIN=/usr/local/bin/selfhosted-agent" >&2
  echo "$REF" > "$TAR.ref"
fi
echo "$TAR"
