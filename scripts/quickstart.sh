#!/usr/bin/env bash
# The main job on a fresh machine: build the provider, install it into a local
# filesystem mirror, and `terraform apply` examples/quickstart (a three-controller
# cluster's assets, written to examples/quickstart/assets; no cloud account).
set -euo pipefail
cd "$(dirname "$0")/.."
TF_CLI_CONFIG_FILE=$(bash scripts/install-local.sh)
export TF_CLI_CONFIG_FILE
cd examples/quickstart
rm -f .terraform.lock.hcl
terraform init -input=false -no-color >/dev/null
terraform apply -input=false -auto-approve "$@"
terraform output
