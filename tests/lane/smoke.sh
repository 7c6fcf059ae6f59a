#!/bin/bash
# End-to-end smoke of the real control-plane lane, WITHOUT the provider's pivot: one test-bed host with the
# controller role, assets rendered by `terraform apply` of selfhosted_cluster_assets (provider binary from
# cargo), delivered over SSH as `core` with sudo to typhoon's paths; then it shows etcd healthy, the bootstrap
# apiserver's /readyz ok, and the kubelet registered (TLS bootstrapping) and Ready.
#
#   tests/lane/smoke.sh            (needs root; KEEP=1 leaves everything up for inspection)
#
# Env: SELFHOSTED_LANE_CACHE (build cache), SELFHOSTED_PROVIDER_BIN (default TARGET/debug/terraform-provider-
# selfhosted, built with cargo if missing), SELFHOSTED_LANE_WORK (scratch parent, default TARGET/tmp),
# where TARGET is cargo's target dir (target/, or $CARGO_TARGET_DIR; scripts/target-dir.sh),
# SELFHOSTED_LANE_SMOKE_TIMEOUT (seconds per wait, default 240).
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
HOSTS=$REPO/tests/testbed/hosts.sh
CTL=$HERE/controller.sh
TIMEOUT=${SELFHOSTED_LANE_SMOKE_TIMEOUT:-240}
T0=$(date +%s.%N)
el() { awk -v t0="$T0" -v t1="$(date +%s.%N)" 'BEGIN{printf "%.1f", t1-t0}'; }
say() { echo "[smoke $(el)s] $*"; }
die() { echo "[smoke $(el)s] FAILED: $*" >&2; exit 1; }

TARGET=$(cd "$REPO" && bash scripts/target-dir.sh)
WORK=${SELFHOSTED_LANE_WORK:-$TARGET/tmp}
mkdir -p "$WORK"
D=$(mktemp -d "$WORK/lane-smoke-XXXXXX")
teardown() {
  local rc=$?
  if [ "${KEEP:-0}" = 1 ]; then echo "KEEP=1: left up in $D (down: $CTL down --dir $D; $HOSTS down --dir $D)"; return; fi
  if [ $rc != 0 ] && [ -d "$D/lane/h1/logs/" ]; then
    for f in agent kubelet etcd containerd; do
      echo "--- tail of $f.log"; tail -n 15 "$D/lane/h1/logs/$f.log" 2>/dev/null || true
    done
  fi
  "$CTL" down --dir "$D" || true
  "$HOSTS" down --dir "$D" || true
  # nothing may be left: no process in the host, no mount under D, no cgroup of the role
  if grep -q " $D/" /proc/self/mounts; then echo "LEFTOVER mounts under $D" >&2; rc=1; fi
  if ls -d /sys/fs/cgroup/*/selfhosted-lane-*-h1 2>/dev/null | grep -q "$(cat "$D/lane/h1/cgroup" 2>/dev/null || echo none)"; then
    echo "LEFTOVER cgroups $(cat "$D/lane/h1/cgroup")" >&2; rc=1
  fi
  [ $rc = 0 ] && rm -rf "$D"
  exit $rc
}
trap teardown EXIT

wait_for() { # DESCRIPTION CMD... : retries every second up to $TIMEOUT s
  local what=$1 s; shift; s=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    [ $(( $(date +%s) - s )) -lt "$TIMEOUT" ] || die "timed out after ${TIMEOUT}s waiting for $what"
    sleep 1
  done
  say "$what ($(( $(date +%s) - s ))s)"
}

# --- 1. binaries (cache) and the provider ---
V=${SELFHOSTED_LANE_VERSION:-v1.34.3}
if [ "$V" = v1.20.2 ]; then "$HERE/build.sh" >/dev/null; else "$HERE/build-go.sh" "$V" >/dev/null; fi
export SELFHOSTED_LANE_VERSION=$V
say "binaries ready"
PROVIDER=${SELFHOSTED_PROVIDER_BIN:-$TARGET/debug/terraform-provider-selfhosted}
if [ ! -x "$PROVIDER" ]; then (cd "$REPO" && cargo build -q -p terraform-provider-selfhosted); fi
[ -x "$PROVIDER" ] || die "no provider binary at $PROVIDER"

# --- 2. one host with the controller role ---
OWNER=$$; [ "${KEEP:-0}" = 1 ] && OWNER=1   # KEEP=1: a later `hosts.sh cleanup` must not remove it
"$HOSTS" up --dir "$D" --count 1 --owner "$OWNER" >/dev/null
ADDR=$(jq -r '.hosts[0].address' "$D/inventory.json")
KEY=$(jq -r '.key' "$D/inventory.json")
say "host h1 up at $ADDR"
"$CTL" up --dir "$D" --host h1 >/dev/null
T_LANE=$(el); say "controller role up"

# --- 3. assets: terraform apply of selfhosted_cluster_assets (dev_overrides, no registry) ---
TF=$D/tf; mkdir -p "$TF/plugins"
cp "$PROVIDER" "$TF/plugins/terraform-provider-selfhosted"
cat > "$TF/cli.tfrc" <<EOF
provider_installation {
  dev_overrides { "selfhosted/selfhosted" = "$TF/plugins" }
  direct {}
}
EOF
cat > "$TF/main.tf" <<EOF
terraform {
  required_providers { selfhosted = { source = "selfhosted/selfhosted" } }
}
resource "selfhosted_cluster_assets" "lane" {
  cluster_name       = "lane"
  api_servers        = ["$ADDR"]
  etcd_servers       = ["$ADDR"]
  kubernetes_version = "$V"
  networking         = "none"
  kube_proxy         = false
  coredns            = false
  asset_dir          = "\${path.module}/assets"
}
EOF
(cd "$TF" && TF_CLI_CONFIG_FILE=$TF/cli.tfrc TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 \
  terraform apply -auto-approve -input=false -no-color > "$TF/apply.log" 2>&1) || { cat "$TF/apply.log"; die "terraform apply"; }
A=$TF/assets
say "assets rendered"

# --- 4. deliver over SSH as core with sudo (typhoon's paths; trigger files last, by rename) ---
SSH=(ssh -i "$KEY" -o UserKnownHostsFile="$D/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=5)
tar -C "$A" -cf "$D/payload.tar" tls auth bootstrap-manifests bootstrap-secrets
scp -q -i "$KEY" -o UserKnownHostsFile="$D/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes \
  "$D/payload.tar" "core@$ADDR:payload.tar"
"${SSH[@]}" "core@$ADDR" sudo bash -euc "'
T=\$(mktemp -d); tar -C \$T -xf /home/core/payload.tar; rm -f /home/core/payload.tar
# etcd: /etc/ssl/etcd/etcd/{server-ca,server,peer-ca,peer}.{crt,key}, owned by etcd; server.crt last
install -d -m 0755 /etc/ssl/etcd; install -d -m 0700 /etc/ssl/etcd/etcd
install -m 0644 \$T/tls/etcd-ca.crt /etc/ssl/etcd/etcd/server-ca.crt
install -m 0644 \$T/tls/etcd-ca.crt /etc/ssl/etcd/etcd/peer-ca.crt
install -m 0600 \$T/tls/etcd/server.key /etc/ssl/etcd/etcd/server.key
install -m 0644 \$T/tls/etcd/peer.crt /etc/ssl/etcd/etcd/peer.crt
install -m 0600 \$T/tls/etcd/peer.key /etc/ssl/etcd/etcd/peer.key
chown -R etcd:etcd /etc/ssl/etcd
install -o etcd -g etcd -m 0644 \$T/tls/etcd/server.crt /etc/ssl/etcd/etcd/.server.crt.new
mv /etc/ssl/etcd/etcd/.server.crt.new /etc/ssl/etcd/etcd/server.crt
# bootstrap control plane: secrets folder first, static pods as dotfiles then renamed
install -d -m 0700 /etc/kubernetes/bootstrap-secrets /etc/kubernetes/manifests
install -m 0600 \$T/bootstrap-secrets/* /etc/kubernetes/bootstrap-secrets/
for m in \$T/bootstrap-manifests/*.yaml; do
  n=\$(basename \$m); install -m 0644 \$m /etc/kubernetes/manifests/.\$n.new; mv /etc/kubernetes/manifests/.\$n.new /etc/kubernetes/manifests/\$n
done
# kubelet trigger last
install -m 0600 \$T/auth/kubelet-bootstrap.kubeconfig /etc/kubernetes/.kubeconfig.new
mv /etc/kubernetes/.kubeconfig.new /etc/kubernetes/kubeconfig
rm -rf \$T
'"
T_DELIVERED=$(el); say "node secrets, bootstrap manifests and secrets delivered over SSH"

# --- 5. etcd healthy, apiserver /readyz, TLS bootstrapping ---
etcd_ok() { ETCDCTL_API=3 etcdctl --endpoints="https://$ADDR:2379" --cacert="$A/tls/etcd-ca.crt" \
  --cert="$A/tls/etcd-client.crt" --key="$A/tls/etcd-client.key" --command-timeout=3s endpoint health; }
wait_for "etcd healthy" etcd_ok
readyz() { curl -sf --max-time 3 --cacert "$A/tls/ca.crt" --cert "$A/tls/admin.crt" --key "$A/tls/admin.key" \
  "https://$ADDR:6443/readyz" | grep -qx ok; }
wait_for "bootstrap apiserver /readyz ok" readyz
T_READYZ=$(el)
K=(kubectl --kubeconfig "$A/auth/admin.kubeconfig" --request-timeout=10s)
"${K[@]}" apply -f "$A/manifests/21-clusterrolebinding-cluster-selfhosted_kubelet-bootstrap.yaml" \
  -f "$A/manifests/21-clusterrolebinding-cluster-selfhosted_kubelet-bootstrap-node-approver.yaml" \
  -f "$A/manifests/21-clusterrolebinding-cluster-selfhosted_kubelet-csr-renewal.yaml" \
  $(printf -- '-f %s ' "$A"/manifests/30-secret-kube-system-bootstrap-token-*.yaml) >/dev/null
say "bootstrap RBAC and token Secret applied"
node_ready() { [ "$("${K[@]}" get node h1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
wait_for "node h1 registered (TLS bootstrapping) and Ready" node_ready
T_NODE=$(el)
mirror_pods() { [ "$("${K[@]}" -n kube-system get pods --no-headers 2>/dev/null | grep -c Running)" -ge 3 ]; }
wait_for "3 bootstrap control-plane mirror pods Running" mirror_pods

# --- 6. evidence ---
"${K[@]}" get nodes -o wide
"${K[@]}" get node h1 -o jsonpath='labels: {.metadata.labels}{"\n"}taints: {.spec.taints}{"\n"}'
"${K[@]}" get csr
"${K[@]}" -n kube-system get pods -o wide
ADDR_IP=$("${K[@]}" get node h1 -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
[ "$ADDR_IP" = "$ADDR" ] || die "node InternalIP $ADDR_IP, expected $ADDR"
P=$(pgrep -P "$(cat "$D/hosts/h1/launcher.pid")" | head -n1); NS=$(readlink "/proc/$P/ns/pid")
RSS=0
for p in /proc/[0-9]*; do
  [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$NS" ] || continue
  r=$(awk '/^VmRSS/{print $2}' "$p/status" 2>/dev/null || true); RSS=$(( RSS + ${r:-0} ))
done
# (pods run in child PID namespaces of the host: count them too)
for p in /proc/[0-9]*; do
  case "$(readlink "$p/exe" 2>/dev/null)" in */kube-apiserver|*/kube-controller-manager|*/kube-scheduler|*/pause)
    [ "$(readlink "$p/ns/pid")" = "$NS" ] && continue
    grep -q "$(cat "$D/lane/h1/cgroup")" "$p/cgroup" 2>/dev/null || continue
    r=$(awk '/^VmRSS/{print $2}' "$p/status" 2>/dev/null || true); RSS=$(( RSS + ${r:-0} )) ;;
  esac
done
echo "SMOKE OK: lane up ${T_LANE}s, delivered ${T_DELIVERED}s, /readyz ${T_READYZ}s, node Ready ${T_NODE}s, total $(el)s; host RSS $(( RSS / 1024 )) MiB"
