#!/usr/bin/env bash
# Installs every tool the tests need that a fresh Debian 12 machine lacks.
# Idempotent: packages already present are skipped quickly.
# SELFHOSTED_DEFER_CARGO_FUZZ=1 leaves cargo-fuzz out (scripts/test.sh installs it in the background,
# with the fuzz build, while the tests run).
set -euo pipefail

apt_pkgs=(openssh-server openssh-client sudo iproute2 etcd-server etcd-client openssl jq curl procps faketime systemd
  # the real control-plane lane (tests/lane): runtime, and the tools that build Kubernetes v1.20.2
  containerd runc containernetworking-plugins rsync gcc libc6-dev make python3
  # the images of the pod-network lane carry this machine's iptables (tests/lane/addons.sh)
  iptables
  # the load balancer in front of the apiservers of the multi-controller lane
  haproxy
  # release artifacts (scripts/release.sh): zips, and the signature of their checksums
  zip unzip gnupg)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  # Keep package scripts from starting daemons: tests start their own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -c 'import kubernetes_validate' 2>/dev/null || pip install -q kubernetes-validate==1.37.0

command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
[ "${SELFHOSTED_DEFER_CARGO_FUZZ:-}" = 1 ] || command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
command -v terraform >/dev/null || { echo "terraform is required on the PATH" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "kubectl is required on the PATH" >&2; exit 1; }
