#!/usr/bin/python3
"""ContainerNet end to end: the agents' WireGuard mesh (real wireguard-go over TUN in each
host's network namespace) joins the hosts' container subnets, which central leases.

  containernet_test.py --central BIN --agent BIN [--wireguard-go wireguard-go]

On a data centre in ContainerNet mode (dc.World(containernet=True): no static routes between
the hosts' container subnets, no address on the container bridges from the harness):
  - each agent publishes its key, puts its gateway on the bridge, programs one peer per other
    server and a route per subnet;
  - a `web` container on host1 resolves api.<domain> through its agent (eBPF redirect) and talks
    HTTP and TCP to the `api` container on host2, while tcpdump on the world bridge shows only
    WireGuard UDP between the hosts and no container address or payload in clear;
  - path MTU: the largest ping with DF passes, one byte more gets "frag needed" (no black hole),
    and a 1 MiB upload passes;
  - host2's key rotates during a probe loop: the gap is measured, connectivity returns;
  - host3 joins and is reachable by all (time measured), then its server record is deleted at
    central and every other host drops its peer and route;
  - host2's agent restarts (its key stays, its wireguard-go goes with it), then is killed -9
    (its wireguard-go keeps forwarding; the next agent takes it over); its wireguard-go is
    killed -9 (the agent starts another);
  - central stops: the mesh keeps working; host2 rotates its key meanwhile, and once central
    is back the new key is published and the mesh heals;
  - host2's underlay address changes: the new endpoint is published and followed.
Exit 0 if every check passed, 1 if one failed, 77 (SKIPPED, reason printed) when not root or a
tool is missing.
"""

import argparse
import os
import shutil
import signal
import sys
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import containernet as cn  # noqa: E402
import dc  # noqa: E402
import elastic  # noqa: E402
from scenarios import Report  # noqa: E402

TCP_PORT, UDP_PORT, HTTP_PORT = 9000, 9001, 8080
JOIN_BOUND = 10.0  # seconds from host3's agent start until every pair of hosts' containers talk
LEAVE_BOUND = 2.0  # seconds from the DELETE at central until no host has host3's peer or route
ROTATION_GAP_BOUND = 6.0  # seconds without an echo while host2's key rotates
RESTART_BOUND = 10.0  # seconds from an agent's restart until web -> api passes again
HEAL_BOUND = 15.0  # seconds from central's restart until a key rotated meanwhile is in use
WG_RESTART_BOUND = 5.0  # seconds: the agent's README promises a new wireguard-go within ~1 s
NEW_HOST2_ADDRESS = "10.77.0.22"  # host2's underlay address after it changes
PROBE_SECONDS = 8.0
UPLOAD = 1 << 20  # bytes of the path-MTU upload


def register(mesh, container, service, version):
    mesh.central.put("containers", container.id, {"service": service, "version": version,
                                                  "server": container.host,
                                                  "address": container.address})


def check_mesh(report, mesh):
    servers = mesh.central.servers()
    subnets = {h: servers[h]["subnet"] for h in mesh.agents}
    report.check("mesh: central leased distinct subnets inside the cluster CIDR",
                 len(set(subnets.values())) == len(subnets) and all(
                     s.startswith("10.77.1") and s.endswith(f"/{dc.CONTAINERNET_PREFIX}")
                     and int(s.split(".")[2]) >= 128 for s in subnets.values()), subnets)
    for h in mesh.agents:
        peers, routes = mesh.mesh_state(h)
        want = mesh.expected_peers(h, servers)
        report.check(f"mesh: {h} has one peer per other server (allowed-ips = its subnet, "
                     "endpoint = its address)", peers == want, f"{peers} != {want}")
        report.check(f"mesh: {h} routes every other subnet through {mesh.agents[h].interface}",
                     routes == sorted(a for a, _ in want.values()), routes)
        key = servers[h]["wireguard"]["public_key"]
        report.check(f"mesh: {h}'s published key is its interface's key",
                     mesh.public_key(h) == key, key)
        report.check(f"mesh: {h}'s endpoint is its address and port",
                     servers[h]["wireguard"]["endpoint"]
                     == f"{mesh.world.host_address(h)}:{dc.WIREGUARD_PORT}",
                     servers[h]["wireguard"])
        addrs = dc.run(["ip", "-n", mesh.world.host_ns[h], "-4", "-o", "addr", "show", "cbr0"]).stdout
        gw = f"{mesh.world.gateway(h)}/{dc.CONTAINERNET_PREFIX}"
        report.check(f"mesh: {h}'s agent put the gateway {gw} on cbr0", gw in addrs, addrs)
        st = os.stat(mesh.agents[h].key_file)
        report.check(f"mesh: {h}'s private key file is 0600", (st.st_mode & 0o777) == 0o600,
                     oct(st.st_mode))


CLIENT = r"""
import socket, sys
name, port, http_port, marker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
addr = socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
def talk(p, data):
    s = socket.create_connection((addr, p), timeout=5)
    s.sendall(data)
    out = b""
    while True:
        c = s.recv(65536)
        if not c:
            break
        out += c
    s.close()
    return out.decode()
tcp = talk(port, b"")
body = talk(http_port, ("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % marker).encode())
print(addr)
print(tcp.strip())
print(body.split("\r\n\r\n", 1)[-1].strip())
"""


def check_dns_and_tcp(report, mesh, web, api, pcap_path):
    """web (host1) -> api.<domain> -> api (host2) over HTTP and TCP, with tcpdump on br0."""
    world = mesh.world
    marker = f"cn-marker-{os.urandom(6).hex()}.test"
    cap = cn.tcpdump(world, pcap_path)
    try:
        r = web.run(["/usr/bin/python3", "-c", CLIENT, f"api.{elastic.DOMAIN}", str(TCP_PORT),
                     str(HTTP_PORT), marker], timeout=20)
        lines = r.stdout.splitlines()
        report.check("web on host1 resolves api.<domain> through its agent to api's address",
                     lines[:1] == [api.address], r.stdout + r.stderr)
        report.check("web on host1 gets api's TCP answer across the mesh",
                     lines[1:2] == [api.id], r.stdout + r.stderr)
        report.check("web on host1 gets api's HTTP answer (the marker echoed) across the mesh",
                     len(lines) > 2 and lines[2].split()[:2] == [api.id, marker],
                     r.stdout + r.stderr)
        time.sleep(0.3)  # the last packets reach the capture file (-U: written per packet)
    finally:
        cap.stop()
    stats = " ".join(line.strip() for line in cap.stderr().splitlines() if "packets" in line)
    print(f"INFO tcpdump: {stats}", flush=True)
    h1, h2 = world.host_address("host1"), world.host_address("host2")
    clear = cn.read_pcap(pcap_path, f"ip and net {dc.CONTAINERNET_CIDR}")
    report.check("underlay: no packet with a container address on the world bridge",
                 clear == [], "\n".join(clear[:10]))
    other = cn.read_pcap(pcap_path, f"ip and host {h1} and host {h2} and not udp port "
                                    f"{dc.WIREGUARD_PORT}")
    report.check("underlay: between host1 and host2 only UDP to/from the WireGuard port",
                 other == [], "\n".join(other[:10]))
    wgp = cn.read_pcap(pcap_path, f"udp and host {h1} and host {h2} and port {dc.WIREGUARD_PORT}")
    report.check("underlay: WireGuard UDP between host1 and host2 was seen",
                 len(wgp) >= 4, f"{len(wgp)} packets")
    with open(pcap_path, "rb") as f:
        raw = f.read()
    report.check("underlay: the payload (marker) never crosses in clear",
                 marker.encode() not in raw, f"{len(raw)} bytes captured")


UPLOADER = r"""
import socket, sys
addr, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((addr, port), timeout=10)
s.sendall(("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
           % size).encode())
s.sendall(b"x" * size)
out = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    out += c
print(out.decode().split("\r\n\r\n", 1)[-1].strip())
"""


def check_mtu(report, mesh, web, api):
    mtu = mesh.mtu("host1")
    report.check("mtu: the WireGuard interface's MTU leaves room for the overhead (<= 1440 on "
                 "a 1500 underlay)", 1280 <= mtu <= 1440, mtu)
    biggest = mtu - 28  # IPv4 + ICMP headers
    rc, out = cn.ping(web, api.address, biggest)
    report.check(f"mtu: ping -M do -s {biggest} (MTU {mtu}) host1 -> host2 passes", rc == 0, out)
    rc, out = cn.ping(web, api.address, biggest + 1)
    low = out.lower()
    said = ("frag needed" in low or "message too long" in low) and f"mtu = {mtu}" in low \
        or "message too long" in low
    report.check(f"mtu: ping -M do -s {biggest + 1} fails with frag needed / message too long "
                 "(no black hole)", rc != 0 and said, out)
    rc, out = cn.ping(api, web.address, biggest)
    rc2, out2 = cn.ping(api, web.address, biggest + 1)
    report.check(f"mtu: the other way (host2 -> host1) -s {biggest} passes, -s {biggest + 1} is "
                 "refused with an error", rc == 0 and rc2 != 0 and (
                     "mtu = " in out2.lower() or "message too long" in out2.lower()), out + out2)
    for h in ("host1", "host2"):
        out = dc.run(["ip", "-n", mesh.world.host_ns[h], "-o", "link", "show", "cbr0"]).stdout
        report.check(f"mtu: {h}'s container bridge has the WireGuard MTU ({mtu})",
                     f" mtu {mtu} " in out, out)
    r = web.run(["/usr/bin/python3", "-c", UPLOADER, api.address, str(HTTP_PORT), str(UPLOAD)],
                timeout=30)
    report.check("mtu: a 1 MiB TCP upload from a 1500-MTU container crosses (path-MTU discovery)",
                 r.stdout.split() == [api.id, str(UPLOAD)], r.stdout + r.stderr)


def check_rotation(report, mesh, web, api):
    old = mesh.public_key("host2")
    probe = cn.UdpProbe(web.ns, api.address, UDP_PORT)
    rotated_at = probe.run_for(PROBE_SECONDS, during=lambda: mesh.rotate_key("host2"))
    new = mesh.public_key("host2")
    report.check("rotation: host2's interface has a new key", new != old, new)
    published = mesh.central.servers()["host2"]["wireguard"]["public_key"]
    report.check("rotation: the new key is published at central", published == new, published)
    report.check("rotation: host1's peer for host2 carries the new key, the old one is gone",
                 set(mesh.wg_peers("host1")) == {new}, list(mesh.wg_peers("host1")))
    gap = probe.longest_gap(rotated_at)
    last = probe.replies[-1] if probe.replies else 0
    report.check(f"rotation: connectivity returns (longest gap {gap * 1000:.0f} ms, bound "
                 f"{ROTATION_GAP_BOUND:.0f} s; {len(probe.replies)} echoes over "
                 f"{PROBE_SECONDS:.0f} s)", gap < ROTATION_GAP_BOUND and rotated_at is not None
                 and last > rotated_at + gap, f"gap {gap:.3f}s")
    print(f"FIGURE rotation gap: {gap * 1000:.0f} ms", flush=True)


def talk_all(containers):
    """[(from, to)] pairs of containers on different hosts whose TCP exchange failed."""
    bad = []
    for a in containers:
        for b in containers:
            if a.host == b.host:
                continue
            try:
                if cn.tcp_ask(a.ns, b.address, TCP_PORT, timeout=1.0) != b.id:
                    bad.append((a.id, b.id))
            except OSError:
                bad.append((a.id, b.id))
    return bad


def check_join_leave(report, mesh, containers):
    world = mesh.world
    world.add_host("host3")
    mesh.add_server("host3")
    c3 = cn.echo_container(world, "host3", "job-v1-h3")
    t0 = time.monotonic()
    mesh.start_agent("host3")
    everyone = containers + [c3]
    try:
        dc.poll("every pair of hosts' containers talk", lambda: talk_all(everyone) == [],
                JOIN_BOUND)
        joined = time.monotonic() - t0
    except TimeoutError:
        joined = None
    report.check(f"join: host3 is reachable by all and reaches all within {JOIN_BOUND:.0f} s "
                 f"of its agent's start ({joined and f'{joined:.2f} s'})", joined is not None,
                 talk_all(everyone))
    if joined is not None:
        print(f"FIGURE join (agent start -> every pair talks): {joined * 1000:.0f} ms", flush=True)
    servers = mesh.central.servers()
    key3, subnet3 = servers["host3"]["wireguard"]["public_key"], servers["host3"]["subnet"]
    for h in ("host1", "host2"):
        report.check(f"join: {h} has a peer and a route for host3",
                     key3 in mesh.wg_peers(h) and subnet3 in mesh.wg_routes(h),
                     mesh.mesh_state(h))

    t1 = time.monotonic()
    mesh.central.delete("servers", "host3")

    def any_route(h):  # through any device, in the host's main table
        return dc.run(["ip", "-n", world.host_ns[h], "-4", "route", "show", subnet3]).stdout.strip()

    def gone():
        return all(key3 not in mesh.wg_peers(h) and not any_route(h) for h in ("host1", "host2"))

    try:
        dc.poll("host3's peer and route gone everywhere", gone, LEAVE_BOUND)
        left = time.monotonic() - t1
    except TimeoutError:
        left = None
    report.check(f"leave: host3's record deleted -> every other host's peer and route to it are "
                 f"gone within {LEAVE_BOUND:.0f} s ({left and f'{left:.2f} s'})", left is not None,
                 {h: (mesh.mesh_state(h), any_route(h)) for h in ("host1", "host2")})
    if left is not None:
        print(f"FIGURE leave (DELETE acknowledged -> peers and routes gone): {left * 1000:.0f} ms",
              flush=True)
    cut = [(a, b) for a, b in talk_all(everyone) if "job-v1-h3" in (a, b)]
    report.check("leave: host3's container no longer reaches, nor is reached by, the others",
                 len(cut) == 2 * len(containers), cut)
    report.check("leave: the remaining hosts still talk",
                 talk_all(containers) == [], talk_all(containers))
    mesh.stop_agent("host3")


def tcp_passes(web, api, deadline=RESTART_BOUND):
    """Seconds until a TCP exchange web -> api passes, or None."""
    t0 = time.monotonic()
    try:
        dc.poll("web -> api over TCP", lambda: cn.tcp_ask(web.ns, api.address, TCP_PORT,
                                                          timeout=0.5) == api.id, deadline)
        return time.monotonic() - t0
    except TimeoutError:
        return None


def check_restart(report, mesh, web, api):
    """host2's agent restarted (SIGTERM), then killed (SIGKILL) and started again."""
    agent = mesh.agents["host2"]
    key = mesh.public_key("host2")
    agent.stop()
    try:
        dc.poll("host2's wireguard-go gone", lambda: not dc.wireguard_go_pids([agent.interface]), 5)
        gone = True
    except TimeoutError:
        gone = dc.wireguard_go_pids([agent.interface])
    report.check("restart: a stopped agent stops its wireguard-go (interface and socket go)",
                 gone is True and not os.path.exists(
                     os.path.join(dc.WIREGUARD_SOCKETS, f"{agent.interface}.sock")), gone)
    agent.start()
    mesh.wait_converged()
    report.check("restart: host2 keeps its key across a restart (the key file)",
                 mesh.public_key("host2") == key, mesh.public_key("host2"))
    took = tcp_passes(web, api)
    report.check(f"restart: web -> api passes again after host2's agent restarted "
                 f"({took and f'{took:.2f} s'})", took is not None, took)
    before = dc.wireguard_go_pids([agent.interface])
    agent.proc.kill()  # the agent only: its wireguard-go keeps the interface up
    took = tcp_passes(web, api, 2.0)
    report.check("kill -9: with host2's agent dead its wireguard-go keeps forwarding",
                 took is not None and dc.wireguard_go_pids([agent.interface]) == before,
                 (took, before))
    agent.start()
    mesh.wait_converged()
    after = dc.wireguard_go_pids([agent.interface])
    report.check("kill -9: the next agent takes the running wireguard-go over (one process, "
                 "same key)", len(after) == 1 and mesh.public_key("host2") == key,
                 (before, after))
    took = tcp_passes(web, api)
    report.check("kill -9: web -> api passes after the new agent started", took is not None, took)
    # wireguard-go itself dies: the agent starts another and programs it (agent/README.md: within
    # about a second).
    victim = dc.wireguard_go_pids([agent.interface])
    for pid in victim:
        os.kill(pid, signal.SIGKILL)
    took = tcp_passes(web, api, WG_RESTART_BOUND)
    now = dc.wireguard_go_pids([agent.interface])
    report.check(f"wireguard-go killed: host2's agent starts another and web -> api passes "
                 f"within {WG_RESTART_BOUND:.0f} s ({took and f'{took:.2f} s'})",
                 took is not None and len(now) == 1 and now != victim, (victim, now, took))
    if took is not None:
        print(f"FIGURE wireguard-go killed -> web -> api passes again: {took * 1000:.0f} ms",
              flush=True)


def check_central_down(report, mesh, web, api):
    mesh.central.stop()
    ok = False
    try:
        ok = cn.tcp_ask(web.ns, api.address, TCP_PORT) == api.id
    except OSError as e:
        ok = repr(e)
    report.check("central down: a TCP exchange host1 -> host2 still passes", ok is True, ok)
    r = web.run(["dig", "+short", "+time=2", "+tries=1", f"api.{elastic.DOMAIN}", "A"])
    report.check("central down: web still resolves api through its agent",
                 r.stdout.split() == [api.address], r.stdout + r.stderr)


def check_rotation_while_central_down(report, mesh, web, api):
    """host2 rotates while central is down: the new key cannot reach host1 until central is
    back; then the agent publishes it and the mesh heals by itself."""
    old = mesh.public_key("host2")
    mesh.rotate_key("host2")
    dc.poll("host2's interface has its new key", lambda: mesh.public_key("host2") != old)
    new = mesh.public_key("host2")
    mesh.central.start()
    t0 = time.monotonic()
    try:
        dc.poll("central has host2's new key", lambda: mesh.central.servers()["host2"][
            "wireguard"]["public_key"] == new, HEAL_BOUND)
        published = time.monotonic() - t0
    except TimeoutError:
        published = None
    report.check(f"central back: the key host2 rotated while central was down is published "
                 f"({published and f'{published:.2f} s'} after central's start)",
                 published is not None, mesh.central.servers().get("host2"))
    took = tcp_passes(web, api, HEAL_BOUND)
    report.check(f"central back: host1 gets host2's new key and web -> api passes "
                 f"({took and f'{took:.2f} s'})", took is not None
                 and set(mesh.wg_peers("host1")) == {new}, list(mesh.wg_peers("host1")))


def check_address_change(report, mesh, web, api):
    """host2's underlay address changes (the new one added, the record updated at central, the
    old one removed): its agent publishes the new endpoint, host1's peer follows, traffic
    passes. Last: host2's agent listens for DNS on the old address."""
    world = mesh.world
    ns = world.host_ns["host2"]
    dc.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1"])
    world.ip(ns, "addr", "add", f"{NEW_HOST2_ADDRESS}/{dc.PREFIX}", "dev", "eth0")
    t0 = time.monotonic()
    mesh.central.put("servers", "host2", {"address": NEW_HOST2_ADDRESS})
    endpoint = f"{NEW_HOST2_ADDRESS}:{dc.WIREGUARD_PORT}"
    try:
        dc.poll("host2's new endpoint published and on host1's peer", lambda: mesh.central.servers()[
            "host2"]["wireguard"]["endpoint"] == endpoint and [
                p["endpoint"] for p in mesh.wg_peers("host1").values()] == [endpoint])
        took = time.monotonic() - t0
    except TimeoutError:
        took = None
    report.check(f"address change: host2's agent publishes its new endpoint and host1's peer "
                 f"follows ({took and f'{took:.2f} s'})", took is not None,
                 (mesh.central.servers()["host2"], mesh.wg_peers("host1")))
    world.ip(ns, "addr", "del", f"{world.host_address('host2')}/{dc.PREFIX}", "dev", "eth0")
    took = tcp_passes(web, api)
    report.check(f"address change: web -> api passes with host2's old address gone "
                 f"({took and f'{took:.2f} s'})", took is not None, took)


def run(args, report):
    world = dc.World(containernet=True)
    failed = True
    try:
        world.build()
        t0 = time.monotonic()
        mesh = cn.Mesh(world, args.central, args.agent, wireguard_go=args.wireguard_go)
        print(f"FIGURE mesh of 2 hosts up (central start -> peers and routes everywhere): "
              f"{(time.monotonic() - t0) * 1000:.0f} ms", flush=True)
        check_mesh(report, mesh)
        web = cn.echo_container(world, "host1", "web-v1-h1")
        api = cn.echo_container(world, "host2", "api-v1-h2")
        register(mesh, web, "web", "v1")
        register(mesh, api, "api", "v1")
        for a in mesh.agents.values():
            client = a.client()
            try:
                dc.poll(f"agent {a.host} answers api", lambda: client.addresses(
                    f"api.{elastic.DOMAIN}", 0.3) == [api.address])
            finally:
                client.close()
        check_dns_and_tcp(report, mesh, web, api, os.path.join(world.tmp, "br0.pcap"))
        check_mtu(report, mesh, web, api)
        check_rotation(report, mesh, web, api)
        check_join_leave(report, mesh, [web, api])
        check_restart(report, mesh, web, api)
        check_central_down(report, mesh, web, api)
        check_rotation_while_central_down(report, mesh, web, api)
        check_address_change(report, mesh, web, api)
        failed = False
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        report.check("containernet: ran to the end", False, repr(e))
    finally:
        try:
            world.teardown(failed=failed or bool(report.failed))
            report.check("containernet: teardown left nothing (processes, namespaces, "
                         "wireguard-go, TUN interfaces, UAPI sockets)", True)
        except Exception as e:  # noqa: BLE001
            report.check("containernet: teardown left nothing", False, repr(e))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--central", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--wireguard-go", default="wireguard-go")
    args = p.parse_args()
    dc.exit_on_signals()
    if os.geteuid() != 0:
        print("SKIPPED: the ContainerNet test needs root (netns, cgroups, eBPF, TUN)")
        return 77
    missing = [what for what, ok in (
        ("elasticdns-central", os.access(args.central, os.X_OK)),
        ("elasticdns-agent", os.access(args.agent, os.X_OK)),
        (f"wireguard-go ({args.wireguard_go})", shutil.which(args.wireguard_go) is not None),
        ("wg (wireguard-tools)", shutil.which("wg") is not None),
        ("tcpdump", shutil.which("tcpdump") is not None),
        ("ping (iputils-ping)", shutil.which("ping") is not None),
        ("/dev/net/tun", os.path.exists("/dev/net/tun"))) if not ok]
    if missing:
        print(f"SKIPPED: missing {', '.join(missing)} (scripts/install-deps.sh installs them)")
        return 77
    report = Report()
    start = time.monotonic()
    run(args, report)
    report.summary()
    print(f"took {time.monotonic() - start:.1f}s", flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
