#!/usr/bin/env bash
# Provisions one host of vagrant/Vagrantfile from the project's .deb (nothing is built here and
# nothing is downloaded: the box carries every dependency).
#   provision.sh ROLE ADDRESS CONTAINER_SUBNET CENTRAL
#   central : elasticdns-central (the packaged unit) on ADDRESS:8080, and an unbound on
#             ADDRESS:53 that stands for the internet (zone example.test)
#   host1/2 : Docker (bridge CONTAINER_SUBNET, containers under edns.slice) and elasticdns-agent
#             (the packaged units) with eBPF on edns.slice, Docker discovery and ContainerNet
#             (wireguard-go; the Docker network "containernet" on the leased subnet), syncing
#             from CENTRAL:8080 with this host's own token
# Idempotent. Test tokens only: the hosts live on a bridge that routes nowhere.
set -euo pipefail
role=$1 address=$2 subnet=${3:-} central=$4
etc=/etc/elasticdns
debs=/elasticdns/debs
blackholed=192.0.2.53 # what containers' resolv.conf names: reachable only via the eBPF redirect
token() { printf 'vagrant-%s-token-0123456789abcdef' "$1"; }

echo "$role" >/etc/hostname
hostname "$role"
grep -q " $role\$" /etc/hosts || echo "127.0.1.1 $role" >>/etc/hosts
# No route off this host but its own bridge; whatever stands for the internet is blackholed.
ip route replace blackhole "$blackholed/32"
ip route replace blackhole 0.0.0.0/0 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive
dpkg -i "$debs/elasticdns.deb" >/dev/null

case "$role" in
central)
  token admin >"$etc/admin.token"
  token agent >"$etc/agent.token"
  printf '%s host1\n%s host2\n' "$(token host1)" "$(token host2)" >"$etc/agent-tokens"
  chmod 600 "$etc"/*.token "$etc/agent-tokens"
  sed -i "s/^listen: .*/listen: $address:8080/" "$etc/central.yml"
  # ContainerNet: every server leases a /24 of 10.80.0.0/16 for its containers.
  grep -q '^containernet:' "$etc/central.yml" ||
    printf 'containernet:\n  cluster_cidr: 10.80.0.0/16\n  subnet_prefix: 24\n' >>"$etc/central.yml"
  cat >/etc/unbound/unbound.conf.d/elasticdns-test.conf <<EOF
server:
  interface: $address
  port: 53
  do-ip6: no
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
  # No root hints fetch, no DNSSEC trust anchor update: the host has no internet.
  rm -f /etc/unbound/unbound.conf.d/root-auto-trust-anchor-file.conf
  systemctl disable --now elasticdns-agent.socket elasticdns-agent.service >/dev/null 2>&1
  systemctl enable --now unbound elasticdns-central
  systemctl restart unbound elasticdns-central
  ;;
host1 | host2)
  gateway=${subnet%/*}
  # systemd mounts the bpffs on a machine, not in a system container: this host mounts it
  # the way a machine's fstab would, for the agent's pins.
  # (a service: systemd refuses mount units for API file systems).
  cat >/etc/systemd/system/bpffs.service <<EOF
[Unit]
Description=BPF file system at /sys/fs/bpf (the agent's pins)
DefaultDependencies=no
ConditionPathIsMountPoint=!/sys/fs/bpf
Before=elasticdns-agent.service
[Service]
Type=oneshot
ExecStart=/bin/mount -t bpf -o mode=0700 bpffs /sys/fs/bpf
[Install]
WantedBy=sysinit.target
EOF
  systemctl daemon-reload
  systemctl enable --now bpffs.service >/dev/null 2>&1
  token "$role" >"$etc/agent.token"
  chmod 600 "$etc/agent.token"
  sysctl -qw net.ipv4.ip_forward=1
  install -d /etc/docker
  # iptables off: containers reach their agent on the bridge and each other by routes, no NAT.
  cat >/etc/docker/daemon.json <<EOF
{"bip": "$subnet", "cgroup-parent": "edns.slice", "exec-opts": ["native.cgroupdriver=systemd"],
 "iptables": false, "ip6tables": false, "ip-masq": false, "userland-proxy": false}
EOF
  systemctl enable --now docker.service >/dev/null 2>&1
  systemctl restart docker
  # Routes to the other host's containers.
  if [ "$role" = host1 ]; then ip route replace 10.79.2.0/24 via 10.78.0.12; fi
  if [ "$role" = host2 ]; then ip route replace 10.79.1.0/24 via 10.78.0.11; fi
  printf 'nameserver %s\noptions timeout:2 attempts:1\n' "$blackholed" >"$etc/container-resolv.conf"
  # The first listen address is the eBPF redirect target: the containers' gateway (127.0.0.1
  # would be each container's own loopback).
  cat >"$etc/agent.yml" <<EOF
domain: cloud66.local
listen: ["$gateway:53", "$address:53", "127.0.0.1:53"]
server_name: $role
central:
  urls: ["http://$central:8080"]
  token_file: $etc/agent.token
upstreams: ["$central:53"]
ttl: 5s
sticky_window: 2s
state_dir: /var/lib/elasticdns
allow_networks: ["10.78.0.0/16", "10.79.0.0/16", "10.80.0.0/16", "127.0.0.0/8"]
bpf:
  enabled: true
  cgroup: edns.slice
  redirect: true
  pin_path: /sys/fs/bpf/elasticdns
docker:
  enabled: true
  socket: /var/run/docker.sock
containernet:               # the leased subnet on Docker network "containernet" (bridge cn-br0)
  enabled: true
  interface: cn0
  implementation: userspace # wireguard-go: a system container has no kernel WireGuard
  bridge: cn-br0
traffic:                    # this host's nginx, from the services' ports and traffic_matches
  enabled: true
EOF
  # nginx: the agent writes conf.d/elasticdns.conf; Debian's default site would claim port 80.
  rm -f /etc/nginx/sites-enabled/default
  systemctl enable --now nginx.service >/dev/null 2>&1
  systemctl reload nginx.service
  # The socket unit holds every listen address, so `systemctl restart` drops no query.
  install -d /etc/systemd/system/elasticdns-agent.socket.d
  cat >/etc/systemd/system/elasticdns-agent.socket.d/vagrant.conf <<EOF
[Socket]
ListenDatagram=$gateway:53
ListenStream=$gateway:53
ListenDatagram=$address:53
ListenStream=$address:53
EOF
  systemctl daemon-reload
  systemctl restart elasticdns-agent.socket elasticdns-agent.service
  # The test image: dig, getent, sh, the static musl client and python3 with the traffic
  # tests' backend, from this host's own files.
  if ! docker image inspect elasticdns-test:local >/dev/null 2>&1; then
    root=$(mktemp -d)
    libs() { # the shared libraries of $1 into the image (none for a static one)
      ldd "$1" 2>/dev/null | { grep -o '/[^ ]*' || true; } |
        while read -r lib; do install -D "$lib" "$root$lib"; done
    }
    for b in /usr/bin/dig /usr/bin/getent /bin/sh /bin/cat /bin/sleep /bin/grep /usr/bin/python3.11; do
      install -D "$b" "$root$b"
      libs "$b"
    done
    ln -s python3.11 "$root/usr/bin/python3"
    install -d "$root/usr/lib"
    cp -a /usr/lib/python3.11 "$root/usr/lib/"
    for m in /usr/lib/python3.11/lib-dynload/*.so; do libs "$m"; done
    install -D /etc/nsswitch.conf "$root/etc/nsswitch.conf"
    install -D -m 755 "$debs/musl_resolve" "$root/usr/bin/musl_resolve"
    install -D -m 755 "$debs/traffic_backend.py" "$root/usr/bin/traffic_backend.py"
    tar -C "$root" -c . | docker import - elasticdns-test:local >/dev/null
    rm -rf "$root"
  fi
  ;;
*)
  echo "provision: unknown role $role" >&2
  exit 2
  ;;
esac
echo "provision: $role ready"
