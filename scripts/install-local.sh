#!/usr/bin/env bash
# Builds the provider and installs it into a local filesystem mirror, then
# writes a Terraform CLI config that uses that mirror for selfhosted/selfhosted.
# Prints the CLI config path; export TF_CLI_CONFIG_FILE to it. Both live under cargo's target
# directory (target/terraform, or $CARGO_TARGET_DIR/terraform).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
os_arch="linux_amd64"
case "$(uname -m)" in aarch64|arm64) os_arch="linux_arm64" ;; esac

cargo build --release --quiet --bin terraform-provider-selfhosted >&2
target=$(bash scripts/target-dir.sh)

tf_home="$target/terraform"
mirror="$tf_home/mirror"
dest="$mirror/registry.terraform.io/selfhosted/selfhosted/$version/$os_arch"
mkdir -p "$dest"
install -m 0755 "$target/release/terraform-provider-selfhosted" "$dest/terraform-provider-selfhosted_v$version"

cat > "$tf_home/cli.tfrc" <<CFG
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
echo "$tf_home/cli.tfrc"
