#!/usr/bin/env bash
# Runs every test: lint, formatting, unit, property, integration and
# end-to-end tests through the real terraform CLI. The one command a new
# machine needs (after the toolchain): `bash scripts/test.sh`.
# Ends with the seconds of the lane tests (and of any test over 30 s) and of each phase below.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${SELFHOSTED_LANE_CACHE:-/var/cache/selfhosted-lane}

# Under CI=true each run is a fresh clone in a new folder, which would compile every crates.io
# dependency again (clippy's, the tests', the agent's release build): the build goes to a target
# dir shared by the clones instead, under the lane cache, where the crates.io dependencies stay
# built and this clone's own crates are always built anew (scripts/claim-target.sh). One run at a
# time uses it: this script runs again under flock (-o: a process that a test left running cannot
# keep the lock), and a run that finds it taken builds in its own ./target as before.
if [ "${CI:-}" = "true" ] && [ -z "${CARGO_TARGET_DIR:-}" ] && [ -z "${SELFHOSTED_TEST_LOCKED:-}" ]; then
  shared=$CACHE/cargo-target
  if mkdir -p "$shared" 2>/dev/null && [ -w "$shared" ] && command -v flock >/dev/null; then
    mark=$(mktemp)
    rc=0
    SELFHOSTED_TEST_LOCKED=$mark CARGO_TARGET_DIR=$shared \
      flock -n -o -E 75 "$shared.lock" bash "$PWD/scripts/test.sh" "$@" || rc=$?
    if [ "$rc" != 75 ] || [ -s "$mark" ]; then rm -f "$mark"; exit "$rc"; fi
    rm -f "$mark"
    echo "test.sh: another run holds $shared.lock: this one builds in ./target" >&2
  fi
fi
shared_target=""
if [ -n "${SELFHOSTED_TEST_LOCKED:-}" ]; then
  echo started >"$SELFHOSTED_TEST_LOCKED"
  unset SELFHOSTED_TEST_LOCKED
  shared_target=$CARGO_TARGET_DIR
  export CARGO_TARGET_DIR
fi

# The time of each `== ` phase, printed in a table when the script ends, however it ends.
phase_names=()
phase_us=()
phase_name=""
phase_t0=0
run_t0=${EPOCHREALTIME//[.,]/}
phase_close() {
  [ -n "$phase_name" ] || return 0
  phase_names+=("$phase_name")
  phase_us+=($(( ${EPOCHREALTIME//[.,]/} - phase_t0 )))
  phase_name=""
}
phase() {
  phase_close
  echo "== $*"
  phase_name=$*
  phase_t0=${EPOCHREALTIME//[.,]/}
}
# shellcheck disable=SC2317 # called by the EXIT trap
seconds() { printf '%d.%d' $(( $1 / 1000000 )) $(( $1 / 100000 % 10 )); }

# The fuzz build runs in the background during nextest (its own session, so that it can be ended
# with all its processes): its pid, log, and the seconds it took.
fuzz_pid=""
fuzz_log=$(mktemp)
fuzz_secs=$(mktemp)
# The Go-built tools (below) build in the background from the start: their pid and log.
prep_pid=""
prep_log=$(mktemp)
# nextest's JUnit report once the tests ran (for the lane tests' times), and the skip log.
junit=""
SELFHOSTED_SKIP_LOG=$(mktemp)
export SELFHOSTED_SKIP_LOG

# shellcheck disable=SC2317 # the EXIT trap
on_exit() {
  local rc=$?
  local pid
  for pid in "$fuzz_pid" "$prep_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -- "-$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  phase_close
  if [ -n "$junit" ]; then
    echo "== seconds of each lane test and of any test over 30 s (nextest's $junit)"
    python3 scripts/nextest-times.py "$junit" 30 || true
  fi
  echo "== seconds of each phase (exit status $rc)"
  local i
  for i in "${!phase_names[@]}"; do
    printf '   %8s  %s\n' "$(seconds "${phase_us[$i]}")" "${phase_names[$i]}"
  done
  if [ -s "$fuzz_secs" ]; then
    printf '   %8s  %s\n' "$(cat "$fuzz_secs")" "(fuzz build in the background, beside nextest: cargo-fuzz if missing, the ASan build)"
  fi
  printf '   %8s  %s\n' "$(seconds $(( ${EPOCHREALTIME//[.,]/} - run_t0 )))" "in all"
  rm -f "$SELFHOSTED_SKIP_LOG" "$fuzz_log" "$fuzz_secs" "$prep_log"
  return "$rc"
}
trap on_exit EXIT

# The tools built from the Go module proxy (three Kubernetes releases for the lane, Ignition's
# validator, OpenTofu, Terraform 1.13) need only Go and gcc, which the machine has: on a fresh
# machine (about 20 minutes of builds) they start at once, in the background at nice 10, beside the
# apt install and clippy. Each phase below that needs one runs its script as before, which waits on
# that script's lock for the background build, then finds it cached (on a warm machine at once).
# The default version (every lane test), the next minor (the minor-version upgrade) and the
# newest minor claimed (its pivot), built from the Go module proxy. (v1.20.2, the lane's first
# release, builds with tests/lane/build.sh and runs with SELFHOSTED_LANE_VERSION=v1.20.2.)
KUBERNETES_VERSIONS=(v1.34.3 v1.35.4 v1.37.2)
# The etcd release the minor-version upgrade moves etcd to (from Debian's 3.4), built from the Go
# module proxy (tests/lane/build-etcd.sh).
ETCD_RELEASE=v3.5.21
IGNITION_VALIDATE=(ignition-validate github.com/coreos/ignition/v2/validate@v2.24.0)
TOFU_VERSION=v1.12.6
TERRAFORM_NEWER_VERSION=v1.13.3
# shellcheck disable=SC2016 # expanded by the inner bash
setsid -w nice -n 10 bash -c 'set -e
  for v in $1; do bash tests/lane/build-go.sh "$v" >/dev/null; done
  bash tests/lane/build-etcd.sh "$5" >/dev/null
  bash tests/tools/go-tool.sh $2 >/dev/null
  bash tests/tools/tofu.sh "$3" >/dev/null
  bash tests/tools/terraform.sh "$4" >/dev/null' prep "${KUBERNETES_VERSIONS[*]}" "${IGNITION_VALIDATE[*]}" \
  "$TOFU_VERSION" "$TERRAFORM_NEWER_VERSION" "$ETCD_RELEASE" </dev/null >"$prep_log" 2>&1 &
prep_pid=$!

phase "test tools (scripts/install-test-deps.sh; cargo-fuzz is installed with the fuzz build)"
# cargo install builds in a temporary folder of its own, not in the target dir.
env -u CARGO_TARGET_DIR SELFHOSTED_DEFER_CARGO_FUZZ=1 bash scripts/install-test-deps.sh

# Incremental caches only help a developer's next build; in CI they are
# gigabytes of disk for nothing.
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL=0
fi
phase "disk free where the build goes"
df -h . | tail -1
target_dir=$(bash scripts/target-dir.sh)
if [ -n "$shared_target" ]; then
  # The whole dir once it outgrows its bound (crates of older lock files pile up), and the
  # scratch of the last run (CARGO_TARGET_TMPDIR: provider mirrors that hard-link old binaries;
  # emptied, not removed: cargo makes it only when it compiles an integration test).
  max_mb=${SELFHOSTED_TARGET_CACHE_MAX_MB:-30000}
  used_mb=$(du -sm "$shared_target" | cut -f1)
  if [ "$used_mb" -gt "$max_mb" ]; then
    echo "the shared target dir held ${used_mb} MB, over ${max_mb}: emptied, this run builds every crate"
    find "$shared_target" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
    used_mb=0
  fi
  rm -rf --one-file-system "$shared_target/tmp"
  mkdir -p "$shared_target/tmp"
  # This clone's own crates are built anew (their artifacts from another clone removed), whatever
  # the mtimes; the agent image's build (tests/lane/agent-image.sh) and the fuzz build
  # (scripts/fuzz.sh) do the same in theirs.
  bash scripts/claim-target.sh "$shared_target" Cargo.toml
  echo "cargo target dir: $shared_target (shared by CI's fresh clones, ${used_mb} MB at the start)"
  df -h "$shared_target" | tail -1
else
  echo "cargo target dir: $target_dir"
fi

phase "cargo fmt --check"
cargo fmt --all -- --check
phase "single crypto backend (ring only)"
if cargo tree --workspace -e normal -i aws-lc-rs >/dev/null 2>&1; then
  echo "aws-lc-rs is in the dependency graph: one TLS crypto backend (ring) only" >&2
  exit 1
fi
phase "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
phase "terraform fmt -check examples"
terraform fmt -check -recursive examples
phase "the node agent image (selfhosted-agent, imported by the lane hosts)"
bash tests/lane/agent-image.sh
phase "the Go-built tools: waiting for their background build (nothing on a warm machine)"
prep_status=0
wait "$prep_pid" || prep_status=$?
prep_pid=""
sed 's/^/[go tools] /' "$prep_log"
# A failed background build is built again below, in the foreground, where its error shows.
echo "background build: exit $prep_status"
for v in "${KUBERNETES_VERSIONS[@]}"; do
  phase "real control-plane lane: Kubernetes $v binaries (cached after the first build)"
  bash tests/lane/build-go.sh "$v"
done
phase "real control-plane lane: etcd $ETCD_RELEASE (cached after the first build)"
bash tests/lane/build-etcd.sh "$ETCD_RELEASE"
phase "Ignition's own validator (an independent check of the rendered Ignition; cached)"
SELFHOSTED_IGNITION_VALIDATE=$(bash tests/tools/go-tool.sh "${IGNITION_VALIDATE[@]}")
export SELFHOSTED_IGNITION_VALIDATE
phase "OpenTofu (the quickstart and the assets lifecycle also run under tofu; cached)"
SELFHOSTED_TOFU=$(bash tests/tools/tofu.sh "$TOFU_VERSION")
export SELFHOSTED_TOFU
phase "Terraform 1.13 (the quickstart and the assets lifecycle also run under it; cached)"
SELFHOSTED_TERRAFORM_NEWER=$(bash tests/tools/terraform.sh "$TERRAFORM_NEWER_VERSION")
export SELFHOSTED_TERRAFORM_NEWER

# The fuzz targets' ASan build (cold: about 10 minutes of both cores) needs nothing the tests
# make, and the lane tests mostly wait on kubelet and lease cadences: it runs beside nextest at the
# lowest CPU priority, and the fuzzing itself after nextest. Its output is printed there.
phase "fuzz: the ASan build (and cargo-fuzz if missing) starts in the background, nice 19"
# shellcheck disable=SC2016 # expanded by the inner bash
setsid -w nice -n 19 ionice -t -c 2 -n 7 bash -c 't0=$SECONDS; rc=0; bash scripts/fuzz.sh --build || rc=$?
  echo "$(( SECONDS - t0 )).0" >"$1"; exit "$rc"' fuzz-build "$fuzz_secs" </dev/null >"$fuzz_log" 2>&1 &
fuzz_pid=$!

phase "cargo nextest"
# A test that cannot run here (not root, say) fails under CI; elsewhere it returns early, which
# nextest counts as a pass: such tests list themselves here, after nextest's summary.
# nextest writes its JUnit report (.config/nextest.toml) into its store, target/nextest/PROFILE
# under the workspace root, also when CARGO_TARGET_DIR is elsewhere.
rm -f target/nextest/*/junit.xml
status=0
cargo nextest run --workspace --no-fail-fast "$@" || status=$?
for f in target/nextest/*/junit.xml; do
  if [ -f "$f" ]; then junit=$f; fi
done
if [ -s "$SELFHOSTED_SKIP_LOG" ]; then
  echo "== $(sort -u "$SELFHOSTED_SKIP_LOG" | wc -l) tests SKIPPED (counted as passed above; under CI=true each fails instead):"
  sort -u "$SELFHOSTED_SKIP_LOG" | sed 's/^/   /'
else
  echo "== no test skipped"
fi

phase "fuzz: what Terraform sends the provider, 20 s per target (cargo-fuzz, nightly; ASan build cached)"
fuzz_status=0
wait "$fuzz_pid" || fuzz_status=$?
fuzz_pid=""
sed 's/^/[fuzz build] /' "$fuzz_log"
if [ "$fuzz_status" != 0 ]; then
  echo "fuzz: the background ASan build failed (exit $fuzz_status; its output above)" >&2
else
  bash scripts/fuzz.sh 20 || fuzz_status=$?
fi
if [ "$status" = 0 ]; then status=$fuzz_status; fi
exit "$status"
