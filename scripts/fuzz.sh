#!/usr/bin/env bash
# Fuzzes what Terraform sends the provider (fuzz/: msgpack values of each resource's type,
# decoded, re-encoded and validated) with cargo-fuzz, SECONDS per target (default 20), from the
# committed seed corpus (real Terraform traffic). New inputs go to a scratch folder; a crash
# fails the run and leaves its input under fuzz/artifacts/. Needs the nightly toolchain (rustup)
# and cargo-fuzz (scripts/install-test-deps.sh installs it; so does this script when it is
# missing). The ASan build is cached under
# ${SELFHOSTED_LANE_CACHE:-/var/cache/selfhosted-lane}/fuzz-target (cold: 6-11 min on 2 cores).
# Usage: scripts/fuzz.sh [SECONDS]
#        scripts/fuzz.sh --build    only the ASan build (scripts/test.sh runs it in the background
#                                   during nextest and the fuzzing itself after it)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
BUILD_ONLY=""
if [ "${1:-}" = --build ]; then BUILD_ONLY=1; shift; fi
SECONDS_EACH=${1:-20}
CACHE=${SELFHOSTED_LANE_CACHE:-/var/cache/selfhosted-lane}
export CARGO_TARGET_DIR=$CACHE/fuzz-target
rustup run nightly rustc --version >/dev/null 2>&1 || {
  echo "fuzz.sh: no nightly toolchain (cargo-fuzz needs one): rustup toolchain install nightly" >&2; exit 1; }
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  env -u CARGO_TARGET_DIR cargo install --quiet --locked cargo-fuzz
fi
# The cache serves every checkout: this one's crates are rebuilt if another built there last.
bash ../scripts/claim-target.sh "$CARGO_TARGET_DIR" Cargo.toml --release \
  --target "$(rustc -vV | awk '/^host:/{print $2}')"
build_log=$(mktemp)
if ! nice cargo +nightly fuzz build >"$build_log" 2>&1; then
  tail -60 "$build_log" >&2; rm -f "$build_log"
  echo "fuzz.sh: the ASan build failed" >&2; exit 1
fi
grep -E '^ *(error|warning: unused|Finished)' "$build_log" || true
rm -f "$build_log"
[ -z "$BUILD_ONLY" ] || exit 0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$scratch/$target"
  out=$(cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -print_final_stats=1 2>&1) || {
    echo "$out" | tail -40 >&2
    echo "fuzz.sh: $target crashed; the input is under fuzz/artifacts/$target/" >&2
    exit 1
  }
  runs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p')
  echo "fuzz $target: ${runs:-?} inputs in ${SECONDS_EACH}s, $(ls "corpus/$target" | wc -l) seeds, no crash"
done
