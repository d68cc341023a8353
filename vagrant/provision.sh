#!/usr/bin/env bash
# Provisions one VM of vagrant/Vagrantfile:  provision.sh ROLE ADDRESS CONTAINER_BRIDGE CENTRAL
#   central : elasticdns-central on ADDRESS:8080 and an unbound on ADDRESS:53 (zone example.test)
#   host1/2 : Docker (bridge CONTAINER_BRIDGE, containers under edns.slice) and elasticdns-agent
#             with its eBPF on /sys/fs/cgroup/edns.slice, syncing from CENTRAL:8080
# Idempotent. Test tokens only: the VMs live on a private network with no forwarding.
set -euo pipefail
role=$1 address=$2 bridge=${3:-} central=$4
src=/elasticdns
etc=/etc/elasticdns
blackholed=192.0.2.53 # what containers' resolv.conf names: reachable only via the eBPF redirect

bash "$src/scripts/install-deps.sh"
install -d -m 700 "$etc"
echo "vagrant-admin-token-0123456789abcdef" >"$etc/admin.token"
echo "vagrant-agent-token-0123456789abcdef" >"$etc/agent.token"
chmod 600 "$etc"/*.token
ip route replace blackhole "$blackholed/32"

# Binaries: built on the host and synced to /elasticdns-bin, else built here.
if [ -x /elasticdns-bin/elasticdns-central ] && [ -x /elasticdns-bin/elasticdns-agent ]; then
  install -m 755 /elasticdns-bin/elasticdns-central /elasticdns-bin/elasticdns-agent /usr/local/bin/
elif [ ! -x /usr/local/bin/elasticdns-agent ]; then
  cmake -S "$src" -B /var/tmp/elasticdns-build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build /var/tmp/elasticdns-build --target elasticdns-central elasticdns-agent
  find /var/tmp/elasticdns-build \( -name elasticdns-central -o -name elasticdns-agent \) -type f \
    -perm -u+x -exec install -m 755 {} /usr/local/bin/ \;
fi

run_unit() { # run_unit NAME COMMAND...: a systemd service (stopped and started by the scenarios)
  local name=$1
  shift
  printf '[Unit]\nDescription=%s (ElasticDNS VM tests)\n[Service]\nExecStart=%s\n' \
    "$name" "$*" >"/etc/systemd/system/$name.service"
  systemctl daemon-reload
  systemctl restart "$name"
}

case "$role" in
central)
  cat >"$etc/unbound-test.conf" <<EOF
server:
  interface: $address
  port: 53
  do-daemonize: no
  username: ""
  chroot: ""
  pidfile: ""
  do-ip6: no
  access-control: 0.0.0.0/0 refuse
  access-control: 10.78.0.0/16 allow
  access-control: 10.79.0.0/16 allow
  module-config: "iterator"
  local-zone: "." static
  local-zone: "example.test." static
  local-data: "example.test. 300 IN A 10.78.0.80"
  local-data: "www.example.test. 300 IN A 10.78.0.81"
remote-control:
  control-enable: no
EOF
  systemctl disable --now unbound 2>/dev/null || true
  run_unit elasticdns-test-unbound /usr/sbin/unbound -d -c "$etc/unbound-test.conf"
  install -d /var/lib/elasticdns-central
  run_unit elasticdns-central /usr/local/bin/elasticdns-central --listen "$address:8080" \
    --data-dir /var/lib/elasticdns-central --admin-token-file "$etc/admin.token" \
    --agent-token-file "$etc/agent.token"
  ;;
host1 | host2)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io
  install -d /etc/docker
  cat >/etc/docker/daemon.json <<EOF
{"bip": "$bridge", "cgroup-parent": "edns.slice", "iptables": true}
EOF
  systemctl restart docker
  # Routes to the other host's containers.
  if [ "$role" = host1 ]; then ip route replace 10.79.2.0/24 via 10.78.0.12; fi
  if [ "$role" = host2 ]; then ip route replace 10.79.1.0/24 via 10.78.0.11; fi
  # The containers' resolv.conf: the blackholed address.
  printf 'nameserver %s\noptions timeout:2 attempts:1\n' "$blackholed" >"$etc/container-resolv.conf"
  systemctl start edns.slice 2>/dev/null || true
  cat >"$etc/agent.yaml" <<EOF
domain: cloud66.local
listen: ["${bridge%/*}:53", "$address:53"]
server_name: $role
central:
  urls: ["http://$central:8080"]
  token_file: $etc/agent.token
upstreams: ["$central:53"]
ttl: 5s
sticky_window: 2s
state_dir: /var/lib/elasticdns-agent
allow_networks: ["10.78.0.0/16", "10.79.0.0/16", "127.0.0.0/8"]
bpf:
  enabled: true
  cgroup: edns.slice   # relative to the cgroup2 mount
  redirect: true
  pin_path: /sys/fs/bpf/elasticdns
EOF
  install -d /var/lib/elasticdns-agent
  run_unit elasticdns-agent /usr/local/bin/elasticdns-agent --config "$etc/agent.yaml"
  # The test image: dig, getent, sh and a static musl client, from this VM's own binaries.
  if ! docker image inspect elasticdns-test:local >/dev/null 2>&1; then
    root=$(mktemp -d)
    for b in /usr/bin/dig /usr/bin/getent /bin/sh /bin/cat /bin/sleep; do
      install -D "$b" "$root$b"
      ldd "$b" | grep -o '/[^ ]*' | while read -r lib; do install -D "$lib" "$root$lib"; done
    done
    install -D /etc/nsswitch.conf "$root/etc/nsswitch.conf"
    musl-gcc -static -O2 -o "$root/usr/bin/musl_resolve" "$src/tests/integration/dc/musl_resolve.c"
    tar -C "$root" -c . | docker import - elasticdns-test:local
    rm -rf "$root"
  fi
  ;;
*)
  echo "provision: unknown role $role" >&2
  exit 2
  ;;
esac
echo "provision: $role ready"
