#!/usr/bin/env bash
# Benchmarks of the provider beside plain Terraform, printed as a table of
# medians (metric, ours, baseline, ratio). One command, from anywhere:
#
#   bash scripts/bench.sh            # BENCH_RUNS=5 applies per config (default)
#
# Measures:
#   1. full PKI render, ECDSA P-256 and RSA-2048 (cargo bench -p selfhosted-pki
#      --bench render), and `terraform apply` wall time of
#      examples/quickstart/main.tf (as is, and with key_algorithm = "RSA_2048"),
#      each beside `terraform apply` of a config with one `terraform_data`;
#   2. start of the release provider binary -> its go-plugin handshake line
#      (started with TF_PLUGIN_MAGIC_COOKIE and a PLUGIN_CLIENT_CERT, as
#      Terraform does) beside `terraform version`, the terraform_data apply and
#      the echo example (cargo bench -p selfhosted-protocol --bench handshake);
#   3. peak RSS of the whole process tree of each apply (terraform + provider
#      children, /proc sampled every ~5 ms) and the provider process's own peak.
# Every apply runs in a fresh working dir under a temp dir, with a CLI config
# written there that installs the provider from a filesystem mirror (the
# machine's TF_CLI_CONFIG_FILE is never used; no network needed).
# Needs: cargo, terraform, python3, openssl. Measuring takes about 1-2 minutes;
# the release and bench builds before it take longer when the code changed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-5}
phase() { echo "== [${SECONDS}s] $*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/selfhosted-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

phase "building the release provider"
cargo build --release --quiet --bin terraform-provider-selfhosted
provider="$(bash scripts/target-dir.sh)/release/terraform-provider-selfhosted"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
os_arch="linux_amd64"
case "$(uname -m)" in aarch64|arm64) os_arch="linux_arm64" ;; esac
mirror="$work/mirror"
dest="$mirror/registry.terraform.io/selfhosted/selfhosted/$version/$os_arch"
mkdir -p "$dest" "$work/runs"
install -m 0755 "$provider" "$dest/terraform-provider-selfhosted_v$version"
cat > "$work/cli.tfrc" <<CFG
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/selfhosted/selfhosted"]
  }
  direct {
    exclude = ["registry.terraform.io/selfhosted/selfhosted"]
  }
}
CFG

# A client certificate standing in for the one Terraform passes (AutoMTLS).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=localhost -keyout "$work/client.key" -out "$work/client.pem" 2>/dev/null

phase "cargo bench -p selfhosted-pki --bench render"
cargo bench --quiet -p selfhosted-pki --bench render | tee "$work/render.txt" >&2
phase "cargo bench -p selfhosted-protocol --bench handshake"
cargo bench --quiet -p selfhosted-protocol --bench handshake | tee "$work/handshake.txt" >&2

phase "terraform applies ($runs runs per config) and handshakes"
python3 benches/bench.py \
  --work "$work/runs" \
  --cli-config "$work/cli.tfrc" \
  --provider "$provider" \
  --client-cert "$work/client.pem" \
  --quickstart examples/quickstart/main.tf \
  --render "$work/render.txt" \
  --handshake "$work/handshake.txt" \
  --runs "$runs"
phase "done"
