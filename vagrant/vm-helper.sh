#!/usr/bin/env bash
# Runs inside a host (as root, over SSH with `vagrant ssh-config`); the steps scenarios.sh drives.
#   vm-helper.sh container NAME SERVICE VERSION [NETWORK [HTTP_PORT]]
#                                           start a test container labelled for Docker
#                                           discovery (SERVICE "-": no labels) on NETWORK
#                                           (default bridge), serving HTTP on HTTP_PORT with
#                                           tests/integration/dc/traffic_backend.py when given;
#                                           prints "ID ADDRESS"
#   vm-helper.sh network NAME               the subnet of Docker network NAME ("" when absent)
#   vm-helper.sh agent-log REGEX            "yes" when a line of the agent's journal matches
#   vm-helper.sh route-dev ADDRESS          the interface this host routes ADDRESS through
#   vm-helper.sh wg-handshakes IF           how many WireGuard peers of IF have a handshake
#   vm-helper.sh stop NAME                  docker stop (discovery marks it draining)
#   vm-helper.sh stream NAME FQDN N ACTION  N queries (dig, UDP, 20 ms apart) from container NAME
#                                           while ACTION runs on the host (restart: 3 restarts of
#                                           elasticdns-agent; upgrade: dpkg -i of the new .deb);
#                                           prints "QUERIES FAILED"
#   vm-helper.sh ask NAME KIND FQDN         IPv4 answers (sorted) of FQDN asked from container NAME
#                                           KIND: dig-udp dig-tcp glibc-udp glibc-tcp musl-udp
#   vm-helper.sh reach NAME ADDRESS         "ok" when a TCP SYN from container NAME to ADDRESS:9
#                                           comes back (RST): the path between them works
#   vm-helper.sh cat-resolv NAME | deb-version DEB | installed-version | grep-config KEY
#   vm-helper.sh ttl NAME FQDN              "ADDRESS TTL" lines of a dig from container NAME
#   vm-helper.sh api METHOD PATH [JSON]     a request to central's REST API (admin token; on central)
#   vm-helper.sh unit NAME start|stop|restart
#   vm-helper.sh partition on|off CENTRAL   block / unblock this VM's traffic to central
set -euo pipefail
etc=/etc/elasticdns
cmd=$1
shift
case "$cmd" in
container)
  name=$1 service=$2 version=$3 net=${4:-bridge} http=${5:-}
  docker rm -f "$name" >/dev/null 2>&1 || true
  args=(-d --name "$name" --pull never -v "$etc/container-resolv.conf:/etc/resolv.conf:ro")
  [ "$service" = - ] || args+=(--label "elasticdns.service=$service" --label "elasticdns.version=$version")
  [ "$net" = bridge ] || args+=(--network "$net")
  run=(/bin/sleep infinity)
  [ -z "$http" ] || run=(/usr/bin/python3 /usr/bin/traffic_backend.py --id "$name" --http "$http")
  id=$(docker run "${args[@]}" elasticdns-test:local "${run[@]}")
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$id")
  [ -n "$ip" ] || ip=$(hostname -I | tr ' ' '\n' | grep '^10\.78\.' | head -n 1)
  echo "$id $ip"
  ;;
ask)
  name=$1 kind=$2 fqdn=$3
  case "$kind" in
  dig-udp) docker exec "$name" dig +time=2 +tries=1 +short "$fqdn" A ;;
  dig-tcp) docker exec "$name" dig +tcp +time=2 +tries=1 +short "$fqdn" A ;;
  glibc-udp) docker exec "$name" getent ahosts "$fqdn" | awk '{print $1}' ;;
  glibc-tcp) docker exec -e RES_OPTIONS=use-vc "$name" getent ahosts "$fqdn" | awk '{print $1}' ;;
  musl-udp) docker exec "$name" musl_resolve "$fqdn" ;;
  *) echo "unknown kind $kind" >&2 && exit 2 ;;
  esac | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' | sort -u | paste -sd' ' || true
  ;;
stop)
  docker stop -t 1 "$1" >/dev/null
  ;;
stream)
  name=$1 fqdn=$2 n=$3 action=$4
  docker exec "$name" sh -c "i=0; f=0; while [ \$i -lt $n ]; do
      dig +time=2 +tries=1 +short $fqdn A | grep -q '^[0-9]' || f=\$((f + 1))
      i=\$((i + 1)); sleep 0.02; done; echo \$i \$f" >/tmp/stream.out &
  loop=$!
  sleep 1
  case "$action" in
  restart) for _ in 1 2 3; do systemctl restart elasticdns-agent; sleep 1; done ;;
  upgrade) DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold /elasticdns/debs/elasticdns-new.deb >/dev/null ;;
  *) echo "unknown action $action" >&2 && exit 2 ;;
  esac
  wait "$loop"
  cat /tmp/stream.out
  ;;
reach) # reach NAME ADDRESS: a TCP connection from container NAME to ADDRESS:9 is answered
  # (refused counts: the packet crossed and came back); prints ok or the error
  out=$(docker exec "$1" dig +tcp +time=2 +tries=1 -p 9 "@$2" reach.test 2>&1 || true)
  if grep -q 'connection refused\|communications error.*refused' <<<"$out"; then echo ok; else echo "$out" | tail -1; fi
  ;;
agent-log) # agent-log REGEX: "yes" when a line of the agent's journal matches
  if journalctl -u elasticdns-agent --no-pager -o cat | grep -qE "$1"; then echo yes; else echo no; fi
  ;;
network)
  docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' "$1" 2>/dev/null || true
  ;;
route-dev) ip -o route get "$1" | grep -o 'dev [^ ]*' | cut -d' ' -f2 ;;
wg-handshakes) wg show "$1" latest-handshakes | awk '$2 > 0' | wc -l ;;
cat-resolv) docker exec "$1" cat /etc/resolv.conf | head -n 1 ;;
deb-version) dpkg-deb -f "$1" Version ;;
installed-version) dpkg-query -W -f '${Version}' elasticdns ;;
grep-config) grep "^$1:" "$etc/agent.yml" ;;
ttl)
  docker exec "$1" dig +time=2 +tries=1 +noall +answer "$2" A | awk '$4 == "A" {print $5, $2}'
  ;;
api)
  method=$1 path=$2 body=${3:-}
  central="http://$(hostname -I | tr ' ' '\n' | grep '^10\.78\.' | head -n 1):8080" # run on central
  args=(-sS -f -X "$method" -H "Authorization: Bearer $(cat "$etc/admin.token")")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  curl "${args[@]}" "$central$path"
  ;;
unit)
  systemctl "$2" "$1"
  ;;
partition)
  if [ "$1" = on ]; then ip route replace prohibit "$2/32"; else ip route del prohibit "$2/32"; fi
  ;;
*)
  echo "vm-helper: unknown command $cmd" >&2
  exit 2
  ;;
esac
