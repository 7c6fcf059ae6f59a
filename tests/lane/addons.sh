#!/bin/bash
# Builds (once) local OCI images of the cluster add-ons the provider deploys — kube-proxy, flannel, the
# flannel CNI plugin, CoreDNS — plus the lane's `netcheck` test pod, for a lane that runs a real pod
# network. There is no container registry here: each image is a one-layer tarball (ociimage.py) named
# exactly as the rendered manifests name it, made from binaries built from source:
#   kube-proxy:TAG                    the lane's build of Kubernetes TAG (build-go.sh)
#   flannel-io/flannel:TAG            github.com/flannel-io/flannel@TAG (cgo, static), at /opt/bin/flanneld
#   flannel-io/flannel-cni-plugin:*   the `flannel` CNI plugin from github.com/containernetworking/plugins
#                                     v0.9.1 (plugins/meta/flannel, the code flannel-io/cni-plugin was split
#                                     from; the module proxy refuses flannel-io/cni-plugin), at /flannel
#   coredns/coredns:TAG               github.com/coredns/coredns@TAG, at /coredns (the entrypoint)
#   selfhosted.test/netcheck:latest   tests/lane/netcheck (a pod's DNS and Service view)
# Images that run iptables (kube-proxy, flannel) carry this machine's iptables (nf_tables), with the
# shared libraries and extensions it loads; the flannel images carry `cp` for their install steps.
# Usage: addons.sh REF...   prints one "REF TARBALL" line per REF; tarballs are cached under
#   ${SELFHOSTED_LANE_CACHE:-/var/cache/selfhosted-lane}/addons/
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${SELFHOSTED_LANE_CACHE:-/var/cache/selfhosted-lane}
OUT=$CACHE/addons
GO_TOOL=$HERE/../tools/go-tool.sh
die() { echo "addons.sh: $*" >&2; exit 1; }
[ $# -gt 0 ] || die "usage: addons.sh IMAGE_REF..."
mkdir -p "$OUT"
exec 7>"$OUT/.lock"
flock 7

# FILE=PATH pairs for `ociimage.py` of a dynamically linked program and everything it loads.
with_libs() { # SRC DEST
  echo "$1=$2"
  ldd "$1" 2>/dev/null | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
    echo "$(readlink -f "$lib")=$lib"
  done
}
iptables_files() { # iptables-nft under every name kube-proxy and flannel run, its libraries and extensions
  local multi=/usr/sbin/xtables-nft-multi n x
  [ -x "$multi" ] || die "missing $multi (apt-get install iptables)"
  with_libs "$multi" /usr/sbin/xtables-nft-multi
  for n in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    echo "$multi=/usr/sbin/$n"
  done
  for x in /usr/lib/x86_64-linux-gnu/xtables/*.so; do
    with_libs "$x" "$x"
  done
}
cp_files() { with_libs "$(command -v cp)" /bin/cp; }

for ref in "$@"; do
  repo=${ref%:*} tag=${ref##*:}
  [ "$repo" != "$ref" ] || die "$ref has no tag"
  tar=$OUT/$(echo "$ref" | tr '/:' '__').tar
  # the netcheck image follows its source in this checkout
  if [ "$repo" = selfhosted.test/netcheck ] && [ -f "$tar" ] && [ -n "$(find "$HERE/netcheck" -newer "$tar")" ]; then
    rm -f "$tar"
  fi
  if [ ! -f "$tar" ]; then
    case "$repo" in
      */kube-proxy)
        bin=$CACHE/$tag/bin/kube-proxy
        [ -x "$bin" ] || die "no $bin: run tests/lane/build-go.sh $tag first"
        mapfile -t files < <(echo "$bin=/usr/local/bin/kube-proxy"; iptables_files)
        entry=/usr/local/bin/kube-proxy ;;
      */flannel-io/flannel)
        bin=$(GO_TOOL_CGO=1 bash "$GO_TOOL" flanneld "github.com/flannel-io/flannel@$tag" | tail -n1)
        mapfile -t files < <(echo "$bin=/opt/bin/flanneld"; iptables_files; cp_files)
        entry=/opt/bin/flanneld ;;
      */flannel-io/flannel-cni-plugin)
        bin=$(bash "$GO_TOOL" cni-flannel "github.com/containernetworking/plugins/plugins/meta/flannel@v0.9.1" | tail -n1)
        mapfile -t files < <(echo "$bin=/flannel"; cp_files)
        entry=/bin/cp ;;
      */coredns/coredns)
        bin=$(bash "$GO_TOOL" coredns "github.com/coredns/coredns@$tag" | tail -n1)
        files=("$bin=/coredns")
        entry=/coredns ;;
      selfhosted.test/netcheck)
        bin=$OUT/netcheck
        (cd "$HERE/netcheck" && GOENV=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod \
          GOCACHE=$CACHE/gocache GOMODCACHE=$CACHE/gomod go build -o "$bin.tmp" . && mv -f "$bin.tmp" "$bin")
        files=("$bin=/netcheck")
        entry=/netcheck ;;
      *) die "no recipe for $ref" ;;
    esac
    # one entry per path in the image (libraries repeat across programs)
    mapfile -t files < <(printf '%s\n' "${files[@]}" | awk -F= '!seen[$2]++')
    python3 "$HERE/ociimage.py" "$tar" "$ref" "$entry" "${files[@]}" >&2
  fi
  echo "$ref $tar"
done
