#!/usr/bin/env bash
# The data-centre scenarios of tests/integration/dc on the Vagrant VMs, with Docker containers.
# Run from vagrant/ after `vagrant up`:  ./scenarios.sh
# Prints PASS/FAIL per check; exits 1 if any check failed.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
CENTRAL=10.78.0.2
D=cloud66.local
fails=0

vm() { # vm MACHINE ARGS...: vm-helper.sh as root on a VM
  local m=$1
  shift
  vagrant ssh "$m" -c "sudo /elasticdns/vagrant/vm-helper.sh $(printf '%q ' "$@")" 2>/dev/null | tr -d '\r'
}
check() { # check NAME WANT GOT
  if [ "$2" = "$3" ]; then echo "PASS $1"; else
    echo "FAIL $1: want '$2', got '$3'"
    fails=$((fails + 1))
  fi
}
eventually() { # eventually NAME WANT CMD...: retry for up to 15 s
  local name=$1 want=$2 got
  shift 2
  for _ in $(seq 30); do
    got=$("$@")
    [ "$got" = "$want" ] && break
    sleep 0.5
  done
  check "$name" "$want" "$got"
}
declare -A ID IP HOST
container() { # container NAME HOST SERVICE VERSION [host]: start it and register it with central
  local out
  out=$(vm "$2" container "$1" "${5:-bridge}")
  ID[$1]=${out%% *} IP[$1]=${out##* } HOST[$1]=$2
  vm central api PUT "/v1/containers/${ID[$1]}" \
    "{\"service\":\"$3\",\"version\":\"$4\",\"server\":\"$2\",\"address\":\"${IP[$1]}\"}" >/dev/null
}
ask() { vm "${HOST[$1]}" ask "$1" "$2" "$3"; }
ips() { printf '%s\n' "$@" | sort | paste -sd' '; }
record() { # record SERVICE ID VERSION SERVER ADDRESS: a topology-only container
  vm central api PUT "/v1/containers/$2" \
    "{\"service\":\"$1\",\"version\":\"$3\",\"server\":\"$4\",\"address\":\"$5\"}" >/dev/null
}

for h in host1 host2; do
  vm central api PUT "/v1/servers/$h" "{\"address\":\"10.78.0.1${h#host}\"}" >/dev/null
done
for s in web api; do
  vm central api PUT "/v1/services/$s" '{"dns_behaviour":"versioned","load_balancing":"roundrobin"}' >/dev/null
done

# --- rolling deploy
for v in v1 v2; do
  for h in host1 host2; do
    container "web-$v-$h" "$h" web "$v"
    container "api-$v-$h" "$h" api "$v"
  done
done
API_V1=$(ips "${IP[api-v1-host1]}" "${IP[api-v1-host2]}")
API_V2=$(ips "${IP[api-v2-host1]}" "${IP[api-v2-host2]}")
eventually "agents have the topology" "$API_V2" ask web-v2-host1 dig-udp "api.$D"
for c in web-v1-host1 web-v1-host2 web-v2-host1 web-v2-host2; do
  want=$API_V1
  [[ $c == web-v2-* ]] && want=$API_V2
  for k in dig-udp dig-tcp glibc-udp glibc-tcp musl-udp; do
    check "deploy: $c asks api via $k" "$want" "$(ask "$c" "$k" "api.$D")"
  done
done
# --- host network: two containers with the host's address, told apart by their socket
container hostnet-v1 host1 web v1 host
container hostnet-v2 host1 web v2 host
eventually "host network: v2 container gets v2 api" "$API_V2" ask hostnet-v2 dig-udp "api.$D"
for k in dig-udp dig-tcp glibc-udp musl-udp; do
  check "host network: v1 container gets v1 api via $k" "$API_V1" "$(ask hostnet-v1 "$k" "api.$D")"
  check "host network: v2 container gets v2 api via $k" "$API_V2" "$(ask hostnet-v2 "$k" "api.$D")"
done

vm central api DELETE "/v1/containers/${ID[api-v1-host1]}" >/dev/null
vm central api DELETE "/v1/containers/${ID[api-v1-host2]}" >/dev/null
for c in web-v1-host1 web-v1-host2; do
  eventually "deploy complete: $c gets v2 api" "$API_V2" ask "$c" dig-udp "api.$D"
done

# --- policies
vm central api PUT /v1/services/cache '{"dns_behaviour":"non-versioned"}' >/dev/null
record cache cache-v1 v1 host1 10.79.1.240
record cache cache-v2 v2 host2 10.79.2.240
eventually "non-versioned: v1 web gets the latest cache" "10.79.2.240" ask web-v1-host1 dig-udp "cache.$D"
vm central api PUT /v1/services/near '{"load_balancing":"closest"}' >/dev/null
vm central api PUT /v1/services/far '{"load_balancing":"closest"}' >/dev/null
record near near-1 v1 host1 10.79.1.241
record near near-2 v1 host2 10.79.2.241
record far far-1 v1 host2 10.79.2.242
eventually "closest: host1 caller gets host1's" "10.79.1.241" ask web-v1-host1 dig-udp "near.$D"
check "closest: host2 caller gets host2's" "10.79.2.241" "$(ask web-v1-host2 dig-udp "near.$D")"
check "closest: none on the caller's host -> all" "10.79.2.242" "$(ask web-v1-host1 dig-udp "far.$D")"
vm central api PUT /v1/services/st '{"load_balancing":"sticky"}' >/dev/null
for i in 1 2 3; do record st "st-$i" v1 host1 "10.79.1.25$i"; done
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

# --- datasources and the upstream
vm central api PUT /v1/datasources/mysql/main '{"primary":true,"addresses":["10.78.0.101"]}' >/dev/null
vm central api PUT /v1/datasources/mysql/spare '{"primary":false,"addresses":["10.78.0.102"]}' >/dev/null
eventually "datasources: main.mysql" "10.78.0.101" ask web-v2-host2 dig-udp "main.mysql.$D"
check "datasources: spare.mysql" "10.78.0.102" "$(ask web-v2-host2 dig-udp "spare.mysql.$D")"
check "datasources: mysql is the primary group" "10.78.0.101" "$(ask web-v2-host2 dig-udp "mysql.$D")"
for k in dig-udp dig-tcp glibc-udp musl-udp; do
  check "upstream: www.example.test via $k" "10.78.0.81" "$(ask web-v1-host1 "$k" www.example.test)"
done

# --- central down, agent restarted from disk, central back with changes made meanwhile
vm central unit elasticdns-central stop >/dev/null
check "central down: agents keep answering" "$API_V2" "$(ask web-v2-host1 dig-udp "api.$D")"
vm host1 unit elasticdns-agent restart >/dev/null
eventually "central down: restarted agent answers from disk" "$API_V2" ask web-v2-host1 dig-udp "api.$D"
vm host1 partition on "$CENTRAL" >/dev/null
vm host2 partition on "$CENTRAL" >/dev/null
vm central unit elasticdns-central start >/dev/null
sleep 1
record api api-new v2 host2 10.79.2.250
vm host1 partition off "$CENTRAL" >/dev/null
vm host2 partition off "$CENTRAL" >/dev/null
want=$(ips "${IP[api-v2-host1]}" "${IP[api-v2-host2]}" 10.79.2.250)
eventually "central back: host1 catches up" "$want" ask web-v2-host1 dig-udp "api.$D"
eventually "central back: host2 catches up" "$want" ask web-v2-host2 dig-udp "api.$D"

echo "== $fails failed"
[ "$fails" -eq 0 ]
