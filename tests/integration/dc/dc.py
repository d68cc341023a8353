"""A data centre on one machine, for end-to-end tests of ElasticDNS.

Hosts are network namespaces joined by a bridge that lives in a "world" namespace; nothing in
the world has a route off the machine. Each host has a container bridge with veths to its
containers, each a network namespace plus a cgroup v2 directory under the host's cgroup, named
by the container id (the agent's eBPF maps a cgroup to a container by its directory name).
Containers' resolv.conf names an address that is blackholed in every namespace, so their DNS
reaches an agent only through the eBPF redirect.

Everything created is recorded and removed by World.teardown(), which also checks that nothing
is left. Names include the PID, so two harnesses can run side by side.

The daemons (central, agents, unbound) are started and stopped by the shared harness
(tests/integration/harness.py); this module adds the namespaces and cgroups around them.
Python 3 with Debian's python3-dnspython (/usr/bin/python3).
"""

import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness  # noqa: E402  (tests/integration)

# --- addresses (RFC 1918 space, only ever on interfaces this harness creates) -------------
WORLD_NET = "10.77.0.0/24"
NETWORK = "10.77.0.0/16"  # everything the test uses: agents answer only this
PREFIX = 24
# The "internet" resolver named by every container's resolv.conf (RFC 5737 TEST-NET-1),
# blackholed in every namespace: only the eBPF redirect can make a query to it succeed.
BLACKHOLE_RESOLVER = "192.0.2.53"
UPSTREAM_ZONE = "example.test"
UPSTREAM_RECORDS = {"example.test": "10.77.0.80", "www.example.test": "10.77.0.81"}

HOSTS = {
    # name: (address on the world bridge, container subnet index or None)
    "central": ("10.77.0.2", None),
    "upstream": ("10.77.0.53", None),
    "host1": ("10.77.0.11", 1),
    "host2": ("10.77.0.12", 2),
}

# ContainerNet mode (World(containernet=True)): central leases each host's container subnet out
# of this cluster CIDR, inside NETWORK (so the agents answer it and it is only ever on
# interfaces of this harness) and apart from the default mode's 10.77.1-2.0/24.
CONTAINERNET_CIDR = "10.77.128.0/17"
CONTAINERNET_PREFIX = 24
WIREGUARD_PORT = 51820
WIREGUARD_SOCKETS = "/var/run/wireguard"  # wireguard-go's UAPI sockets (IF.sock)
# Hosts a test can add later with World.add_host (ContainerNet: a host that joins).
LATER_HOSTS = {"host3": ("10.77.0.13", 3)}
MAX_IFNAME = 15  # IFNAMSIZ - 1

TAG_PREFIX = "ednsdc"  # every name this harness creates starts with it, then the PID
DEFAULT_DEADLINE = harness.DEFAULT_DEADLINE  # seconds: bound for every "poll until"
poll = harness.poll

CLONE_NEWNET = 0x40000000  # <sched.h>
_libc = ctypes.CDLL(None, use_errno=True)


def log(msg):
    print(f"[dc {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cgroup2_mount():
    """The cgroup v2 mount point: /sys/fs/cgroup on pure v2 hosts, .../unified on hybrid ones."""
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 3 and fields[2] == "cgroup2":
                return fields[1]
    raise RuntimeError("no cgroup2 mount in /proc/mounts")


def _is_mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f if len(line.split()) > 1)


def run(args, check=True, timeout=30, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


@contextlib.contextmanager
def in_netns(name):
    """Runs the body with this thread in netns `name`; sockets made there stay there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
        yield
    finally:
        if _libc.setns(own, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(own)
        os.close(target)


def netns_socket(ns, family=socket.AF_INET, kind=socket.SOCK_DGRAM):
    with in_netns(ns):
        return socket.socket(family, kind)


# --- a DNS client (the tests' own poller; the scenarios use dig/getent/musl) ----------------
class DnsClient:
    """A UDP socket in one namespace that asks one server, with a per-query timeout. A late
    reply to an earlier query (another ID) is skipped."""

    def __init__(self, ns, server, port=53):
        self.sock = netns_socket(ns)
        self.sock.setblocking(False)  # dnspython waits with its own deadline
        self.server = (server, port)

    def close(self):
        self.sock.close()

    def ask(self, name, qtype=dns.rdatatype.A, timeout=0.5):
        """(rcode name, the answer section's rrsets); TimeoutError when no reply in time."""
        q = dns.message.make_query(name, qtype)
        expiration = time.time() + timeout
        try:
            dns.query.send_udp(self.sock, q, self.server, expiration)
            while True:
                r, _ = dns.query.receive_udp(self.sock, self.server, expiration,
                                             ignore_unexpected=True)
                if q.is_response(r):
                    return dns.rcode.to_text(r.rcode()), r.answer
        except dns.exception.Timeout as e:
            raise TimeoutError(f"no answer from {self.server[0]} for {name}") from e

    def addresses(self, name, timeout=0.5):
        """Sorted A addresses of `name`, or None on an error rcode."""
        rcode, answer = self.ask(name, dns.rdatatype.A, timeout)
        if rcode != "NOERROR":
            return None
        return sorted(rr.address for rrset in answer if rrset.rdtype == dns.rdatatype.A
                      for rr in rrset)


# --- the world ------------------------------------------------------------------------------
class Container:
    def __init__(self, world, host, cid, address, ns, cgroup, host_network=False):
        self.world = world
        self.host = host
        self.id = cid
        self.address = address
        self.ns = ns
        self.cgroup = cgroup
        self.host_network = host_network

    def command(self, args):
        """argv that runs `args` as a process of this container (its cgroup, its netns)."""
        procs = os.path.join(self.cgroup, "cgroup.procs")
        return ["sh", "-c", f'echo $$ > {procs} && exec ip netns exec {self.ns} "$@"', "sh"] + list(
            args
        )

    def run(self, args, timeout=10, env=None, check=False):
        e = dict(os.environ)
        if env:
            e.update(env)
        return run(self.command(args), check=check, timeout=timeout, env=e)


class World:
    def __init__(self, keep_logs_on_failure=True, resolv_agent=False, containernet=False):
        # resolv_agent: containers' resolv.conf names their host's agent instead of the
        # blackholed address (a debugging aid for runs without the eBPF redirect).
        # containernet: the hosts' container subnets are joined by ContainerNet (the agents'
        # WireGuard mesh), not by the harness: no static routes between them, no address on the
        # container bridges (each agent puts its gateway there), containers in the subnet
        # central leased (set_subnet, once central's topology has it).
        self.resolv_agent = resolv_agent
        self.containernet = containernet
        self.hosts = dict(HOSTS)  # name: (world address, subnet index or None)
        self.subnets = {}  # ContainerNet: host -> the subnet central leased it ("A.B.C.D/N")
        self.wg_interfaces = {}  # ContainerNet: host -> its WireGuard interface name
        self.tag = f"{TAG_PREFIX}{os.getpid()}"
        self.ws = harness.Workspace(prefix=f"{self.tag}-")  # tmp dir and processes
        self.tmp = self.ws.dir
        self.cg_mount = cgroup2_mount()
        self.cg_root = os.path.join(self.cg_mount, self.tag)
        self.netns = []  # created order; removed in reverse
        self.cgroups = []  # created order; removed in reverse (children first)
        self.etc_netns = []
        self.pins = []
        self.bpffs = None
        self.containers = {}
        self.host_cgroups = {}
        self.keep_logs_on_failure = keep_logs_on_failure
        self.up = False

    # -- naming
    def ns(self, short):
        return f"{self.tag}-{short}"

    # -- primitives
    def _add_netns(self, short, resolv=True, nameserver=BLACKHOLE_RESOLVER):
        name = self.ns(short)
        run(["ip", "netns", "add", name])
        self.netns.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        run(["ip", "-n", name, "route", "add", "blackhole", f"{BLACKHOLE_RESOLVER}/32"])
        if resolv:
            d = f"/etc/netns/{name}"
            os.makedirs(d, exist_ok=True)
            self.etc_netns.append(d)
            with open(os.path.join(d, "resolv.conf"), "w") as f:
                f.write(f"nameserver {nameserver}\noptions timeout:2 attempts:1\n")
        return name

    def _add_cgroup(self, path):
        os.mkdir(path)
        self.cgroups.append(path)
        return path

    def ip(self, ns, *args):
        return run(["ip", "-n", ns] + list(args))

    # -- build
    def build(self):
        sweep_stale()
        log(f"building data centre {self.tag} (cgroup2 at {self.cg_mount}, tmp {self.tmp})")
        self.up = True
        self._add_cgroup(self.cg_root)
        world = self._add_netns("world", resolv=False)
        self.world_ns = world
        self.ip(world, "link", "add", "br0", "type", "bridge")
        self.ip(world, "link", "set", "br0", "up")
        self.host_ns = {}
        for host, (addr, subnet) in HOSTS.items():
            self._add_host(host, addr, subnet)
        # Routes between the container subnets, through the hosts' world addresses (ContainerNet
        # mode: none, the agents route them through WireGuard).
        if not self.containernet:
            for host, (_, _) in HOSTS.items():
                for other, (oaddr, osub) in HOSTS.items():
                    if other != host and osub is not None:
                        self.ip(self.host_ns[host], "route", "add", f"10.77.{osub}.0/24", "via", oaddr)
        return self

    def _add_host(self, host, addr, subnet):
        world = self.world_ns
        ns = self._add_netns(host, nameserver=addr if self.resolv_agent else BLACKHOLE_RESOLVER)
        self.host_ns[host] = ns
        self.ip(world, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.ip(world, "link", "set", host, "master", "br0", "up")
        self.ip(ns, "addr", "add", f"{addr}/{PREFIX}", "dev", "eth0")
        self.ip(ns, "link", "set", "eth0", "up")
        run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        if subnet is not None:
            self.ip(ns, "link", "add", "cbr0", "type", "bridge")
            if not self.containernet:
                self.ip(ns, "addr", "add", f"{self.gateway(host)}/{PREFIX}", "dev", "cbr0")
            self.ip(ns, "link", "set", "cbr0", "up")
            self.host_cgroups[host] = self._add_cgroup(os.path.join(self.cg_root, host))
        return ns

    def add_host(self, host):
        """ContainerNet: a host of LATER_HOSTS joins the world (netns on the world bridge,
        container bridge without address, cgroup); no route to anyone's containers."""
        if not self.containernet:
            raise RuntimeError("add_host is for ContainerNet mode")
        addr, subnet = LATER_HOSTS[host]
        self.hosts[host] = (addr, subnet)
        return self._add_host(host, addr, subnet)

    # -- ContainerNet
    def wg_interface(self, host):
        """The WireGuard interface name of `host`'s agent: unique on the machine (the UAPI
        socket /var/run/wireguard/IF.sock is shared across network namespaces), so it carries
        this world's tag; recorded for the teardown's checks."""
        name = f"{self.tag}{host[0]}{host[-1]}"
        if len(name) > MAX_IFNAME:
            name = f"cn{os.getpid() % 100000}{host[0]}{host[-1]}"
        self.wg_interfaces[host] = name
        return name

    def set_subnet(self, host, subnet):
        """ContainerNet: the subnet central leased `host` (from its topology)."""
        self.subnets[host] = subnet

    def subnet_prefix(self, host):
        if self.containernet:
            return int(self.subnets[host].split("/")[1])
        return PREFIX

    def subnet_address(self, host, n):
        """The n-th address of `host`'s container subnet (1 is the gateway)."""
        if not self.containernet:
            return f"10.77.{self.hosts[host][1]}.{n}"
        base = self.subnets.get(host)
        if base is None:
            raise RuntimeError(f"{host} has no ContainerNet subnet yet (set_subnet)")
        a, b, c, d = (int(x) for x in base.split("/")[0].split("."))
        v = ((a << 24) | (b << 16) | (c << 8) | d) + n
        return ".".join(str((v >> sh) & 255) for sh in (24, 16, 8, 0))

    def gateway(self, host):
        if self.containernet:
            return self.subnet_address(host, 1)
        return f"10.77.{HOSTS[host][1]}.1"

    def host_address(self, host):
        return self.hosts[host][0]

    def add_container(self, host, cid, address=None, host_network=False):
        """A container on `host`: netns + veth on the host's bridge + cgroup named `cid`.
        With host_network, only the cgroup: its processes run in the host's netns."""
        cgroup = self._add_cgroup(os.path.join(self.host_cgroups[host], cid))
        if host_network:
            c = Container(self, host, cid, self.host_address(host), self.host_ns[host], cgroup, True)
        else:
            idx = len([c for c in self.containers.values() if c.host == host and not c.host_network])
            short = f"{host[0]}{host[-1]}c{idx}"
            ns = self._add_netns(short, nameserver=self.gateway(host) if self.resolv_agent else BLACKHOLE_RESOLVER)
            hns = self.host_ns[host]
            veth = f"v{idx}"
            self.ip(hns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.ip(hns, "link", "set", veth, "master", "cbr0", "up")
            if address is None:  # ContainerNet: the next address of the leased subnet
                address = self.subnet_address(host, 10 + idx)
            self.ip(ns, "addr", "add", f"{address}/{self.subnet_prefix(host)}", "dev", "eth0")
            self.ip(ns, "link", "set", "eth0", "up")
            self.ip(ns, "route", "add", NETWORK, "via", self.gateway(host))
            c = Container(self, host, cid, address, ns, cgroup)
        self.containers[cid] = c
        return c

    @property
    def procs(self):
        return self.ws.procs

    @staticmethod
    def prefix(ns=None, cgroup=None):
        """The command prefix that runs a process in netns `ns` and in `cgroup`."""
        argv = []
        if cgroup:
            procs = os.path.join(cgroup, "cgroup.procs")
            argv = ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh"]
        if ns:
            # nsenter, not `ip netns exec`: the latter remounts /sys, which would hide the
            # cgroup2 mount (under /sys/fs/cgroup) from an agent that attaches eBPF there.
            argv += ["nsenter", f"--net=/run/netns/{ns}"]
        return argv

    def spawn(self, name, args, ns=None, cgroup=None, env=None):
        """Starts a long-running process (in netns `ns`), stdout/stderr to files in tmp."""
        return self.ws.spawn(name, args, self.prefix(ns, cgroup), env)

    def add_pin(self, name):
        """A pin directory for one agent, on a bpffs instance private to this world (mounted
        in tmp; unmounting it at teardown releases everything pinned there)."""
        if self.bpffs is None:
            path = os.path.join(self.tmp, "bpffs")
            os.makedirs(path)
            run(["mount", "-t", "bpf", "bpf", path])
            self.bpffs = path
        pin = os.path.join(self.bpffs, name)
        self.pins.append(pin)
        return pin

    # -- the internet
    def start_upstream(self, unbound="unbound"):
        ns = self.host_ns["upstream"]
        addr = self.host_address("upstream")
        d = os.path.join(self.tmp, "unbound")
        os.makedirs(d, exist_ok=True)
        lines = [
            "server:",
            f"  interface: {addr}",
            "  port: 53",
            "  do-daemonize: no",
            '  username: ""',
            '  chroot: ""',
            f'  directory: "{d}"',
            '  pidfile: ""',
            "  use-syslog: no",
            "  logfile: \"\"",
            "  do-ip6: no",
            "  verbosity: 1",
            "  access-control: 0.0.0.0/0 refuse",
            f"  access-control: {NETWORK} allow",
            '  module-config: "iterator"',
            # Everything outside the test zone is answered locally (NXDOMAIN): unbound never
            # tries to reach a root server.
            '  local-zone: "." static',
            f'  local-zone: "{UPSTREAM_ZONE}." static',
        ]
        for name, a in UPSTREAM_RECORDS.items():
            lines.append(f'  local-data: "{name}. 300 IN A {a}"')
        lines += ["remote-control:", "  control-enable: no"]
        conf = os.path.join(d, "unbound.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        run([unbound_checkconf(unbound), conf])
        proc = self.spawn("unbound", [unbound, "-d", "-c", conf], ns=ns)
        client = DnsClient(ns, addr)
        try:
            poll(
                "unbound answers",
                lambda: client.addresses(f"www.{UPSTREAM_ZONE}", 0.2)
                == [UPSTREAM_RECORDS[f"www.{UPSTREAM_ZONE}"]],
            )
        finally:
            client.close()
        log(f"upstream unbound pid {proc.pid} on {addr}:53")
        self.upstream = proc
        return proc

    # -- teardown
    def _kill_cgroup(self, path):
        kill = os.path.join(path, "cgroup.kill")
        procs = os.path.join(path, "cgroup.procs")
        if not os.path.exists(procs):
            return
        if os.path.exists(kill):
            with open(kill, "w") as f:
                f.write("1")
        else:
            with open(procs) as f:
                for pid in f.read().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)

        def empty():
            with open(procs) as f:
                return f.read().strip() == ""

        poll(f"{path} empty", empty, 5)

    def teardown(self, failed=False):
        errors = self.ws.stop_all()
        if failed and self.keep_logs_on_failure:
            self.dump_logs()
        errors += self._stop_wireguard()
        for path in reversed(self.cgroups):
            try:
                if os.path.isdir(path):
                    self._kill_cgroup(path)
                    os.rmdir(path)
            except Exception as e:  # noqa: BLE001
                errors.append(f"cgroup {path}: {e}")
        for name in reversed(self.netns):
            r = run(["ip", "netns", "del", name], check=False)
            if r.returncode != 0:
                errors.append(f"netns {name}: {r.stderr.strip()}")
        for d in self.etc_netns:
            shutil.rmtree(d, ignore_errors=True)
        for pin in self.pins:
            shutil.rmtree(pin, ignore_errors=True)
        if self.bpffs:
            r = run(["umount", self.bpffs], check=False)
            if r.returncode != 0:
                errors.append(f"umount {self.bpffs}: {r.stderr.strip()}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        errors += self.leftovers()
        self.up = False
        if errors:
            raise RuntimeError("teardown left things behind: " + "; ".join(errors))
        log(f"torn down {self.tag}: nothing left")

    def leftovers(self):
        """Everything of this world still present on the machine (should be nothing)."""
        left = []
        names = run(["ip", "netns", "list"]).stdout.split()
        left += [f"netns {n}" for n in names if n.startswith(self.tag + "-")]
        if os.path.exists(self.cg_root):
            left.append(f"cgroup {self.cg_root}")
        for d in self.etc_netns:
            if os.path.exists(d):
                left.append(f"dir {d}")
        for pin in self.pins:
            if os.path.exists(pin):
                left.append(f"pin {pin}")
        if self.bpffs and _is_mounted(self.bpffs):
            left.append(f"bpffs {self.bpffs}")
        for p in self.procs:
            if p.running():
                left.append(f"process {p.name} pid {p.pid}")
        if os.path.exists(self.tmp):
            left.append(f"dir {self.tmp}")
        left += self._wireguard_leftovers()
        return left

    # ContainerNet: what the agents' wireguard-go leave behind if they are not stopped.
    def _stop_wireguard(self):
        """After the agents stopped: every WireGuard interface of this world must be gone with
        its wireguard-go process and UAPI socket. Whatever is left is removed here (processes
        killed by PID) and reported."""
        errors = []
        for host, ifname in self.wg_interfaces.items():
            for pid in wireguard_go_pids([ifname]):
                errors.append(f"wireguard-go for {ifname} still running (pid {pid}) after its agent stopped")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            ns = self.host_ns.get(host)
            if ns and ns in self.netns:
                r = run(["ip", "-n", ns, "link", "show", ifname], check=False)
                if r.returncode == 0:
                    errors.append(f"interface {ifname} still in {ns} after its agent stopped")
                    run(["ip", "-n", ns, "link", "del", ifname], check=False)
        for ifname in self.wg_interfaces.values():
            with contextlib.suppress(TimeoutError):
                poll(f"wireguard-go for {ifname} gone", lambda: not wireguard_go_pids([ifname]), 5)
            sock = os.path.join(WIREGUARD_SOCKETS, f"{ifname}.sock")
            if os.path.exists(sock):
                errors.append(f"UAPI socket {sock} left after its agent stopped")
                with contextlib.suppress(OSError):
                    os.unlink(sock)
        return errors

    def _wireguard_leftovers(self):
        names = list(self.wg_interfaces.values())
        left = [f"wireguard-go pid {pid}" for pid in wireguard_go_pids(names)]
        for ifname in names:
            if os.path.exists(os.path.join(WIREGUARD_SOCKETS, f"{ifname}.sock")):
                left.append(f"UAPI socket {ifname}.sock")
            if run(["ip", "link", "show", ifname], check=False).returncode == 0:
                left.append(f"interface {ifname} in the root namespace")
        return left

    def dump_logs(self):
        for name, kind, tail in self.ws.logs(tail=4000):
            print(f"----- {name} {kind} (last 4000 chars) -----\n{tail}", file=sys.stderr)


def wireguard_go_pids(interfaces):
    """PIDs of wireguard-go processes serving one of `interfaces` (read from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == "wireguard-go" and any(
                a in interfaces for a in argv[1:]):
            pids.append(int(entry))
    return pids


def _alive(pid):
    """Whether process `pid` exists and is not a zombie (a killed harness whose parent died is
    left a zombie where PID 1 does not reap: it is gone all the same)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _stale_pid(name):
    """The PID in a harness name (ednsdc<PID>...) if that process is gone, else None."""
    m = re.match(rf"^{TAG_PREFIX}(\d+)", name)
    if m and not _alive(m.group(1)):
        return int(m.group(1))
    return None


def sweep_stale():
    """Removes what a harness killed without its teardown (e.g. by SIGKILL) left behind: only
    names carrying the PID of a process that no longer exists."""
    swept = []
    for ns in run(["ip", "netns", "list"]).stdout.split():
        if _stale_pid(ns) is not None:
            for pid in run(["ip", "netns", "pids", ns], check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            run(["ip", "netns", "del", ns], check=False)
            swept.append(f"netns {ns}")
    cg = cgroup2_mount()
    for name in os.listdir(cg):
        if _stale_pid(name) is not None:
            for root, dirs, _ in sorted(os.walk(os.path.join(cg, name)), key=lambda t: -len(t[0])):
                kill = os.path.join(root, "cgroup.kill")
                if os.path.exists(kill):
                    with open(kill, "w") as f:
                        f.write("1")
            for root, dirs, _ in sorted(os.walk(os.path.join(cg, name)), key=lambda t: -len(t[0])):
                with contextlib.suppress(OSError):
                    poll(f"{root} empty", lambda: open(os.path.join(root, "cgroup.procs")).read() == "", 5)
                    os.rmdir(root)
            swept.append(f"cgroup {name}")
    # ContainerNet: wireguard-go processes and UAPI sockets of WireGuard interfaces named
    # ednsdc<PID>... (World.wg_interface) whose harness is gone.
    if os.path.isdir(WIREGUARD_SOCKETS):
        for name in os.listdir(WIREGUARD_SOCKETS):
            ifname = name[:-len(".sock")] if name.endswith(".sock") else None
            if ifname and _stale_pid(ifname) is not None:
                for pid in wireguard_go_pids([ifname]):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(WIREGUARD_SOCKETS, name))
                swept.append(f"wireguard {ifname}")
    if os.path.isdir("/etc/netns"):
        for name in os.listdir("/etc/netns"):
            if _stale_pid(name) is not None:
                shutil.rmtree(os.path.join("/etc/netns", name), ignore_errors=True)
                swept.append(f"/etc/netns/{name}")
    tmp = tempfile.gettempdir()
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if len(line.split()) > 1]
    for m in mounts:
        if m.startswith(tmp + "/") and _stale_pid(os.path.basename(os.path.dirname(m))) is not None:
            run(["umount", m], check=False)
            swept.append(f"mount {m}")
    for name in os.listdir(tmp):
        if _stale_pid(name) is not None:
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
    if swept:
        log("swept leftovers of dead harness runs: " + ", ".join(swept))
    return swept


def exit_on_signals():
    """SIGTERM/SIGHUP (e.g. a ctest timeout) raise SystemExit, so teardown still runs."""

    def handler(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def unbound_checkconf(unbound):
    d = os.path.dirname(shutil.which(unbound) or unbound)
    c = os.path.join(d, "unbound-checkconf")
    return c if os.path.exists(c) else "unbound-checkconf"
