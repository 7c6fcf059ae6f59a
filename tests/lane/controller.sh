#!/bin/bash
# Controller host role on top of the multi-host SSH test bed (tests/testbed/hosts.sh): turns one test-bed
# host into a Kubernetes controller (SELFHOSTED_LANE_VERSION, default v1.34.3, built by build-go.sh;
# v1.20.2 by build.sh) the way typhoon's Fedora CoreOS controller behaves, so the
# provider (or a test playing it over SSH) only has to deliver files.
#
#   controller.sh up     --dir D [--host NAME] [--etcd-initial-cluster NAME=https://ADDR:2380,...] [--role worker]
#                        [--etcd-env FILE]   (etcd's settings: the node contract's node.etcd_env of this member,
#                        as the tests pass it; without it, the same settings written here)
#                        [--network none|flannel] [--image TARBALL]...   (none: a loopback-only CNI, only
#                        hostNetwork pods run; flannel: no CNI config until flannel's DaemonSet writes one,
#                        the standard plugins in /opt/cni/bin; --image: more OCI tarballs to import, e.g.
#                        the add-on images of addons.sh)
#   controller.sh down   --dir D [--host NAME] [--graceful]   (no --host: every host that has the role;
#                        --graceful: as an OS reboot, containers get SIGTERM and 30 s before SIGKILL;
#                        else as a power loss, SIGKILL at once)
#   controller.sh status --dir D [--host NAME]
#   controller.sh exec   --dir D [--host NAME] -- CMD...   (root inside the host; e.g. crictl ps -a)
#   controller.sh images                            (build the local OCI images into the cache only)
#
# D is the test bed's --dir (it holds inventory.json); NAME defaults to the first host. `up` is idempotent.
# Inside the host (its mount/UTS/PID/net namespaces, entered with `hosts.sh exec`):
#   containerd (Debian, + runc; restrict_oom_score_adj, cgroupfs, loopback-only CNI, sandbox image
#   registry.k8s.io/pause:3.2) with the local images registry.k8s.io/kube-{apiserver,controller-manager,
#   scheduler}:v1.20.2 and registry.k8s.io/pause:3.2 imported; an agent (agent.sh) that starts the kubelet
#   once /etc/kubernetes/kubeconfig exists and etcd once /etc/ssl/etcd/etcd/server.crt exists.
# Everything listens on the host's namespace address (10.213.X.Y) or loopback, inside its namespace.
# Logs: D/lane/NAME/logs/{agent,containerd,kubelet,etcd}.log and D/lane/NAME/logs/pods/ (the host's
# /var/log/selfhosted-lane and /var/log/pods). Writes D/lane/NAME/role.json.
# The binaries and images come from the cache of build.sh (v1.20.2) or build-go.sh (current releases):
# ${SELFHOSTED_LANE_CACHE:-/var/cache/selfhosted-lane}/VERSION.
set -Eeuo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOSTS=${SELFHOSTED_TESTBED_HOSTS:-$HERE/../testbed/hosts.sh}
V=${SELFHOSTED_LANE_VERSION:-v1.34.3}
[[ $V =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || { echo "controller.sh: SELFHOSTED_LANE_VERSION is v1.MINOR.PATCH, not $V" >&2; exit 2; }
MINOR=${BASH_REMATCH[1]}
CACHE=${SELFHOSTED_LANE_CACHE:-/var/cache/selfhosted-lane}
BIN=$CACHE/$V/bin
IMG=$CACHE/$V/images
# the sandbox image kubeadm of that minor configures (3.2 for 1.20; 3.10.1 from 1.34)
# SELFHOSTED_LANE_UPGRADE_TO: more releases whose control-plane images `up` imports (upgrade tests)
UPGRADE_TO=${SELFHOSTED_LANE_UPGRADE_TO:-}
# SELFHOSTED_LANE_ETCD_RELEASES: etcd releases (v3.X.Y) built by build-etcd.sh that `up` installs for the
# agent's etcd image switch; Debian's own etcd is always there under its release
ETCD_RELEASES=${SELFHOSTED_LANE_ETCD_RELEASES:-}
if [ "$MINOR" -ge 34 ]; then PAUSE_IMAGE=registry.k8s.io/pause:3.10.1; else PAUSE_IMAGE=registry.k8s.io/pause:3.2; fi
SYNC_FREQUENCY=${SELFHOSTED_LANE_SYNC_FREQUENCY:-10s}
RESTART_SEC=${SELFHOSTED_LANE_RESTART_SEC:-5}
KUBELET_EXTRA_ARGS=${SELFHOSTED_LANE_KUBELET_EXTRA_ARGS:-}
T0=$(date +%s.%N)

die() { echo "controller.sh: $*" >&2; exit 1; }
log() { awk -v t0="$T0" -v t1="$(date +%s.%N)" -v m="$*" 'BEGIN{printf "[lane %5.1fs] %s\n", t1-t0, m}' >&2; }

# ---------- images: one-layer OCI tarballs in the cache, named as the rendered manifests name them ----------
ensure_images() { # [VERSION]: the images of VERSION (default: the lane's) from its cache
  local v=${1:-$V} c
  local bin=$CACHE/$v/bin img=$CACHE/$v/images
  mkdir -p "$img"
  exec 8>"$img/.lock"; flock 8
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    if [ ! -f "$img/$c.tar" ] || [ "$bin/$c" -nt "$img/$c.tar" ]; then
      python3 "$HERE/ociimage.py" "$img/$c.tar" "registry.k8s.io/$c:$v" "/usr/local/bin/$c" \
        "$bin/$c=/usr/local/bin/$c" >&2
    fi
  done
  if [ "$v" = "$V" ] && { [ ! -f "$img/pause.tar" ] || [ "$bin/pause" -nt "$img/pause.tar" ]; }; then
    python3 "$HERE/ociimage.py" "$img/pause.tar" "$PAUSE_IMAGE" /pause "$bin/pause=/pause" >&2
  fi
  flock -u 8
}

builder() { if [ "$V" = v1.20.2 ]; then echo build.sh; else echo "build-go.sh $V"; fi; }

# ---------- arguments and inventory ----------
CMD=${1:-}; shift || true
D=""; NAME=""; ETCD_CLUSTER=""; ETCD_ENV=""; HOST_GIVEN=""; ROLE=controller; GRACEFUL=""; NETWORK=none; EXTRA_IMAGES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) D=$2; shift 2 ;;
    --host) NAME=$2; HOST_GIVEN=1; shift 2 ;;
    --etcd-initial-cluster) ETCD_CLUSTER=$2; shift 2 ;;
    --etcd-env) ETCD_ENV=$2; shift 2 ;;
    --graceful) GRACEFUL=1; shift ;;
    --network) NETWORK=$2; shift 2; case "$NETWORK" in none|flannel) ;; *) die "--network is none or flannel, not $NETWORK" ;; esac ;;
    --image) EXTRA_IMAGES+=("$2"); shift 2 ;;
    --role) ROLE=$2; shift 2; case "$ROLE" in controller|worker) ;; *) die "--role is controller or worker, not $ROLE" ;; esac ;;
    --) shift; break ;;
    *) die "unexpected argument $1" ;;
  esac
done

inv() { jq -r "$1" "$D/inventory.json"; }
host_init_pid() { # -> host pid of the host's PID 1 (its sshd listener), empty if down
  local lp; lp=$(cat "$D/hosts/$NAME/launcher.pid" 2>/dev/null) || return 0
  pgrep -P "$lp" 2>/dev/null | head -n1 || true
}
hexec() { "$HOSTS" exec --dir "$D" "$NAME" -- "$@"; }
cg_name() { echo "selfhosted-lane-$(cat "$D/run" 2>/dev/null || echo norun)-$NAME"; }

cgroups_remove() { # CGROUP_NAME: remove the kubelet's cgroup tree in every v1 hierarchy (deepest first)
  local h i left
  for i in $(seq 1 20); do   # tasks of killed containers may take a moment to leave
    left=""
    for h in /sys/fs/cgroup/*/"$1"; do
      [ -d "$h" ] || continue
      find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$h" ] && left="$left $h"
    done
    [ -z "$left" ] && return 0
    sleep 0.5
  done
  log "warning: cgroups still in use:$left"
  return 0
}

# Processes of the host that belong to the role (by executable), seen from the machine.
role_pids() { # PIDNS_LINK
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$1" ] || continue
    case "$(readlink "$p/exe" 2>/dev/null)" in
      */containerd|*/containerd-shim*|*/runc|*/pause|*/kube-apiserver|*/kube-controller-manager|*/kube-scheduler|*/kubelet|*/etcd)
        echo "${p#/proc/}" ;;
      */bash) tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q 'selfhosted-lane/agent.sh' && echo "${p#/proc/}" ;;
    esac
  done
  return 0
}

down_one() {
  local S=$D/lane/$NAME p ns pids w
  [ -d "$S" ] || return 0
  p=$(host_init_pid)
  if [ -n "$p" ]; then
    ns=$(readlink "/proc/$p/ns/pid")
    if [ -n "$GRACEFUL" ]; then hexec touch /run/selfhosted-lane/graceful 2>/dev/null || true; fi
    if hexec sh -c 'p=$(cat /run/selfhosted-lane/agent.pid 2>/dev/null) && kill -TERM "$p"' 2>/dev/null; then
      for _ in $(seq 1 300); do
        hexec test -e /run/selfhosted-lane/agent.pid 2>/dev/null || break
        sleep 0.2
      done
    fi
    pids=$(role_pids "$ns")
    if [ -n "$pids" ]; then log "$NAME: killing leftovers: $pids"; kill -KILL $pids 2>/dev/null || true; sleep 0.3; fi
    # what the kubelet/containerd mounted and our data mounts, deepest first
    hexec sh -c 'for m in $(awk "{print \$2}" /proc/self/mounts | grep -E "^/(var/lib/kubelet|var/lib/containerd|var/lib/etcd|run/containerd|sys/fs/cgroup)(/|$)" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m"; done' || true
  fi
  w=$(cat "$S/reaper.pid" 2>/dev/null || true)
  if [ -n "$w" ] && [ -r "/proc/$w/cmdline" ] && tr '\0' ' ' < "/proc/$w/cmdline" | grep -q "controller.sh reap"; then kill "$w" 2>/dev/null || true; fi
  rm -f "$S/reaper.pid"
  cgroups_remove "$(cat "$S/cgroup" 2>/dev/null || cg_name)"
  rm -f "$S/up"
  log "$NAME: controller role down"
}

case "$CMD" in
images)
  [ -x "$BIN/kubelet" ] || die "no binaries in $BIN (run $HERE/$(builder))"
  ensure_images; ls -l "$IMG"/*.tar >&2
  exit 0 ;;
reap) # internal: outlives nothing — waits for the host's PID 1 to go, then removes the role's cgroups
  P=${NAME%%:*}; CG=${NAME#*:}
  while kill -0 "$P" 2>/dev/null; do sleep 2; done
  cgroups_remove "$CG"; exit 0 ;;
esac

[ -n "$D" ] || die "--dir is required"
D=$(cd "$D" && pwd)
if [ "$CMD" = down ]; then
  if [ -n "$HOST_GIVEN" ]; then down_one; else
    for h in "$D"/lane/*/; do [ -d "$h" ] || continue; NAME=$(basename "$h"); down_one; done
  fi
  exit 0
fi
[ -f "$D/inventory.json" ] || die "$D holds no test bed (run tests/testbed/hosts.sh up --dir $D first)"
[ -n "$NAME" ] || NAME=$(inv '.hosts[0].name')
ADDR=$(inv ".hosts[] | select(.name == \"$NAME\") | .address")

case "$CMD" in
up)
  [ -n "$ADDR" ] || die "no host $NAME in $D/inventory.json"
  [ "$(id -u)" = 0 ] || die "needs root"
  for c in containerd containerd-shim-runc-v2 runc ctr etcd setpriv jq python3 flock; do
    command -v "$c" >/dev/null || die "missing $c (apt-get install containerd runc etcd-server jq python3)"
  done
  [ -x /usr/lib/cni/loopback ] || die "missing /usr/lib/cni/loopback (apt-get install containernetworking-plugins)"
  [ -d /sys/fs/cgroup/cpu ] || die "needs cgroup v1 hierarchies under /sys/fs/cgroup"
  getent passwd etcd >/dev/null || die "no etcd user on this machine (apt-get install etcd-server creates it)"
  S=$D/lane/$NAME
  P=$(host_init_pid); [ -n "$P" ] || die "host $NAME is not running"
  if [ -f "$S/up" ] && hexec sh -c 'kill -0 "$(cat /run/selfhosted-lane/agent.pid)"' 2>/dev/null; then
    log "$NAME: controller role already up"; cat "$S/role.json"; exit 0
  fi
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet pause; do
    # shellcheck disable=SC2046
    [ -x "$BIN/$b" ] || { log "binaries missing: running $(builder)"; "$HERE"/$(builder) >/dev/null; break; }
  done
  ensure_images
  for v in $UPGRADE_TO; do
    [ -x "$CACHE/$v/bin/kube-apiserver" ] || { log "binaries of $v missing: running build-go.sh $v"; "$HERE/build-go.sh" "$v" >/dev/null; }
    ensure_images "$v"
  done
  for e in $ETCD_RELEASES; do "$HERE/build-etcd.sh" "$e" >/dev/null; done
  mkdir -p "$S/stage" "$S/data/kubelet" "$S/data/etcd" "$S/data/containerd"
  chmod 700 "$S/data/etcd"
  CG=$(cg_name); echo "$CG" > "$S/cgroup"
  DNS_IP=10.3.0.10
  ETCD_CLUSTER=${ETCD_CLUSTER:-$NAME=https://$ADDR:2380}

  # --- "the OS image": files typhoon's Ignition would have written, staged then unpacked inside ---
  R=$S/stage; rm -rf "$R"; mkdir -p "$R/etc/selfhosted-lane" "$R/etc/etcd" "$R/etc/cni/net.d" "$R/usr/local/lib/selfhosted-lane"
  install -m 0755 "$HERE/agent.sh" "$R/usr/local/lib/selfhosted-lane/agent.sh"
  cat > "$R/etc/selfhosted-lane/agent.env" <<ENV
NODE_IP=$ADDR
ROLE=$ROLE
RESTART_SEC=$RESTART_SEC
KUBELET_MINOR=$MINOR
KUBELET_EXTRA_ARGS="$KUBELET_EXTRA_ARGS"
ENV
  if [ "$NETWORK" = none ]; then
    CNI_BIN=/usr/lib/cni
    cat > "$R/etc/cni/net.d/10-lo-only.conflist" <<'CNI'
{"cniVersion": "0.4.0", "name": "lo-only", "plugins": [{"type": "loopback"}]}
CNI
  else
    # a real pod network: the host has the standard plugins in /opt/cni/bin (the host contract),
    # flannel's DaemonSet adds its plugin and config there; the node is NotReady until it has
    CNI_BIN=/opt/cni/bin
    mkdir -p "$R/opt/cni/bin"
    for c in bridge host-local loopback portmap; do install -m 0755 "/usr/lib/cni/$c" "$R/opt/cni/bin/$c"; done
  fi
  cat > "$R/etc/selfhosted-lane/containerd.toml" <<CFG
# containerd of the lane controller (inside the host: /var/lib/containerd is a non-overlay mount)
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE_IMAGE"
    enable_selinux = false
    # this machine drops CAP_SYS_RESOURCE: a negative oom_score_adj (sandbox -998) makes runc fail
    # ("can't get final child's PID from pipe: EOF"); clamp to containerd's own value instead
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$CNI_BIN"
      conf_dir = "/etc/cni/net.d"
CFG
  # The rendered node contract's KubeletConfiguration (cargo run -p selfhosted-manifests --example dump),
  # with what differs on this test bed marked.
  cat > "$R/etc/selfhosted-lane/kubelet.yaml" <<CFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: /etc/kubernetes/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
rotateCertificates: true
staticPodPath: /etc/kubernetes/manifests
volumePluginDir: /var/lib/kubelet/volumeplugins
# --- test bed (no systemd, shared cgroup v1 tree, no resolved, fast mirror pods) ---
cgroupDriver: cgroupfs
cgroupRoot: /$CG
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
resolvConf: /etc/resolv.conf
address: $ADDR
port: 10250
healthzPort: 10248
syncFrequency: $SYNC_FREQUENCY
fileCheckFrequency: 5s
failSwapOn: false
makeIPTablesUtilChains: false
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
CFG
  # cgroup v1 here: kubelet 1.35 and later refuse it unless told (the field exists from 1.31)
  if [ "$MINOR" -ge 31 ]; then echo "failCgroupV1: false" >> "$R/etc/selfhosted-lane/kubelet.yaml"; fi
  if [ -n "$ETCD_ENV" ]; then
    # the node contract's etcd.env of this member, as the provider renders it (node.etcd_env)
    install -m 0644 "$ETCD_ENV" "$R/etc/etcd/etcd.env"
  else
    # typhoon's /etc/etcd/etcd.env (fcos/controller.yaml), on the host's address and loopback
    cat > "$R/etc/etcd/etcd.env" <<ENV
ETCD_NAME=$NAME
ETCD_DATA_DIR=/var/lib/etcd
ETCD_ADVERTISE_CLIENT_URLS=https://$ADDR:2379
ETCD_INITIAL_ADVERTISE_PEER_URLS=https://$ADDR:2380
ETCD_LISTEN_CLIENT_URLS=https://$ADDR:2379,https://127.0.0.1:2379
ETCD_LISTEN_PEER_URLS=https://$ADDR:2380
ETCD_LISTEN_METRICS_URLS=http://127.0.0.1:2381
ETCD_INITIAL_CLUSTER=$ETCD_CLUSTER
ETCD_STRICT_RECONFIG_CHECK=true
ETCD_TRUSTED_CA_FILE=/etc/ssl/etcd/etcd/server-ca.crt
ETCD_CERT_FILE=/etc/ssl/etcd/etcd/server.crt
ETCD_KEY_FILE=/etc/ssl/etcd/etcd/server.key
ETCD_CLIENT_CERT_AUTH=true
ETCD_PEER_TRUSTED_CA_FILE=/etc/ssl/etcd/etcd/peer-ca.crt
ETCD_PEER_CERT_FILE=/etc/ssl/etcd/etcd/peer.crt
ETCD_PEER_KEY_FILE=/etc/ssl/etcd/etcd/peer.key
ETCD_PEER_CLIENT_CERT_AUTH=true
ENV
  fi
  tar -C "$R" -cf - . | hexec tar -C / --no-same-owner -xf -
  if [ "$NETWORK" = flannel ]; then
    # a default route, as every real host has: flannel takes the interface it leaves by for its VXLAN
    # (the machine does not forward: nothing leaves the test bed by it)
    hexec ip route replace default via "$(inv .gateway)" dev eth0
    # kube-proxy mounts /lib/modules (a Directory hostPath), which every real host has and this VM's
    # module-less kernel lacks: the host gets an empty one in a private layer over /usr/lib
    hexec sh -c '[ -d /lib/modules ] && exit 0
      mkdir -p /run/selfhosted-lane/usr-lib/upper /run/selfhosted-lane/usr-lib/work
      mount -t overlay lane-usr-lib -o lowerdir=/usr/lib,upperdir=/run/selfhosted-lane/usr-lib/upper,workdir=/run/selfhosted-lane/usr-lib/work /usr/lib
      mkdir -p /usr/lib/modules'
  fi
  hexec sh -c 'cat > /usr/local/bin/kubelet.new && chmod 0755 /usr/local/bin/kubelet.new && mv -f /usr/local/bin/kubelet.new /usr/local/bin/kubelet' < "$BIN/kubelet"
  # the kubelets of the releases an upgrade test moves to, as the kubelet images would bring them
  # (agent.sh runs the one /etc/kubernetes/kubelet.env's KUBELET_IMAGE names)
  for v in $UPGRADE_TO; do
    hexec sh -c "cat > /usr/local/lib/selfhosted-lane/kubelet-$v.new && chmod 0755 /usr/local/lib/selfhosted-lane/kubelet-$v.new && mv -f /usr/local/lib/selfhosted-lane/kubelet-$v.new /usr/local/lib/selfhosted-lane/kubelet-$v" < "$CACHE/$v/bin/kubelet"
  done
  # the etcd releases an etcd image may name (agent.sh runs the one /etc/etcd/image.env's ETCD_IMAGE names)
  hexec sh -c 'ln -sfn /usr/bin/etcd "/usr/local/lib/selfhosted-lane/etcd-v$(/usr/bin/etcd --version | sed -n "s/^etcd Version: //p")"'
  for e in $ETCD_RELEASES; do
    hexec sh -c "cat > /usr/local/lib/selfhosted-lane/etcd-$e.new && chmod 0755 /usr/local/lib/selfhosted-lane/etcd-$e.new && mv -f /usr/local/lib/selfhosted-lane/etcd-$e.new /usr/local/lib/selfhosted-lane/etcd-$e" < "$CACHE/etcd-$e/etcd"
  done
  hexec mkdir -p /etc/kubernetes/manifests /etc/ssl/etcd/etcd /var/log/selfhosted-lane /var/log/pods

  # --- data folders: containerd's overlayfs snapshots and the kubelet need a non-overlay filesystem ---
  # (attached from here with bindns.py: D may sit under /tmp, which the host has its own of)
  for x in kubelet etcd containerd; do
    hexec mountpoint -q "/var/lib/$x" && continue
    hexec mkdir -p "/var/lib/$x"
    if ! python3 "$HERE/bindns.py" "$P" "$S/data/$x" "/var/lib/$x"; then
      log "$NAME: cannot bind $S/data/$x into the host: using a tmpfs for /var/lib/$x (lost on down)"
      hexec mount -t tmpfs -o mode=0755 "lane-$x" "/var/lib/$x"
    fi
  done

  # --- the kubelet's cgroup root, in every v1 hierarchy (the kubelet checks they exist) ---
  for h in /sys/fs/cgroup/*/; do
    [ "$(stat -f -c %T "$h")" = cgroupfs ] || continue
    mkdir -p "$h$CG"
    if [ -f "${h}cpuset.cpus" ]; then
      [ -n "$(cat "$h$CG/cpuset.cpus")" ] || cat "${h}cpuset.cpus" > "$h$CG/cpuset.cpus"
      [ -n "$(cat "$h$CG/cpuset.mems")" ] || cat "${h}cpuset.mems" > "$h$CG/cpuset.mems"
    fi
  done

  # --- cgroup v1 hierarchies inside the host: `ip netns exec` gave it a fresh /sys without them ---
  CGM=$(grep -E ' - (cgroup|cgroup2) ' /proc/self/mountinfo \
    | awk '{for (i = 1; i <= NF; i++) if ($i == "-") print $5, $(i + 1), $(i + 3)}' | grep '^/sys/fs/cgroup/')
  hexec sh -c 'mountpoint -q /sys/fs/cgroup || mount -t tmpfs -o mode=0755 lane-cgroup /sys/fs/cgroup
    while read -r mp type opts; do
      mkdir -p "$mp"; mountpoint -q "$mp" || mount -t "$type" -o "$opts" "$type" "$mp"
    done' <<<"$CGM"

  # --- start the agent (detached; its parent becomes the host's PID 1) ---
  hexec setsid -f bash /usr/local/lib/selfhosted-lane/agent.sh </dev/null >/dev/null 2>&1
  ok=""
  for _ in $(seq 1 100); do
    if hexec ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || { hexec tail -20 /var/log/selfhosted-lane/containerd.log >&2 || true; die "$NAME: containerd did not come up"; }
  log "$NAME: containerd up"
  for t in kube-apiserver kube-controller-manager kube-scheduler pause; do
    hexec ctr --address /run/containerd/containerd.sock --namespace k8s.io images import - < "$IMG/$t.tar" >/dev/null
  done
  # control-plane images of the releases an upgrade test moves to
  for v in $UPGRADE_TO; do
    for t in kube-apiserver kube-controller-manager kube-scheduler; do
      hexec ctr --address /run/containerd/containerd.sock --namespace k8s.io images import - < "$CACHE/$v/images/$t.tar" >/dev/null
    done
  done
  # add-on images (tests/lane/addons.sh) for a lane with a pod network
  for t in "${EXTRA_IMAGES[@]}"; do
    hexec ctr --address /run/containerd/containerd.sock --namespace k8s.io images import - < "$t" >/dev/null
  done
  # The provider's node agent (the apiserver pods' reuseport gate), built from this checkout.
  AGENT_TAR=$(bash "$HERE/agent-image.sh" | tail -n1)
  hexec ctr --address /run/containerd/containerd.sock --namespace k8s.io images import - < "$AGENT_TAR" >/dev/null
  have=$(hexec ctr --address /run/containerd/containerd.sock --namespace k8s.io images ls -q)
  for n in "registry.k8s.io/kube-apiserver:$V" "registry.k8s.io/kube-controller-manager:$V" \
           "registry.k8s.io/kube-scheduler:$V" "$PAUSE_IMAGE" "$(cat "$AGENT_TAR.ref")"; do
    grep -qxF "$n" <<<"$have" || die "$NAME: image $n missing after import"
  done
  log "$NAME: images imported"

  # --- logs under D, and a reaper that removes the cgroups if the host goes down without us ---
  mkdir -p "$S"
  ln -sfn "../../hosts/$NAME/var-upper/log/selfhosted-lane" "$S/logs"
  ln -sfn "../../hosts/$NAME/var-upper/log/pods" "$S/pod-logs"
  setsid -f "$0" reap --host "$P:$CG" </dev/null >/dev/null 2>&1
  sleep 0.1
  for w in $(pgrep -f "controller.sh reap --host $P:$CG" || true); do echo "$w" > "$S/reaper.pid"; done
  jq -n --arg name "$NAME" --arg address "$ADDR" --arg logs "$S/logs" --arg pods "$S/pod-logs" \
    --arg cgroup "$CG" --arg bin "$BIN" --arg version "$V" --arg pause "$PAUSE_IMAGE" \
    '{name: $name, address: $address, node_name: $name, logs: $logs, pod_logs: $pods, cgroup_root: $cgroup,
      bin: $bin, apiserver: ("https://" + $address + ":6443"), etcd: ("https://" + $address + ":2379"),
      version: $version, pause_image: $pause, images: [("registry.k8s.io/kube-apiserver:" + $version),
      ("registry.k8s.io/kube-controller-manager:" + $version), ("registry.k8s.io/kube-scheduler:" + $version), $pause]}' \
    > "$S/role.json"
  touch "$S/up"
  log "$NAME: controller role up ($ADDR)"
  cat "$S/role.json"
  ;;
status)
  S=$D/lane/$NAME
  [ -f "$S/up" ] || { echo "$NAME: down"; exit 1; }
  hexec sh -c 'echo "agent: $(cat /run/selfhosted-lane/agent.pid 2>/dev/null || echo none)"; for n in containerd kubelet etcd; do echo "$n: $(pgrep -x $n | tr "\n" " ")"; done'
  ;;
exec)
  [ $# -gt 0 ] || die "usage: exec --dir D [--host NAME] -- CMD..."
  exec "$HOSTS" exec --dir "$D" "$NAME" -- "$@"
  ;;
*) sed -n '2,24p' "$0"; exit 2 ;;
esac
