#!/usr/bin/env bash
# Makes a cargo target dir that several checkouts build in (CI's fresh clones, worktrees) safe to
# build in from this one. Cargo tells a stale crate by mtimes: sources older than what another
# checkout built there last would pass as fresh, and the other checkout's code would be tested. So
# when DIR was last claimed by another checkout, the artifacts of the path crates (this
# repository's own, as MANIFEST's build resolves them) are removed with `cargo clean -p`; the
# crates.io dependencies, whose sources are the same for every checkout, stay built.
# Usage: claim-target.sh DIR MANIFEST [CARGO_CLEAN_ARGS...]   e.g. --release --target TRIPLE
# (cargo clean -p cleans one profile and target: give those the builds in DIR use).
set -euo pipefail
DIR=$1 MANIFEST=$2
shift 2
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAMP=$DIR/.selfhosted-checkout
mkdir -p "$DIR"
[ "$(cat "$STAMP" 2>/dev/null)" != "$REPO" ] || exit 0
names=$(cargo metadata --format-version 1 --manifest-path "$MANIFEST" |
  jq -r '.packages[] | select(.source == null) | .name')
specs=()
for name in $names; do specs+=(-p "$name"); done
# Without a -p, cargo clean would empty the whole dir.
[ "${#specs[@]}" -gt 0 ] || { echo "claim-target.sh: no path crates found in $MANIFEST" >&2; exit 1; }
echo "claim-target.sh: $DIR was built from $(cat "$STAMP" 2>/dev/null || echo 'an unknown checkout'):" \
  "cleaning this repository's ${#specs[@]} crates there${*:+ ($*)}" >&2
cargo clean --quiet --manifest-path "$MANIFEST" --target-dir "$DIR" "$@" "${specs[@]}"
echo "$REPO" >"$STAMP"
