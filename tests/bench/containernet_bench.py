#!/usr/bin/python3
"""ContainerNet benchmark, on the data centre of tests/integration/dc in ContainerNet mode
(real central, a real agent per host running real wireguard-go, the userspace WireGuard, over
TUN in the host's network namespace).

  containernet_bench.py --central BIN --agent BIN [--changes 60] [--servers 1000]
                        [--duration 5] [--round-trips 2000] [--wireguard-go wireguard-go]

Prints:
  1. convergence: --changes changes made through central's API (servers without an agent
     joining with a key, rotating it, leaving) -> the time until every agent's wireguard-go
     peer set (read from its UAPI socket) reflects the change: p50/p99/max. Target p99 < 1 s.
  2. TCP throughput (iperf3, one stream, --duration s) and TCP round-trip latency (64-byte
     request/response, --round-trips) container -> container across hosts, through
     ContainerNet and through the bare underlay (static routes, no WireGuard) in the same run,
     twice each, alternating.
  3. reconcile cost at --servers servers in the topology: the time from the last write of a
     bulk join until every agent has every peer, then single key rotations at that size (time
     until reflected, and the agent's plus its wireguard-go's CPU time per change), against
     the same at the small size of part 1.
The machine may be shared: the load average is printed with each figure.
"""

import argparse
import json
import os
import socket
import statistics
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "dc"))
import containernet as cn  # noqa: E402
import dc  # noqa: E402

PLAIN = {"host1": "10.77.3", "host2": "10.77.4"}  # the bare underlay's container subnets (/24)
IPERF_PORT = 5201
RR_PORT = 7000
FAKE_BASE = 100  # fake servers' addresses: 10.77.0.<FAKE_BASE + n> (n < 100), else 10.77.1xx.x
ECHO = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", %d)); s.listen(4); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while (d := c.recv(65536)):
        c.sendall(d)
    c.close()
"""


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def summary(values, unit="ms", scale=1000.0):
    return (f"n={len(values)} p50 {pct(values, 50) * scale:.1f} {unit}, p99 "
            f"{pct(values, 99) * scale:.1f} {unit}, max {max(values) * scale:.1f} {unit}")


def fake_address(n):
    if n < 100:
        return f"10.77.0.{FAKE_BASE + n}"
    return f"10.77.{100 + n // 250}.{1 + n % 250}"  # 10.77.100-127.x: outside the cluster CIDR


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


class Changes:
    """Servers without an agent, written at central with the admin token; each change's
    reflection is polled on every agent's UAPI socket."""

    def __init__(self, mesh):
        self.mesh = mesh
        self.keys = {}  # fake server -> its current public key

    def interfaces(self):
        return [a.interface for a in self.mesh.agents.values()]

    def cpu(self):
        """(CPU seconds of the agents, of their wireguard-go) so far."""
        return (cpu_seconds([a.proc.pid for a in self.mesh.agents.values()]),
                cpu_seconds(dc.wireguard_go_pids(self.interfaces())))

    def join(self, name, n):
        key = cn.random_public_key()
        self.mesh.central.put("servers", name, {"address": fake_address(n)})
        self.mesh.central.put("servers", f"{name}/wireguard",
                              {"public_key": key, "endpoint": f"{fake_address(n)}:{dc.WIREGUARD_PORT}"})
        self.keys[name] = key
        return lambda peers: key in peers

    def rotate(self, name, n):
        old, key = self.keys[name], cn.random_public_key()
        self.mesh.central.put("servers", f"{name}/wireguard",
                              {"public_key": key, "endpoint": f"{fake_address(n)}:{dc.WIREGUARD_PORT}"})
        self.keys[name] = key
        return lambda peers: key in peers and old not in peers

    def leave(self, name):
        old = self.keys.pop(name)
        self.mesh.central.delete("servers", name)
        return lambda peers: old not in peers

    def reflected(self, check, t0, deadline=10.0, interval=0.002):
        """Seconds from t0 until check(peers) holds on every agent (polled every `interval`)."""
        pending = set(self.interfaces())
        end = t0 + deadline
        while pending:
            for i in list(pending):
                if check(cn.uapi_peers(i)):
                    pending.discard(i)
            if pending:
                if time.monotonic() > end:
                    raise TimeoutError(f"not reflected on {sorted(pending)} after {deadline}s")
                time.sleep(interval)
        return time.monotonic() - t0


def convergence(mesh, count):
    ch = Changes(mesh)
    times = {"join": [], "rotate": [], "leave": []}
    cpu0 = ch.cpu()
    third = max(1, count // 3)
    names = [f"cnb{n}" for n in range(third)]
    for n, name in enumerate(names):
        check = ch.join(name, n)
        times["join"].append(ch.reflected(check, time.monotonic()))
    for n, name in enumerate(names):
        check = ch.rotate(name, n)
        times["rotate"].append(ch.reflected(check, time.monotonic()))
    for name in names:
        check = ch.leave(name)
        times["leave"].append(ch.reflected(check, time.monotonic()))
    cpu = [b - a for a, b in zip(cpu0, ch.cpu())]
    every = [t for v in times.values() for t in v]
    print(f"1. convergence over {len(every)} changes (central ack -> every one of "
          f"{len(mesh.agents)} agents' wireguard-go peer set reflects it; load {load()}):")
    for kind, v in times.items():
        print(f"   {kind:7s} {summary(v)}")
    print(f"   all     {summary(every)}  (target p99 < 1000 ms: "
          f"{'met' if pct(every, 99) < 1.0 else 'NOT met'})")
    per = [c / len(every) / len(mesh.agents) for c in cpu]
    print(f"   CPU per change and host: agent {per[0] * 1000:.2f} ms, its wireguard-go "
          f"{per[1] * 1000:.2f} ms (the latter includes answering this poller's UAPI gets)")
    return every, per


def plain_pair(world):
    """Two containers on host1 and host2 in subnets joined only by static routes through the
    hosts' world addresses: the bare underlay, no WireGuard."""
    cs = {}
    for host, net in PLAIN.items():
        hns = world.host_ns[host]
        world.ip(hns, "link", "add", "cbr9", "type", "bridge")
        world.ip(hns, "addr", "add", f"{net}.1/24", "dev", "cbr9")
        world.ip(hns, "link", "set", "cbr9", "up")
        ns = world._add_netns(f"{host[0]}{host[-1]}plain")
        world.ip(hns, "link", "add", "p0", "type", "veth", "peer", "name", "eth0", "netns", ns)
        world.ip(hns, "link", "set", "p0", "master", "cbr9", "up")
        world.ip(ns, "addr", "add", f"{net}.10/24", "dev", "eth0")
        world.ip(ns, "link", "set", "eth0", "up")
        world.ip(ns, "route", "add", dc.NETWORK, "via", f"{net}.1")
        cs[host] = (ns, f"{net}.10")
    for host, other in (("host1", "host2"), ("host2", "host1")):
        world.ip(world.host_ns[host], "route", "add", f"{PLAIN[other]}.0/24", "via",
                 world.host_address(other))
    return cs


def iperf(world, src_ns, dst_ns, address, seconds, tag):
    server = world.spawn(f"iperf3-s-{tag}", ["iperf3", "-s", "-1", "-p", str(IPERF_PORT)], ns=dst_ns)
    server.wait_line("Server listening")
    r = dc.run(["ip", "netns", "exec", src_ns, "iperf3", "-c", address, "-p", str(IPERF_PORT),
                "-t", str(seconds), "-J"], timeout=seconds + 30)
    server.stop()
    end = json.loads(r.stdout)["end"]
    return end["sum_received"]["bits_per_second"] / 1e6, end["sum_sent"].get("retransmits", 0)


def round_trips(world, src_ns, dst_ns, address, count, tag):
    server = world.spawn(f"echo-{tag}", ["/usr/bin/python3", "-c", ECHO % RR_PORT], ns=dst_ns)
    server.wait_line("ready")
    s = dc.netns_socket(src_ns, socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.connect((address, RR_PORT))
    msg, times = b"x" * 64, []
    for _ in range(count):
        t = time.perf_counter()
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            got += s.recv(64 - len(got))
        times.append(time.perf_counter() - t)
    s.close()
    server.stop()
    return times


def throughput(mesh, seconds, count):
    world = mesh.world
    a = cn.echo_container(world, "host1", "bench-a")
    b = cn.echo_container(world, "host2", "bench-b")
    plain = plain_pair(world)
    paths = {"ContainerNet (wireguard-go)": (a.ns, b.ns, b.address),
             "bare underlay (static route)": (plain["host1"][0], plain["host2"][0],
                                              plain["host2"][1])}
    print(f"2. container -> container across hosts, TCP (wireguard-go is userspace; MTU "
          f"{mesh.mtu('host1')} on the WireGuard interface, 1500 on the underlay; 2 rounds, "
          f"alternating):")
    results = {k: [] for k in paths}
    for rnd in (1, 2):
        for name, (src, dst, addr) in paths.items():
            tag = f"{rnd}-{'wg' if 'Container' in name else 'plain'}"
            mbit, retr = iperf(world, src, dst, addr, seconds, tag)
            rtt = round_trips(world, src, dst, addr, count, tag)
            results[name].append((mbit, rtt))
            print(f"   round {rnd} {name:29s} {mbit:8.0f} Mbit/s ({retr} retransmits), "
                  f"round trip {summary(rtt, 'us', 1e6)}; load {load()}")
    wg = statistics.median(m for m, _ in results["ContainerNet (wireguard-go)"])
    raw = statistics.median(m for m, _ in results["bare underlay (static route)"])
    print(f"   ContainerNet / bare underlay throughput: {wg / raw * 100:.1f} %")


def reconcile(mesh, servers, small_cpu):
    ch = Changes(mesh)
    t_writes = time.monotonic()
    names = [f"cnr{n}" for n in range(servers)]
    for n, name in enumerate(names):
        ch.join(name, n)
    t0 = time.monotonic()
    print(f"3. reconcile at {servers} servers (+{len(mesh.agents)} real):")
    print(f"   {2 * servers} writes at central took {t0 - t_writes:.1f} s")
    want = set(ch.keys.values())
    bulk = ch.reflected(lambda peers: want <= set(peers), t0, deadline=120.0, interval=0.01)
    routes = len(mesh.wg_routes("host1"))
    print(f"   last write acknowledged -> every agent has all {servers} peers: {bulk * 1000:.0f} ms "
          f"(host1 has {routes} routes via WireGuard); load {load()}")
    times = []
    cpu0 = ch.cpu()
    for n in range(0, servers, max(1, servers // 20)):
        check = ch.rotate(names[n], n)
        times.append(ch.reflected(check, time.monotonic(), deadline=30.0, interval=0.01))
    per = [(b - a) / len(times) / len(mesh.agents) for a, b in zip(cpu0, ch.cpu())]
    print(f"   one key rotation at {servers} servers -> reflected everywhere (polled every 10 ms): "
          f"{summary(times)}")
    print(f"   CPU per change and host: agent {per[0] * 1000:.2f} ms at {servers} servers against "
          f"{small_cpu[0] * 1000:.2f} ms at a few; its wireguard-go {per[1] * 1000:.2f} ms "
          f"against {small_cpu[1] * 1000:.2f} ms (with this poller's UAPI gets); load {load()}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--central", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--wireguard-go", default="wireguard-go")
    p.add_argument("--changes", type=int, default=60)
    p.add_argument("--servers", type=int, default=1000)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--round-trips", type=int, default=2000)
    args = p.parse_args()
    if os.geteuid() != 0:
        print("containernet_bench needs root (netns, cgroups, TUN)", file=sys.stderr)
        return 77
    if args.changes < 50 or args.servers > 2000:
        print("--changes must be at least 50, --servers at most 2000 (the /17 holds 2048 /28s)",
              file=sys.stderr)
        return 2
    dc.exit_on_signals()
    world = dc.World(containernet=True)
    failed = True
    try:
        world.build()
        world.add_host("host3")
        # /28 subnets: the cluster CIDR (a /17) holds the --servers part's 1,000 and more.
        mesh = cn.Mesh(world, args.central, args.agent, hosts=("host1", "host2", "host3"),
                       wireguard_go=args.wireguard_go, upstream=False,
                       central_kw={"prefix": 28, "extra_config": "durability: normal\n"})
        print(f"wireguard-go {args.wireguard_go} (userspace), 3 hosts; load {load()}", flush=True)
        _, small_cpu = convergence(mesh, args.changes)
        throughput(mesh, args.duration, args.round_trips)
        reconcile(mesh, args.servers, small_cpu)
        failed = False
    finally:
        world.teardown(failed=failed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
