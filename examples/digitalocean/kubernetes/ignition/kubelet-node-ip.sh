#!/bin/bash
# Run at every boot before the kubelet (kubelet-node-ip.service). A droplet's default route
# leaves through its public interface, so a kubelet left to itself registers the public
# address as its node's InternalIP, and the apiservers advertise it in the `kubernetes`
# Service. This sets `--node-ip=<the droplet's VPC address>`, followed by the script's
# arguments (a worker pool's --node-labels and --register-with-taints), as KUBELET_EXTRA_ARGS
# in /etc/kubernetes/kubelet.env. Every other line of that file is kept (KUBELET_IMAGE, which
# the provider sets when it moves the kubelet to a new version); KUBELET_EXTRA_ARGS is this
# script's own.
set -euo pipefail

metadata=http://169.254.169.254/metadata/v1/interfaces/private/0/ipv4/address
address=$(curl --silent --show-error --fail --max-time 5 \
  --retry 60 --retry-delay 2 --retry-all-errors "$metadata")
if [[ ! $address =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; then
  echo "kubelet-node-ip: the metadata service gave no VPC address: '$address'" >&2
  exit 1
fi

env_file=/etc/kubernetes/kubelet.env
mkdir -p "$(dirname "$env_file")"
{
  grep -v '^KUBELET_EXTRA_ARGS=' "$env_file" 2>/dev/null || true
  printf 'KUBELET_EXTRA_ARGS="%s"\n' "--node-ip=$address${*:+ $*}"
} >"$env_file.new"
chmod 0644 "$env_file.new"
sync "$env_file.new" 2>/dev/null || true
mv -f "$env_file.new" "$env_file"
echo "kubelet-node-ip: --node-ip=$address"
