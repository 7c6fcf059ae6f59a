#!/usr/bin/env bash
# Runs every test: lint, formatting, unit, property, integration and
# end-to-end tests through the real terraform CLI. The one command a new
# machine needs (after the toolchain): `bash scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

# Incremental caches only help a developer's next build; in CI they are
# gigabytes of disk for nothing.
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL=0
fi
echo "== disk free where the build goes"
df -h . | tail -1

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== single crypto backend (ring only)"
if cargo tree --workspace -e normal -i aws-lc-rs >/dev/null 2>&1; then
  echo "aws-lc-rs is in the dependency graph: one TLS crypto backend (ring) only" >&2
  exit 1
fi
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== terraform fmt -check examples"
terraform fmt -check -recursive examples
echo "== real control-plane lane: Kubernetes v1.20.2 binaries (cached after the first build)"
bash tests/lane/build.sh
echo "== the node agent image (selfhosted-agent, imported by the lane hosts)"
bash tests/lane/agent-image.sh
echo "== cargo nextest"
cargo nextest run --workspace --no-fail-fast "$@"
