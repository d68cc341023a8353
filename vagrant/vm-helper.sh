#!/usr/bin/env bash
# Runs inside a VM (as root, through `vagrant ssh`); the steps scenarios.sh drives.
#   vm-helper.sh container NAME [host]      start a test container; prints "ID ADDRESS"
#   vm-helper.sh ask NAME KIND FQDN         IPv4 answers (sorted) of FQDN asked from container NAME
#                                           KIND: dig-udp dig-tcp glibc-udp glibc-tcp musl-udp
#   vm-helper.sh ttl NAME FQDN              "ADDRESS TTL" lines of a dig from container NAME
#   vm-helper.sh api METHOD PATH [JSON]     a request to central's REST API (admin token)
#   vm-helper.sh unit NAME start|stop|restart
#   vm-helper.sh partition on|off CENTRAL   block / unblock this VM's traffic to central
set -euo pipefail
etc=/etc/elasticdns
cmd=$1
shift
case "$cmd" in
container)
  name=$1 net=${2:-bridge}
  docker rm -f "$name" >/dev/null 2>&1 || true
  args=(-d --name "$name" --pull never -v "$etc/container-resolv.conf:/etc/resolv.conf:ro")
  [ "$net" = host ] && args+=(--network host)
  id=$(docker run "${args[@]}" elasticdns-test:local /bin/sleep infinity)
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
ttl)
  docker exec "$1" dig +time=2 +tries=1 +noall +answer "$2" A | awk '$4 == "A" {print $5, $2}'
  ;;
api)
  method=$1 path=$2 body=${3:-}
  central=$(awk -F'"' '/^  urls:/ {print $2}' "$etc/agent.yaml" 2>/dev/null || true)
  [ -n "$central" ] || central="http://$(hostname -I | tr ' ' '\n' | grep '^10\.78\.' | head -n 1):8080"
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
