#!/bin/bash
# Multi-host SSH test bed: real OpenSSH servers in network namespaces.
#
#   hosts.sh up   --dir D [--count N] [--bastion] [--authorize PUBKEY_FILE]... [--owner PID]
#   hosts.sh down --dir D
#   hosts.sh exec --dir D NAME -- CMD...        run CMD inside a host (mount/uts/pid/net), bypassing SSH
#   hosts.sh kill-sessions --dir D NAME         SIGKILL every per-connection sshd of a host (not the listener)
#   hosts.sh rekey --dir D NAME                 give a host a new SSH host key (a new machine's), as inventory.json then says
#   hosts.sh cleanup                            remove leftovers of runs whose owner process is gone
#
# Each host: its own network namespace on a bridge (10.213.X.0/24, X allocated per run; the bridge
# address 10.213.X.1 is the only one in the machine's namespace), its own mount/UTS/PID namespaces,
# copy-on-write /etc /opt /var /usr/local /home, private tmpfs /tmp and /run, one sshd with its own
# ed25519 host key. Users `core` (passwordless sudo) and `guest` (no sudo) live in a shared lower
# layer under D, never in the machine's own /etc. With --bastion, the hosts sit on a second bridge
# (10.214.X.0/24, no address on the machine) that only the bastion also reaches.
#
# `up` writes D/inventory.json. Needs root (netns, mounts). Every object carries the run's unique
# prefix, and is recorded under /run/selfhosted-testbed/runs/RUN, so `down` and `cleanup` remove
# exactly what a run made.
set -Eeuo pipefail

REG=/run/selfhosted-testbed
die() { echo "hosts.sh: $*" >&2; exit 1; }

# ---------- helpers ----------
alloc_subnet() { # -> X, claimed atomically for RUN
  mkdir -p "$REG/subnets"
  local x
  for x in $(seq 1 250); do
    if mkdir "$REG/subnets/$x" 2>/dev/null; then echo "$RUN" > "$REG/subnets/$x/run"; echo "$x"; return; fi
  done
  die "no free test-bed subnet (run 'hosts.sh cleanup')"
}

launch_host() { # NAME NETNS -> starts sshd, records launcher pid
  local name=$1 ns=$2 h="$D/hosts/$1"
  # shellcheck disable=SC2016
  local inner='
set -e
ovl() { mount -t overlay "sht-$2" -o "lowerdir=$3,upperdir=$H/$2-upper,workdir=$H/$2-work" "$1"; }
ovl /etc etc "$D/shared/etc:/etc"
ovl /home home "$D/shared/home:/home"
ovl /usr/local usrlocal "$D/shared/usrlocal:/usr/local"
ovl /opt opt /opt
ovl /var var /var
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -m 755 /run/sshd /run/sudo
cp "$H/sshd_config" /etc/ssh/sshd_config
cp "$H/ssh_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
chmod 600 /etc/ssh/ssh_host_ed25519_key
rm -f /etc/ssh/ssh_host_rsa_key* /etc/ssh/ssh_host_ecdsa_key*
echo "$NAME" > /etc/hostname; hostname "$NAME"; echo "127.0.1.1 $NAME" >> /etc/hosts
mkdir -p /var/log
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t proc proc /proc
exec /usr/sbin/sshd -D -E /var/log/sshd.log -f /etc/ssh/sshd_config
'
  D="$D" H="$h" NAME="$name" setsid ip netns exec "$ns" \
    unshare --mount --uts --pid --fork --kill-child --propagation private \
    bash -c "$inner" selfhosted-testbed-"$RUN" >"$h/launcher.log" 2>&1 </dev/null &
  echo $! > "$h/launcher.pid"
}

write_sshd_config() { # NAME ADDR
  cat > "$D/hosts/$1/sshd_config" <<CFG
ListenAddress $2
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers core guest
AllowTcpForwarding yes
MaxStartups 200:30:400
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel VERBOSE
CFG
}

add_host() { # NAME NETNS BRIDGE VETH ADDR/NN  (first interface)
  local name=$1 ns=$2 br=$3 veth=$4 cidr=$5
  mkdir -p "$D/hosts/$name"
  for d in etc home usrlocal opt var; do mkdir -p "$D/hosts/$name/$d-upper" "$D/hosts/$name/$d-work"; done
  ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$D/hosts/$name/ssh_host_ed25519_key"
  ip netns add "$ns"
  echo "netns $ns" >> "$STATE"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  echo "link $veth" >> "$STATE"
  ip link set "$veth" master "$br" up
  ip -n "$ns" addr add "$cidr" dev eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  write_sshd_config "$name" "${cidr%/*}"
}

make_shared_layer() { # users core (sudo) and guest (no sudo), authorized keys, fake systemctl
  local s="$D/shared" uid gid
  mkdir -p "$s/etc/sudoers.d" "$s/home" "$s/usrlocal/bin"
  uid=$(awk -F: 'BEGIN{m=2000} $3>=m && $3<60000 {m=$3+1} END{print m}' /etc/passwd)
  gid=$(awk -F: -v u="$uid" 'BEGIN{m=u} $3>=m && $3<60000 {m=$3+1} END{print m}' /etc/group)
  cp /etc/passwd /etc/group /etc/shadow "$s/etc/"
  for user in core guest; do
    grep -q "^$user:" /etc/passwd && die "user $user exists on this machine; the test bed needs the name"
    echo "$user:x:$uid:$gid::/home/$user:/bin/bash" >> "$s/etc/passwd"
    echo "$user:x:$gid:" >> "$s/etc/group"
    echo "$user:*:19000:0:99999:7:::" >> "$s/etc/shadow"
    mkdir -p "$s/home/$user/.ssh"
    cat "$D/client/id_ed25519.pub" "${AUTHORIZE[@]}" > "$s/home/$user/.ssh/authorized_keys"
    chmod 700 "$s/home/$user/.ssh"; chmod 600 "$s/home/$user/.ssh/authorized_keys"
    chown -R "$uid:$gid" "$s/home/$user"; chmod 755 "$s/home/$user"
    uid=$((uid + 1)); gid=$((gid + 1))
  done
  chmod 640 "$s/etc/shadow"; chown root:shadow "$s/etc/shadow" 2>/dev/null || true
  echo 'core ALL=(ALL) NOPASSWD:ALL' > "$s/etc/sudoers.d/core"; chmod 440 "$s/etc/sudoers.d/core"
  cat > "$s/usrlocal/bin/systemctl" <<'SH'
#!/bin/sh
# Test-bed stand-in for systemd: records the call, succeeds. `restart kubelet[.service]` and
# `restart etcd-member[.service]` ask the lane's agent (tests/lane/agent.sh) to restart the kubelet
# or etcd, as systemd would.
echo "systemctl $*" >> /var/log/systemctl.log 2>/dev/null || true
case " $* " in
  *" restart "*)
    case " $* " in *" kubelet "*|*" kubelet.service "*)
      [ -d /run/selfhosted-lane ] && touch /run/selfhosted-lane/kubelet.restart ;; esac
    case " $* " in *" etcd-member "*|*" etcd-member.service "*)
      # as systemd's restart, it returns once etcd was stopped and started again
      if [ -d /run/selfhosted-lane ]; then
        touch /run/selfhosted-lane/etcd.restart
        i=0; while [ -e /run/selfhosted-lane/etcd.restart ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
      fi ;; esac ;;
esac
exit 0
SH
  chmod 755 "$s/usrlocal/bin/systemctl"
}

wait_ssh() { # ADDR NETNS(optional: dial from inside) ; up to 15 s
  local addr=$1 ns=${2:-} i
  for i in $(seq 1 150); do
    if [ -n "$ns" ]; then
      ip netns exec "$ns" timeout 1 bash -c "exec 3<>/dev/tcp/$addr/22" 2>/dev/null && return 0
    else
      timeout 1 bash -c "exec 3<>/dev/tcp/$addr/22" 2>/dev/null && return 0
    fi
    sleep 0.1
  done
  die "sshd at $addr did not come up (see $D/hosts/*/launcher.log)"
}

host_pid1() { # NAME -> pid of the host's sshd listener (pid 1 of its pid namespace)
  local lp
  lp=$(cat "$D/hosts/$1/launcher.pid") || die "no host $1 in $D"
  # launcher: ip netns exec (execs) unshare -> forks bash (pid 1) -> exec sshd
  pgrep -P "$lp" | head -n1
}

teardown_run() { # RUN  (state under $REG/runs/RUN)
  local run=$1 st="$REG/runs/$1/state" kind val
  [ -f "$st" ] || return 0
  # processes first (their mount namespaces and overlays go with them)
  while read -r kind val; do
    if [ "$kind" = pid ] && [ -r "/proc/$val/cmdline" ] && tr '\0' ' ' < "/proc/$val/cmdline" | grep -q "selfhosted-testbed-$run"; then
      kill -KILL "$val" 2>/dev/null || true
    fi
  done < "$st"
  sleep 0.1
  while read -r kind val; do
    case "$kind" in
      netns) ip netns pids "$val" 2>/dev/null | while read -r p; do kill -KILL "$p" 2>/dev/null || true; done
             ip netns del "$val" 2>/dev/null || true ;;
    esac
  done < "$st"
  while read -r kind val; do
    case "$kind" in
      link) ip link del "$val" 2>/dev/null || true ;;
      route) ip route del unreachable "$val" 2>/dev/null || true ;;
    esac
  done < "$st"
  # namespaces are freed asynchronously; wait until the run's interfaces are gone
  local i
  for i in $(seq 1 50); do
    ip -o link show 2>/dev/null | grep -q "sht${run}" || break
    sleep 0.1
  done
  # The subnet last: another run may take it the moment it is free, and must not meet this
  # run's bridge address or unreachable route still in place ("RTNETLINK answers: File exists").
  while read -r kind val; do
    if [ "$kind" = subnet ]; then rm -rf "$REG/subnets/$val"; fi
  done < "$st"
  rm -rf "$REG/runs/$run"
}

# ---------- commands ----------
CMD=${1:-}; shift || true
D=""; COUNT=1; BASTION=0; AUTHORIZE=(); OWNER=$PPID; NAME=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) D=$2; shift 2 ;;
    --count) COUNT=$2; shift 2 ;;
    --bastion) BASTION=1; shift ;;
    --authorize) AUTHORIZE+=("$2"); shift 2 ;;
    --owner) OWNER=$2; shift 2 ;;
    --) shift; break ;;
    *) if [ -z "$NAME" ]; then NAME=$1; shift; else die "unexpected argument $1"; fi ;;
  esac
done

case "$CMD" in
up)
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces, mounts)"
  [ -n "$D" ] || die "--dir is required"
  [ "$COUNT" -ge 1 ] && [ "$COUNT" -le 200 ] || die "--count must be 1..200"
  "$0" cleanup >/dev/null 2>&1 || true
  mkdir -p "$D"; D=$(cd "$D" && pwd)
  [ -e "$D/inventory.json" ] && die "$D already holds a test bed (run down first)"
  RUN=$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mkdir -p "$REG/runs/$RUN"; STATE="$REG/runs/$RUN/state"
  echo "$OWNER" > "$REG/runs/$RUN/owner"; echo "$D" > "$REG/runs/$RUN/dir"; echo "$RUN" > "$D/run"
  trap 'if [ "${OK:-0}" != 1 ]; then teardown_run "$RUN"; fi' EXIT
  X=$(alloc_subnet); echo "subnet $X" >> "$STATE"
  mkdir -p "$D/client"
  ssh-keygen -q -t ed25519 -N '' -C "testbed-client" -f "$D/client/id_ed25519"
  make_shared_layer
  BR=sht${RUN}b; ip link add "$BR" type bridge; echo "link $BR" >> "$STATE"
  ip addr add "10.213.$X.1/24" dev "$BR"; ip link set "$BR" up
  NAMES=(); ADDRS=(); NETNS=()
  if [ "$BASTION" = 1 ]; then
    IBR=sht${RUN}i; ip link add "$IBR" type bridge; echo "link $IBR" >> "$STATE"; ip link set "$IBR" up
    # the inner subnet is reachable from the bastion only: never route it off this machine
    ip route replace unreachable "10.214.$X.0/24"; echo "route 10.214.$X.0/24" >> "$STATE"
    BADDR=10.213.$X.2
    add_host bastion "sht-$RUN-bastion" "$BR" "sht${RUN}v0" "$BADDR/24"
    ip link add "sht${RUN}w0" type veth peer name eth1 netns "sht-$RUN-bastion"
    echo "link sht${RUN}w0" >> "$STATE"
    ip link set "sht${RUN}w0" master "$IBR" up
    ip -n "sht-$RUN-bastion" addr add "10.214.$X.2/24" dev eth1
    ip -n "sht-$RUN-bastion" link set eth1 up
    launch_host bastion "sht-$RUN-bastion"; echo "pid $(cat "$D/hosts/bastion/launcher.pid")" >> "$STATE"
  fi
  for N in $(seq 1 "$COUNT"); do
    name=h$N; ns="sht-$RUN-$name"
    if [ "$BASTION" = 1 ]; then
      addr=10.214.$X.$((10 + N)); add_host "$name" "$ns" "$IBR" "sht${RUN}v$N" "$addr/24"
    else
      addr=10.213.$X.$((10 + N)); add_host "$name" "$ns" "$BR" "sht${RUN}v$N" "$addr/24"
    fi
    launch_host "$name" "$ns"; echo "pid $(cat "$D/hosts/$name/launcher.pid")" >> "$STATE"
    NAMES+=("$name"); ADDRS+=("$addr"); NETNS+=("$ns")
  done
  # wait for every sshd
  if [ "$BASTION" = 1 ]; then wait_ssh "$BADDR"; fi
  for i in "${!NAMES[@]}"; do
    if [ "$BASTION" = 1 ]; then wait_ssh "${ADDRS[$i]}" "sht-$RUN-bastion"; else wait_ssh "${ADDRS[$i]}"; fi
  done
  # inventory
  host_json() { # NAME ADDR NETNS
    local pub fp
    pub=$(cut -d' ' -f1,2 "$D/hosts/$1/ssh_host_ed25519_key.pub")
    fp=$(ssh-keygen -lf "$D/hosts/$1/ssh_host_ed25519_key.pub" | cut -d' ' -f2)
    echo "$2 $pub" >> "$D/known_hosts"
    printf '{"name":"%s","address":"%s","port":22,"host_key":"%s","fingerprint":"%s","netns":"%s","root":"%s"}' \
      "$1" "$2" "$pub" "$fp" "$3" "$D/hosts/$1"
  }
  : > "$D/known_hosts"
  {
    printf '{"run":"%s","dir":"%s","user":"core","nosudo_user":"guest","key":"%s","public_key":"%s","known_hosts":"%s","gateway":"10.213.%s.1",' \
      "$RUN" "$D" "$D/client/id_ed25519" "$(cut -d' ' -f1,2 "$D/client/id_ed25519.pub")" "$D/known_hosts" "$X"
    if [ "$BASTION" = 1 ]; then printf '"bastion":%s,' "$(host_json bastion "$BADDR" "sht-$RUN-bastion")"; else printf '"bastion":null,'; fi
    printf '"hosts":['
    for i in "${!NAMES[@]}"; do
      [ "$i" -gt 0 ] && printf ','
      host_json "${NAMES[$i]}" "${ADDRS[$i]}" "${NETNS[$i]}"
    done
    printf ']}\n'
  } > "$D/inventory.json.tmp"
  mv "$D/inventory.json.tmp" "$D/inventory.json"
  OK=1
  cat "$D/inventory.json"
  ;;
down)
  [ -n "$D" ] || die "--dir is required"
  [ -f "$D/run" ] || exit 0
  teardown_run "$(cat "$D/run")"
  rm -f "$D/run" "$D/inventory.json"
  ;;
exec)
  [ -n "$D" ] && [ -n "$NAME" ] || die "usage: exec --dir D NAME -- CMD..."
  P=$(host_pid1 "$NAME"); [ -n "$P" ] || die "host $NAME is not running"
  exec nsenter -t "$P" -m -u -p -n -- "$@"
  ;;
kill-sessions)
  [ -n "$D" ] && [ -n "$NAME" ] || die "usage: kill-sessions --dir D NAME"
  P=$(host_pid1 "$NAME"); [ -n "$P" ] || die "host $NAME is not running"
  descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
  VICTIMS=$(descendants "$P")
  for c in $VICTIMS; do kill -KILL "$c" 2>/dev/null || true; done
  ;;
rekey)
  [ -n "$D" ] && [ -n "$NAME" ] || die "usage: rekey --dir D NAME"
  P=$(host_pid1 "$NAME"); [ -n "$P" ] || die "host $NAME is not running"
  h="$D/hosts/$NAME"
  rm -f "$h/ssh_host_ed25519_key" "$h/ssh_host_ed25519_key.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$NAME" -f "$h/ssh_host_ed25519_key"
  nsenter -t "$P" -m -- sh -c 'umask 077; cat > /etc/ssh/ssh_host_ed25519_key.new && mv -f /etc/ssh/ssh_host_ed25519_key.new /etc/ssh/ssh_host_ed25519_key' \
    < "$h/ssh_host_ed25519_key"
  pub=$(cut -d' ' -f1,2 "$h/ssh_host_ed25519_key.pub")
  fp=$(ssh-keygen -lf "$h/ssh_host_ed25519_key.pub" | cut -d' ' -f2)
  addr=$(python3 - "$D/inventory.json" "$NAME" "$pub" "$fp" <<'PY'
import json, os, sys
path, name, pub, fp = sys.argv[1:]
inv = json.load(open(path))
host = next(h for h in inv["hosts"] + ([inv["bastion"]] if inv["bastion"] else []) if h["name"] == name)
host["host_key"], host["fingerprint"] = pub, fp
with open(path + ".tmp", "w") as f:
    json.dump(inv, f)
os.replace(path + ".tmp", path)
print(host["address"])
PY
)
  awk -v a="$addr" -v l="$addr $pub" '$1 == a {print l; next} {print}' "$D/known_hosts" > "$D/known_hosts.tmp"
  mv -f "$D/known_hosts.tmp" "$D/known_hosts"
  # sshd re-executes itself on SIGHUP and reads its host keys anew
  kill -HUP "$P"
  for _ in $(seq 1 100); do
    if nsenter -t "$P" -n -- ssh-keyscan -t ed25519 -T 2 "$addr" 2>/dev/null | grep -qF "${pub#* }"; then exit 0; fi
    sleep 0.1
  done
  die "$NAME: sshd does not show its new host key"
  ;;
cleanup)
  [ -d "$REG/runs" ] || exit 0
  for r in "$REG"/runs/*; do
    [ -d "$r" ] || continue
    o=$(cat "$r/owner" 2>/dev/null || echo 0)
    if [ "$o" = 0 ] || ! kill -0 "$o" 2>/dev/null; then
      echo "removing leftovers of run $(basename "$r")"
      teardown_run "$(basename "$r")"
    fi
  done
  ;;
*) sed -n '2,9p' "$0"; exit 2 ;;
esac
