#!/usr/bin/env bash
# The data-centre scenarios of tests/integration/dc on the Vagrant hosts, with real Docker
# containers registered by the agents' Docker discovery (labels elasticdns.service/.version).
# Run by vagrant/run.sh inside the test's network namespace, after `vagrant up`; by hand:
#   vagrant ssh-config >ssh_config && ELASTICDNS_SSH_CONFIG=ssh_config ./scenarios.sh
# Prints PASS/FAIL per check; exits 1 if any check failed.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
CENTRAL=10.78.0.2
D=cloud66.local
fails=0
checks=0
ssh_config=${ELASTICDNS_SSH_CONFIG:?ELASTICDNS_SSH_CONFIG: the output of vagrant ssh-config}
ctl_dir=$(mktemp -d)
trap 'for m in central host1 host2; do ssh -F "$ssh_config" -o ControlPath="$ctl_dir/%n" -O exit "$m" 2>/dev/null; done; rm -rf "$ctl_dir"' EXIT

vm() { # vm MACHINE ARGS...: vm-helper.sh as root on a host (one SSH connection per host, reused)
  local m=$1
  shift
  ssh -F "$ssh_config" -o ControlMaster=auto -o ControlPath="$ctl_dir/%n" -o ControlPersist=600 \
    -o LogLevel=ERROR "$m" "sudo /elasticdns/vagrant/vm-helper.sh $(printf '%q ' "$@")" </dev/null | tr -d '\r'
}
check() { # check NAME WANT GOT
  checks=$((checks + 1))
  if [ "$2" = "$3" ]; then echo "PASS $1"; else
    echo "FAIL $1: want '$2', got '$3'"
    fails=$((fails + 1))
  fi
}
eventually() { # eventually NAME WANT CMD...: retry for up to 20 s
  local name=$1 want=$2 got
  shift 2
  for _ in $(seq 40); do
    got=$("$@")
    [ "$got" = "$want" ] && break
    sleep 0.5
  done
  check "$name" "$want" "$got"
}
declare -A ID IP HOST
container() { # container NAME HOST SERVICE VERSION [NETWORK [HTTP_PORT]]: docker run, labelled
  local out   # for discovery (vm-helper.sh container)
  out=$(vm "$2" container "$1" "$3" "$4" "${5:-bridge}" "${6:-}")
  ID[$1]=${out%% *} IP[$1]=${out##* } HOST[$1]=$2
}
ask() { vm "${HOST[$1]}" ask "$1" "$2" "$3"; }
ips() { printf '%s\n' "$@" | sort | paste -sd' '; }
registered() { # registered NAME: the container's state in central ("" when absent)
  vm central api GET /v1/topology | python3 -c "
import json, sys
t = json.load(sys.stdin)
print(next((c.get('state', 'running') for c in t['topology']['containers'] if c['id'] == '${ID[$1]}'), ''))"
}

for h in host1 host2; do
  vm central api PUT "/v1/servers/$h" "{\"address\":\"10.78.0.1${h#host}\"}" >/dev/null
done
for s in web api; do
  vm central api PUT "/v1/services/$s" '{"dns_behaviour":"versioned","load_balancing":"roundrobin"}' >/dev/null
done

# --- rolling deploy: v1 and v2 of web and api on both hosts, registered by Docker discovery
for v in v1 v2; do
  for h in host1 host2; do
    container "web-$v-$h" "$h" web "$v"
    container "api-$v-$h" "$h" api "$v"
  done
done
for c in web-v1-host1 api-v2-host2; do
  eventually "discovery: $c registered by its host's agent" running registered "$c"
done
# The agents started before Docker made edns.slice (with the first container): each waited
# for the cgroup and attached its eBPF when it appeared.
for h in host1 host2; do
  eventually "$h: the agent attached its eBPF once edns.slice appeared" yes \
    vm "$h" agent-log 'ebpf: bpf\.cgroup .*/edns\.slice appeared'
done
API_V1=$(ips "${IP[api-v1-host1]}" "${IP[api-v1-host2]}")
API_V2=$(ips "${IP[api-v2-host1]}" "${IP[api-v2-host2]}")
eventually "agents have the topology" "$API_V2" ask web-v2-host1 dig-udp "api.$D"
eventually "agents have the topology (host2)" "$API_V2" ask web-v2-host2 dig-udp "api.$D"
for c in web-v1-host1 web-v1-host2 web-v2-host1 web-v2-host2; do
  want=$API_V1
  [[ $c == web-v2-* ]] && want=$API_V2
  for k in dig-udp dig-tcp glibc-udp glibc-tcp musl-udp; do
    check "deploy: $c asks api via $k" "$want" "$(ask "$c" "$k" "api.$D")"
  done
done
check "resolv.conf untouched: the blackholed address" "nameserver 192.0.2.53" \
  "$(vm host1 cat-resolv web-v1-host1)"

# --- roundrobin: the whole list, rotated from one answer to the next
whole=yes firsts=""
for _ in 1 2 3 4; do
  out=$(vm host1 ttl web-v2-host1 "api.$D")
  [ "$(awk '{print $1}' <<<"$out" | sort | paste -sd' ')" = "$API_V2" ] || whole=no
  firsts+="$(head -n 1 <<<"$out" | awk '{print $1}')"$'\n'
done
check "roundrobin: every answer is the whole list" yes "$whole"
check "roundrobin: the first address rotates over both" 2 "$(sort -u <<<"$firsts" | grep -c .)"

# --- draining: docker stop → draining → left out of answers
container api-v2b-host1 host1 api v2
eventually "draining: a third v2 api joins" "$(ips "${IP[api-v2-host1]}" "${IP[api-v2-host2]}" "${IP[api-v2b-host1]}")" \
  ask web-v2-host1 dig-udp "api.$D"
vm host1 stop api-v2b-host1
eventually "draining: docker stop marks it draining" draining registered api-v2b-host1
eventually "draining: left out of answers" "$API_V2" ask web-v2-host1 dig-udp "api.$D"

# --- the deploy completes: the v1 api containers go away
vm host1 stop api-v1-host1
vm host2 stop api-v1-host2
for c in web-v1-host1 web-v1-host2; do
  eventually "deploy complete: $c gets v2 api" "$API_V2" ask "$c" dig-udp "api.$D"
done

# --- policies, with real containers on both hosts
vm central api PUT /v1/services/cache '{"dns_behaviour":"non-versioned"}' >/dev/null
container cache-v1 host1 cache v1
container cache-v2 host2 cache v2
eventually "non-versioned: v1 web gets the latest cache" "${IP[cache-v2]}" ask web-v1-host1 dig-udp "cache.$D"
vm central api PUT /v1/services/near '{"load_balancing":"closest"}' >/dev/null
vm central api PUT /v1/services/far '{"load_balancing":"closest"}' >/dev/null
container near-1 host1 near v1
container near-2 host2 near v1
container far-1 host2 far v1
eventually "closest: host1 caller gets host1's" "${IP[near-1]}" ask web-v1-host1 dig-udp "near.$D"
eventually "closest: host2 caller gets host2's" "${IP[near-2]}" ask web-v1-host2 dig-udp "near.$D"
eventually "closest: none on the caller's host -> all" "${IP[far-1]}" ask web-v1-host1 dig-udp "far.$D"
vm central api PUT /v1/services/st '{"load_balancing":"sticky"}' >/dev/null
for i in 1 2 3; do container "st-$i" host1 st v1; done
st_count() { vm host1 ttl web-v1-host1 "st.$D" | wc -l | tr -d ' '; }
eventually "sticky: one address" "1" st_count
first=$(vm host1 ttl web-v1-host1 "st.$D" | awk '{print $1}')
check "sticky: same address within the window" "$first" "$(vm host1 ttl web-v1-host1 "st.$D" | awk '{print $1}')"
changed=no
for _ in $(seq 8); do
  sleep 2.5 # the window (sticky_window: 2s) runs out
  [ "$(vm host1 ttl web-v1-host1 "st.$D" | awk '{print $1}')" != "$first" ] && changed=yes && break
done
check "sticky: can change after the window" yes "$changed"

# --- cross-host: a container reaches the address it was given on the other host
check "cross-host: web-v2-host1 reaches api-v2-host2 (${IP[api-v2-host2]})" ok \
  "$(vm host1 reach web-v2-host1 "${IP[api-v2-host2]}")"

# --- ContainerNet: each agent makes the Docker network "containernet" on the subnet central
# leased its host; containers on it reach each other across the hosts over wireguard-go (no
# other route to 10.80.0.0/16 exists), and their DNS is redirected like the others'
cn_ready() { case "$(vm "$1" network containernet)" in 10.80.*/24) echo yes ;; *) echo no ;; esac; }
for h in host1 host2; do
  eventually "containernet: $h's agent made the Docker network on its lease" yes cn_ready "$h"
done
vm central api PUT /v1/services/cn '{}' >/dev/null
container cn-1 host1 cn v1 containernet
container cn-2 host2 cn v1 containernet
CN=$(ips "${IP[cn-1]}" "${IP[cn-2]}")
eventually "containernet: DNS gives both hosts' containers" "$CN" ask web-v2-host1 dig-udp "cn.$D"
check "containernet: a container on it asks through the redirect" "$CN" "$(ask cn-2 dig-udp "cn.$D")"
check "containernet: host1 routes ${IP[cn-2]} through cn0" cn0 "$(vm host1 route-dev "${IP[cn-2]}")"
check "containernet: cn-1 (host1) reaches cn-2 (host2)" ok "$(vm host1 reach cn-1 "${IP[cn-2]}")"
check "containernet: cn-2 (host2) reaches cn-1 (host1)" ok "$(vm host2 reach cn-2 "${IP[cn-1]}")"
check "containernet: host1's peer has a WireGuard handshake" 1 "$(vm host1 wg-handshakes cn0)"

# --- traffic: every host's nginx, configured by its agent from the service's ports and
# traffic_matches, sends external HTTP and HTTPS to the service's containers on both hosts
vm central api PUT /v1/services/shop '{"ports":["8080:80:443"],"traffic_matches":["shop.example.test"]}' >/dev/null
container shop-1 host1 shop v1 containernet 8080
container shop-2 host2 shop v1 containernet 8080
backends() { # backends URL N [CURL ARGS]: the backends that answered N requests, sorted
  local url=$1 n=$2
  shift 2
  for _ in $(seq "$n"); do curl -s -m 3 "$@" "$url" | awk '{print $1}'; done | sort -u | paste -sd' '
}
for h in 11 12; do
  eventually "traffic: http on 10.78.0.$h reaches shop's containers on both hosts" "shop-1 shop-2" \
    backends "http://10.78.0.$h/" 8 -H "Host: shop.example.test"
  check "traffic: https on 10.78.0.$h (self-signed) reaches them" "shop-1 shop-2" \
    "$(backends https://shop.example.test/ 8 -k --resolve "shop.example.test:443:10.78.0.$h")"
  check "traffic: another name on 10.78.0.$h gets 404" 404 \
    "$(curl -s -o /dev/null -m 3 -w '%{http_code}' -H 'Host: other.example.test' "http://10.78.0.$h/")"
done

# --- datasources and the upstream (unbound on central stands for the internet)
vm central api PUT /v1/datasources/mysql/main '{"primary":true,"addresses":["10.78.0.101"]}' >/dev/null
vm central api PUT /v1/datasources/mysql/spare '{"primary":false,"addresses":["10.78.0.102"]}' >/dev/null
eventually "datasources: main.mysql" "10.78.0.101" ask web-v2-host2 dig-udp "main.mysql.$D"
check "datasources: spare.mysql" "10.78.0.102" "$(ask web-v2-host2 dig-udp "spare.mysql.$D")"
check "datasources: mysql is the primary group" "10.78.0.101" "$(ask web-v2-host2 dig-udp "mysql.$D")"
for k in dig-udp dig-tcp glibc-udp musl-udp; do
  check "upstream: www.example.test via $k" "10.78.0.81" "$(ask web-v1-host1 "$k" www.example.test)"
done

# --- systemctl restart and an in-place package upgrade during a query stream: no query fails
read -r n failed <<<"$(vm host1 stream web-v2-host1 "api.$D" 150 restart)"
check "restart: 3 x systemctl restart elasticdns-agent during $n queries, failed" 0 "$failed"
read -r n failed <<<"$(vm host2 stream web-v2-host2 "api.$D" 150 upgrade)"
check "upgrade: dpkg -i of the new .deb during $n queries, failed" 0 "$failed"
check "upgrade: the new version is installed" "$(vm host2 deb-version /elasticdns/debs/elasticdns-new.deb)" \
  "$(vm host2 installed-version)"
check "upgrade: the edited agent.yml is kept" "server_name: host2" "$(vm host2 grep-config server_name)"
eventually "upgrade: the upgraded agent answers" "$API_V2" ask web-v2-host2 dig-udp "api.$D"

# --- central down (serve-stale), agent restarted from disk, central back with changes
vm central unit elasticdns-central stop >/dev/null
check "central down: agents keep answering" "$API_V2" "$(ask web-v2-host1 dig-udp "api.$D")"
vm host1 unit elasticdns-agent restart >/dev/null
eventually "central down: restarted agent answers from disk" "$API_V2" ask web-v2-host1 dig-udp "api.$D"
vm central unit elasticdns-central start >/dev/null
container api-v2c-host2 host2 api v2
want=$(ips "${IP[api-v2-host1]}" "${IP[api-v2-host2]}" "${IP[api-v2c-host2]}")
eventually "central back: host1 catches up" "$want" ask web-v2-host1 dig-udp "api.$D"
eventually "central back: host2 catches up" "$want" ask web-v2-host2 dig-udp "api.$D"

echo "== $checks checks, $fails failed"
[ "$fails" -eq 0 ]
