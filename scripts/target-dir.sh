#!/usr/bin/env bash
# Prints the workspace's cargo target directory, absolute: what cargo itself uses (CARGO_TARGET_DIR,
# a relative one taken from the caller's folder as cargo takes it, or build.target-dir of a cargo
# config), else <repo>/target. For the scripts that look for what cargo built, or keep their own
# builds beside it (scripts/test.sh points CARGO_TARGET_DIR at a shared cache under CI=true).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(cargo metadata --format-version 1 --no-deps --offline --manifest-path "$REPO/Cargo.toml" 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p') || dir=""
if [ -z "$dir" ]; then
  dir=${CARGO_TARGET_DIR:-$REPO/target}
  case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
fi
echo "$dir"
