#!/bin/bash
# The load balancer in front of the lane's apiservers: HAProxy (Debian) in TCP mode on a test-bed host
# of its own, with TCP health checks every second — what an AWS NLB or a DigitalOcean load balancer does
# for typhoon's controllers.
#   balancer.sh up   --dir D --host NAME --backend ADDR [--backend ADDR ...] [--port 6443] [--check tcp|readyz]
#   balancer.sh down --dir D --host NAME
#   balancer.sh show --dir D --host NAME     (each backend's state, from HAProxy's stats socket)
# --check readyz: an HTTPS `GET /readyz` health check (200 only) instead of the TCP connect check.
# Listens on the host's address, port 6443 (the apiservers' port); idempotent; down leaves nothing (the
# process lives in the host's PID namespace, so hosts.sh down ends it too).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOSTS=${SELFHOSTED_TESTBED_SCRIPT:-$HERE/../testbed/hosts.sh}
die() { echo "balancer.sh: $*" >&2; exit 1; }
CMD=${1:-}; shift || true
D=""; NAME=""; PORT=6443; BACKENDS=(); CHECK=tcp
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) D=$2; shift 2 ;;
    --host) NAME=$2; shift 2 ;;
    --backend) BACKENDS+=("$2"); shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --check) CHECK=$2; shift 2; case "$CHECK" in tcp|readyz) ;; *) die "--check is tcp or readyz" ;; esac ;;
    *) die "unexpected argument $1" ;;
  esac
done
[ -n "$D" ] && [ -n "$NAME" ] || die "--dir and --host are required"
ADDR=$(jq -r --arg n "$NAME" '.hosts[] | select(.name == $n) | .address' "$D/inventory.json")
[ -n "$ADDR" ] || die "no host $NAME in $D/inventory.json"
hexec() { "$HOSTS" exec --dir "$D" "$NAME" -- "$@"; }
PID=/run/selfhosted-lane-haproxy.pid
SOCK=/run/selfhosted-lane-haproxy.sock

case "$CMD" in
up)
  command -v haproxy >/dev/null || die "haproxy is missing (apt-get install haproxy)"
  [ "${#BACKENDS[@]}" -gt 0 ] || die "at least one --backend"
  if hexec sh -c "kill -0 \$(cat $PID 2>/dev/null) 2>/dev/null"; then echo "$ADDR:$PORT"; exit 0; fi
  cfg="global
  daemon
  maxconn 2000
  pidfile $PID
  stats socket $SOCK mode 600 level admin
defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  retries 2
  option redispatch
frontend apiservers
  bind $ADDR:$PORT
  default_backend controllers
backend controllers
  balance roundrobin
  default-server inter 1s fall 2 rise 2"
  server_check="check"
  if [ "$CHECK" = readyz ]; then
    cfg="$cfg
  option httpchk
  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host kubernetes
  http-check expect status 200"
    server_check="check check-ssl verify none"
  fi
  for b in "${BACKENDS[@]}"; do cfg="$cfg
  server $b $b:$PORT $server_check"; done
  printf '%s\n' "$cfg" | hexec sh -c 'cat > /etc/selfhosted-lane-haproxy.cfg'
  hexec haproxy -c -q -f /etc/selfhosted-lane-haproxy.cfg || die "haproxy refused its configuration"
  hexec haproxy -f /etc/selfhosted-lane-haproxy.cfg
  echo "$ADDR:$PORT" ;;
down)
  hexec sh -c "p=\$(cat $PID 2>/dev/null) && kill \$p 2>/dev/null; rm -f $PID $SOCK" || true ;;
show)
  hexec python3 -c "
import socket
s = socket.socket(socket.AF_UNIX); s.connect('$SOCK'); s.sendall(b'show servers state\n')
out = b''
while True:
    chunk = s.recv(65536)
    if not chunk: break
    out += chunk
print(out.decode())" ;;
*) die "usage: balancer.sh up|down|show --dir D --host NAME [--backend ADDR ...]" ;;
esac
