#!/usr/bin/env bash
# Builds the release artifacts of the provider in the layout the Terraform Registry and
# `terraform init` from a mirror expect, into OUT (default dist/VERSION):
#   terraform-provider-selfhosted_VERSION_OS_ARCH.zip   (holding terraform-provider-selfhosted_vVERSION)
#   terraform-provider-selfhosted_VERSION_manifest.json (terraform-registry-manifest.json)
#   terraform-provider-selfhosted_VERSION_SHA256SUMS    (of the zips and the manifest)
#   terraform-provider-selfhosted_VERSION_SHA256SUMS.sig (detached GnuPG signature of the sums)
#
# Usage: scripts/release.sh [--version V] [--out DIR] [--gpg-key KEY | --unsigned] [--binary PATH]
#   --gpg-key   the signing key (id or fingerprint) in GNUPGHOME; the registry verifies with its
#               public half. Required unless --unsigned (for local mirrors).
#   --binary    package this linux_amd64 binary instead of building with `cargo build --release`.
# Targets: linux_amd64, the only one this machine builds (other targets need rustup targets
# and linkers that cannot be downloaded here).
# Reproducible: fixed file times (SOURCE_DATE_EPOCH, default the last commit's time), zip without
# extra attributes.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
OUT=""; KEY=""; UNSIGNED=""; BINARY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --version) VERSION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --gpg-key) KEY=$2; shift 2 ;;
    --unsigned) UNSIGNED=1; shift ;;
    --binary) BINARY=$2; shift 2 ;;
    *) echo "release.sh: unexpected argument $1 (see the header of scripts/release.sh)" >&2; exit 2 ;;
  esac
done
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] || { echo "release.sh: $VERSION is not MAJOR.MINOR.PATCH" >&2; exit 2; }
[ -n "$KEY" ] || [ -n "$UNSIGNED" ] || { echo "release.sh: give --gpg-key KEY (or --unsigned for a local mirror)" >&2; exit 2; }
for tool in zip sha256sum; do command -v "$tool" >/dev/null || { echo "release.sh: $tool is missing (apt-get install zip coreutils)" >&2; exit 1; }; done
[ -z "$KEY" ] || command -v gpg >/dev/null || { echo "release.sh: gpg is missing (apt-get install gnupg)" >&2; exit 1; }

OUT=${OUT:-dist/$VERSION}
NAME=terraform-provider-selfhosted
if [ -z "$BINARY" ]; then
  cargo build --release --locked --quiet --bin "$NAME" >&2
  BINARY=$(bash scripts/target-dir.sh)/release/$NAME
fi
[ -x "$BINARY" ] || { echo "release.sh: $BINARY is not an executable" >&2; exit 1; }
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

os_arch=linux_amd64
install -m 0755 "$BINARY" "$STAGE/${NAME}_v$VERSION"
touch -d "@$EPOCH" "$STAGE/${NAME}_v$VERSION"
rm -f "$OUT/${NAME}_${VERSION}_${os_arch}.zip"
(cd "$STAGE" && zip -q -X -D "$OUT/${NAME}_${VERSION}_${os_arch}.zip" "${NAME}_v$VERSION")
install -m 0644 terraform-registry-manifest.json "$OUT/${NAME}_${VERSION}_manifest.json"

(cd "$OUT" && sha256sum "${NAME}_${VERSION}_"*.zip "${NAME}_${VERSION}_manifest.json" > "${NAME}_${VERSION}_SHA256SUMS")
rm -f "$OUT/${NAME}_${VERSION}_SHA256SUMS.sig"
if [ -n "$KEY" ]; then
  gpg --batch --yes --local-user "$KEY" --output "$OUT/${NAME}_${VERSION}_SHA256SUMS.sig" \
    --detach-sign "$OUT/${NAME}_${VERSION}_SHA256SUMS"
fi
ls -1 "$OUT"
