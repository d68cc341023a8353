#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of ElasticDNS from Debian 12's packages.
# Idempotent: packages already installed are left alone. Needs root (or sudo).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang llvm clang-format
  # eBPF
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  # libraries
  libboost-dev libboost-program-options-dev libldns-dev libspdlog-dev libfmt-dev
  libyaml-cpp-dev libgtest-dev libgmock-dev googletest nlohmann-json3-dev libsqlite3-dev
  libsystemd-dev libssl-dev
  # test and demo tools: real DNS clients, a real resolver, netns, musl; the Python tests'
  # DNS library
  dnsutils ldnsutils unbound iproute2 iptables musl-tools curl procps psmisc
  knot-dnsutils
  python3 python3-dnspython util-linux
  # the dashboard's browser test: headless chromium driven by selenium
  chromium chromium-driver python3-selenium
  # packaging and operations tests: dpkg-shlibdeps, systemd-analyze, a Debian system
  # container (systemd-nspawn over debootstrap), a real dockerd and a busybox image for it
  dpkg-dev systemd systemd-container debootstrap docker.io busybox-static
  # traffic distribution: nginx with its stream module (TCP/UDP), openssl for certificates,
  # wrk for its benchmark
  nginx libnginx-mod-stream openssl wrk
  # ContainerNet: userspace WireGuard where the kernel has no module, and `wg` (also
  # pkg.docker_containernet, with docker.io and busybox-static above)
  wireguard-go wireguard-tools
  # ContainerNet's test and benchmark: the underlay capture, ping with -M do, iperf3
  tcpdump iputils-ping iperf3
  # the Vagrant test (vagrant/): Vagrant with its lxc provider (no libvirt: recommends are off)
  vagrant vagrant-lxc lxc openssh-client sudo
  # central replicas over etcd (integration.central.etcd): the server and etcdctl; policy-rc.d
  # below keeps its service off, the tests start their own members
  etcd-server etcd-client
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends keeps the machine small; policy-rc.d keeps unbound's service off.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
