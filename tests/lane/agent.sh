#!/bin/bash
# The controller host's "init system", run INSIDE a test-bed host (its mount/UTS/PID/net namespaces) by
# controller.sh; it plays what typhoon's Fedora CoreOS units do on a controller:
#   containerd.service      containerd with /etc/selfhosted-lane/containerd.toml (always)
#   kubelet.path/.service   the kubelet, once /etc/kubernetes/kubeconfig exists (ExecStartPre as typhoon:
#                           /etc/kubernetes/ca.crt := certificate-authority-data of that kubeconfig)
#   etcd-member.service     etcd with /etc/etcd/etcd.env, once /etc/ssl/etcd/etcd/server.crt exists: Debian's
#                           /usr/bin/etcd, or, when /etc/etcd/image.env sets ETCD_IMAGE (the contract's switch where
#                           etcd is an image), /usr/local/lib/selfhosted-lane/etcd-vX.Y.Z of that image's release
# The kubelet runs /usr/local/bin/kubelet, or, when /etc/kubernetes/kubelet.env sets KUBELET_IMAGE
# (the contract's switch on Fedora CoreOS/Flatcar, where the kubelet is an image), the binary of that
# image's release, /usr/local/lib/selfhosted-lane/kubelet-<tag> (as `podman run` of the image would;
# a tag with no binary fails to start, as a failed pull). /run/selfhosted-lane/kubelet.restart (the
# test bed's `systemctl restart kubelet`) stops the kubelet and starts it at once; its containers
# run on. A unit that exits is restarted after $RESTART_SEC s (Restart=always, RestartSec). While
# /run/selfhosted-lane/etcd.stopped exists, etcd is stopped and stays so (`systemctl stop etcd-member`);
# /run/selfhosted-lane/etcd.restart (`systemctl restart etcd-member`) stops etcd and starts it at once. On SIGTERM it stops,
# in order: kubelet, every container (SIGTERM first when /run/selfhosted-lane/graceful exists, as an
# OS reboot; then tasks killed and deleted, so no shim outlives containerd),
# containerd, etcd; then it unmounts what the kubelet and containerd mounted and exits.
# Settings: /etc/selfhosted-lane/agent.env (written by controller.sh). Logs: /var/log/selfhosted-lane/.
set -uo pipefail
. /etc/selfhosted-lane/agent.env
LOG=/var/log/selfhosted-lane
mkdir -p "$LOG" /run/selfhosted-lane
echo $$ > /run/selfhosted-lane/agent.pid
log() { printf '%s agent: %s\n' "$(date -u +%H:%M:%S.%N | cut -c1-12)" "$*" >> "$LOG/agent.log"; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
status_of() { wait "$1" 2>/dev/null; echo $?; }
CTR="ctr --address /run/containerd/containerd.sock --namespace k8s.io"

CTRD=; KUBELET=; ETCD=; KUBELET_NEXT=0; ETCD_NEXT=0; CTRD_NEXT=0

start_containerd() {
  mkdir -p /run/containerd
  containerd --config /etc/selfhosted-lane/containerd.toml >> "$LOG/containerd.log" 2>&1 &
  CTRD=$!; log "containerd started (pid $CTRD)"
}

start_kubelet() {
  mkdir -p /etc/kubernetes/manifests /var/lib/kubelet/volumeplugins
  # typhoon's kubelet.service ExecStartPre: the client CA comes from the bootstrap kubeconfig
  if ! grep certificate-authority-data /etc/kubernetes/kubeconfig | awk '{print $2}' | base64 -d \
      > /etc/kubernetes/ca.crt.new 2>>"$LOG/agent.log" || [ ! -s /etc/kubernetes/ca.crt.new ]; then
    log "kubelet ExecStartPre failed: no certificate-authority-data on one line in /etc/kubernetes/kubeconfig"
    rm -f /etc/kubernetes/ca.crt.new; KUBELET_NEXT=$(( $(date +%s) + RESTART_SEC )); return
  fi
  mv -f /etc/kubernetes/ca.crt.new /etc/kubernetes/ca.crt
  # the flags of the rendered kubelet.service (node contract), plus what this test bed needs:
  # --node-ip (no default route in a test-bed namespace), --oom-score-adj=0 (no CAP_SYS_RESOURCE)
  local role_flags=()
  if [ "${ROLE:-controller}" = controller ]; then   # node/kubelet-controller.service; workers have neither
    role_flags=(--node-labels=node.kubernetes.io/controller=true
                --register-with-taints=node-role.kubernetes.io/control-plane:NoSchedule)
  fi
  local runtime_flag=()   # gone in 1.27
  if [ "${KUBELET_MINOR:-20}" -lt 27 ]; then runtime_flag=(--container-runtime=remote); fi
  local bin=/usr/local/bin/kubelet image
  image=$(sed -n 's/^KUBELET_IMAGE=//p' /etc/kubernetes/kubelet.env 2>/dev/null | tail -n1)
  if [ -n "$image" ]; then
    bin=/usr/local/lib/selfhosted-lane/kubelet-${image##*:}
    if [ ! -x "$bin" ]; then
      log "kubelet: no binary for image $image ($bin): not started"; KUBELET_NEXT=$(( $(date +%s) + RESTART_SEC )); return
    fi
  fi
  # shellcheck disable=SC2086
  "$bin" \
    --bootstrap-kubeconfig=/etc/kubernetes/kubeconfig \
    --cert-dir=/var/lib/kubelet/pki \
    --config=/etc/selfhosted-lane/kubelet.yaml \
    "${runtime_flag[@]}" \
    --container-runtime-endpoint=unix:///run/containerd/containerd.sock \
    --kubeconfig=/var/lib/kubelet/kubeconfig \
    --rotate-certificates \
    "${role_flags[@]}" \
    --node-ip="$NODE_IP" \
    --oom-score-adj=0 \
    --v=2 $KUBELET_EXTRA_ARGS >> "$LOG/kubelet.log" 2>&1 &
  KUBELET=$!; log "kubelet started (pid $KUBELET, $bin)"
}

start_etcd() {
  chown -R etcd:etcd /var/lib/etcd 2>/dev/null; chmod 700 /var/lib/etcd
  # the image /etc/etcd/image.env names (the contract's switch where etcd is an image) runs as the
  # binary of its release, /usr/local/lib/selfhosted-lane/etcd-vX.Y.Z (a tag with no binary fails to
  # start, as a failed pull); without the file, Debian's /usr/bin/etcd
  local bin=/usr/bin/etcd image release
  image=$(sed -n 's/^ETCD_IMAGE=//p' /etc/etcd/image.env 2>/dev/null | tail -n1)
  if [ -n "$image" ]; then
    release=${image##*:}; release=${release%%-*}
    bin=/usr/local/lib/selfhosted-lane/etcd-v${release#v}
    if [ ! -x "$bin" ]; then
      log "etcd: no binary for image $image ($bin): not started"; ETCD_NEXT=$(( $(date +%s) + RESTART_SEC )); return
    fi
  fi
  # typhoon runs etcd as the etcd user with the certificates chowned to it
  ( set -a; . /etc/etcd/etcd.env; set +a
    exec setpriv --reuid=etcd --regid=etcd --init-groups "$bin" ) >> "$LOG/etcd.log" 2>&1 &
  ETCD=$!; log "etcd started (pid $ETCD, $bin)"
}

stop() { # NAME PID SECONDS
  alive "$2" || return 0
  kill -TERM "$2"
  local i; for i in $(seq 1 $(( $3 * 5 ))); do alive "$2" || break; sleep 0.2; done
  alive "$2" && { log "$1 did not stop in $3 s: SIGKILL"; kill -KILL "$2"; }
  wait "$2" 2>/dev/null; log "$1 stopped"
}

STOP=
trap 'STOP=1' TERM INT
log "agent up (pid $$, node ip $NODE_IP)"
start_containerd
while [ -z "$STOP" ]; do
  now=$(date +%s)
  if [ -n "$CTRD" ] && ! alive "$CTRD"; then
    log "containerd exited (status $(status_of "$CTRD"))"; CTRD=; CTRD_NEXT=$(( now + RESTART_SEC ))
  fi
  [ -z "$CTRD" ] && [ "$now" -ge "$CTRD_NEXT" ] && start_containerd
  if [ -n "$KUBELET" ] && ! alive "$KUBELET"; then
    log "kubelet exited (status $(status_of "$KUBELET"))"; KUBELET=; KUBELET_NEXT=$(( now + RESTART_SEC ))
  fi
  if [ -e /run/selfhosted-lane/kubelet.restart ]; then
    rm -f /run/selfhosted-lane/kubelet.restart   # `systemctl restart kubelet`
    [ -n "$KUBELET" ] && { stop kubelet "$KUBELET" 15; KUBELET=; }
    KUBELET_NEXT=0
  fi
  if [ -z "$KUBELET" ] && [ -f /etc/kubernetes/kubeconfig ] && [ "$now" -ge "$KUBELET_NEXT" ]; then start_kubelet; fi
  if [ -n "$ETCD" ] && ! alive "$ETCD"; then
    log "etcd exited (status $(status_of "$ETCD"))"; ETCD=; ETCD_NEXT=$(( now + RESTART_SEC ))
  fi
  if [ -e /run/selfhosted-lane/etcd.restart ]; then
    # `systemctl restart etcd-member`: it reads etcd.env anew (the file goes once it is started)
    [ -n "$ETCD" ] && { stop etcd "$ETCD" 15; ETCD=; }
    ETCD_NEXT=0
    if [ ! -e /run/selfhosted-lane/etcd.stopped ] && [ -f /etc/ssl/etcd/etcd/server.crt ]; then start_etcd; fi
    rm -f /run/selfhosted-lane/etcd.restart
  fi
  if [ -e /run/selfhosted-lane/etcd.stopped ]; then
    # `systemctl stop etcd-member`: stopped, and not restarted until the file goes
    [ -n "$ETCD" ] && { stop etcd "$ETCD" 15; ETCD=; }
  elif [ -z "$ETCD" ] && [ -f /etc/ssl/etcd/etcd/server.crt ] && [ "$now" -ge "$ETCD_NEXT" ]; then start_etcd; fi
  sleep 0.5 & wait $! 2>/dev/null
done

log "stopping"
stop kubelet "$KUBELET" 15
if alive "$CTRD" && [ -e /run/selfhosted-lane/graceful ]; then
  # an OS reboot: every container gets SIGTERM and up to 30 s (the apiserver drains its requests)
  rm -f /run/selfhosted-lane/graceful
  for t in $($CTR tasks ls -q 2>/dev/null); do $CTR tasks kill --all --signal SIGTERM "$t" >/dev/null 2>&1; done
  for _ in $(seq 1 150); do
    $CTR tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"' | grep -q . || break
    sleep 0.2
  done
  log "containers stopped after SIGTERM (or 30 s passed)"
fi
if alive "$CTRD"; then
  for t in $($CTR tasks ls -q 2>/dev/null); do $CTR tasks kill --all --signal SIGKILL "$t" >/dev/null 2>&1; done
  for _ in $(seq 1 25); do
    $CTR tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"' | grep -q . || break
    sleep 0.2
  done
  for t in $($CTR tasks ls -q 2>/dev/null); do $CTR tasks delete --force "$t" >/dev/null 2>&1; done
  for c in $($CTR containers ls -q 2>/dev/null); do $CTR containers delete "$c" >/dev/null 2>&1; done
fi
stop containerd "$CTRD" 10
stop etcd "$ETCD" 15
# shims or container processes that survived (should be none): kill them by executable
for p in /proc/[0-9]*; do
  case "$(readlink "$p/exe" 2>/dev/null)" in
    */containerd-shim*|*/runc|*/pause|*/kube-apiserver|*/kube-controller-manager|*/kube-scheduler|*/kubelet|*/etcd)
      log "killing leftover ${p#/proc/} $(readlink "$p/exe")"; kill -KILL "${p#/proc/}" 2>/dev/null ;;
  esac
done
sleep 0.2
# mounts made by the kubelet (secret tmpfs, rshared root) and containerd (rootfs, shm), deepest first
for m in $(awk '{print $2}' /proc/self/mounts | grep -E '^/(var/lib/kubelet|var/lib/containerd|run/containerd)/' | sort -r); do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
done
log "stopped"
rm -f /run/selfhosted-lane/agent.pid
exit 0
