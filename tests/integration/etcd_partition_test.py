#!/usr/bin/env python3
"""Central replicas over a 3-member etcd cluster split by a real network partition (root).

    etcd_partition_test.py BUILD_DIR

The machines are network namespaces joined by a bridge in a "lan" namespace (10.81.0.0/24, on
interfaces this test makes; no default route anywhere, nothing leaves the machine):

    m1 10.81.0.11  etcd member 1, replica A (knows members 1, 2, 3)
    m2 10.81.0.12  etcd member 2
    m3 10.81.0.13  etcd member 3, replica B (knows only member 3: its own machine's)
    h1 10.81.0.21  agent 1 (central urls: A, B), a DNS client asking every 20 ms
    h2 10.81.0.22  agent 2 (central urls: B, A), a DNS client asking every 20 ms

Both agents and both DNS clients run through every step:
  replication  writes through A and through B are on both replicas at the same index, and both
               agents answer them
  partition    (etcd's leader moved off member 3 first) m3's link goes down: B marks its reads
               ElasticDNS-Stale and refuses writes with 503; A is not stale and goes on writing;
               agent 2 (cut off from B) follows A and gets A's writes as deltas
  double fault kill -9 of A while B is still cut off: no replica reachable, the agents answer
               from their snapshot
  heal         the link comes up (A still dead): B catches up (A's last index, no stale mark)
               and takes writes again; the agents, ahead of B, follow it with deltas; A restarts
  B killed     kill -9 of replica B: both agents follow A from B's index, with deltas
No switch between replicas gives an agent a full snapshot, no agent ever serves an older
snapshot than it served before (its log), and no DNS query fails. The times (to stale, to
failover, to catch up) and the queries answered are printed as `figure:` lines.

Exits 77 (SKIPPED) when not root or when etcd, etcdctl, ip or nsenter is missing. Every
process is stopped by its PID and every namespace deleted (try/finally, SIGTERM/SIGHUP too);
names carry the PID (ednsdc<PID>ep-...), so dc.sweep_stale() removes a killed run's leftovers.
"""
import json
import os
import re
import shutil
import socket
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "dc"))
import harness  # noqa: E402  (this directory)
import dc  # noqa: E402  (dc/: network namespaces, the DNS client)
import etcd_test  # noqa: E402  (the etcd cluster, replicas, records)
from etcd_test import DEADLINE, SKIP, check, container, converge, get  # noqa: E402

NET = "10.81.0"  # /24 on the lan bridge (10.77-10.80 are dc/'s and vagrant/'s)
MACHINES = {"m1": f"{NET}.11", "m2": f"{NET}.12", "m3": f"{NET}.13",
            "h1": f"{NET}.21", "h2": f"{NET}.22"}
ETCD_CLIENT, ETCD_PEER = 2379, 2380  # each member has its own namespace: the usual ports
DOMAIN = "cloud66.local"
STALE_AFTER = "4s"  # the agents' stale_after: long-polls of 2 s
# A long-poll to a replica whose link went down silently ends by TCP keepalive (3 s idle, then 3
# probes 1 s apart: about 6 s), not at its timeout (wait + 15 s): the agent must follow another
# replica within this many seconds.
SILENT_FAILOVER_BOUND = 12
FIGURES = []


def figure(text):
    FIGURES.append(text)
    print("figure:", text, flush=True)


class Lan:
    """The namespaces, bridge and veths of this test; teardown() deletes them all."""

    def __init__(self):
        self.tag = f"{dc.TAG_PREFIX}{os.getpid()}ep"
        self.netns = []

    def ns(self, machine):
        return f"{self.tag}-{machine}"

    def _add_netns(self, short):
        name = self.ns(short)
        dc.run(["ip", "netns", "add", name])
        self.netns.append(name)
        dc.run(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def build(self):
        dc.sweep_stale()
        lan = self._add_netns("lan")
        dc.run(["ip", "-n", lan, "link", "add", "br0", "type", "bridge"])
        dc.run(["ip", "-n", lan, "link", "set", "br0", "up"])
        for machine, addr in MACHINES.items():
            ns = self._add_netns(machine)
            dc.run(["ip", "-n", lan, "link", "add", machine, "type", "veth", "peer", "name",
                    "eth0", "netns", ns])
            dc.run(["ip", "-n", lan, "link", "set", machine, "master", "br0", "up"])
            dc.run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0"])
            dc.run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        return self

    def link(self, machine, state):
        """`ip link set eth0 up|down` on a machine: a real link change, no process signalled."""
        dc.run(["ip", "-n", self.ns(machine), "link", "set", "eth0", state])

    def prefix(self, machine):
        return dc.World.prefix(self.ns(machine))

    def tcp_socket(self, machine):
        return lambda: dc.netns_socket(self.ns(machine), socket.AF_INET, socket.SOCK_STREAM)

    def leftovers(self):
        names = dc.run(["ip", "netns", "list"]).stdout.split()
        return [f"netns {n}" for n in names if n.startswith(self.tag + "-")]

    def teardown(self):
        errors = []
        for name in reversed(self.netns):  # deleting a namespace deletes its veths and bridge
            r = dc.run(["ip", "netns", "del", name], check=False)
            if r.returncode != 0:
                errors.append(f"netns {name}: {r.stderr.strip()}")
        self.netns = []
        return errors + self.leftovers()


class NetnsEtcd(etcd_test.Etcd):
    """etcd_test's cluster with member mN in machine mN's namespace, on the lan address."""

    def __init__(self, ws, binary, lan):
        super().__init__(ws, binary)
        self.lan = lan

    def client_url(self, m):
        return f"http://{MACHINES[m]}:{ETCD_CLIENT}"

    def peer_url(self, m):
        return f"http://{MACHINES[m]}:{ETCD_PEER}"

    def prefix(self, m):
        return self.lan.prefix(m)

    def call(self, m, path, body, timeout=3):
        # From inside m's namespace: member m answers even while its link is down.
        req = urllib.request.Request(self.client_url(m) + path, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        with dc.in_netns(self.lan.ns(m)):
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())


class Machine:
    """An agent on machine h1 or h2, and a DNS client there asking every 20 ms."""

    def __init__(self, ws, lan, agent_bin, name, urls, token_file):
        self.name, self.lan = name, lan
        addr = MACHINES[name]
        self.agent = harness.Agent(ws, agent_bin, {
            "listen": [f"{addr}:0"], "server_name": name, "metrics_listen": f"{addr}:0",
            "central": {"urls": urls, "token_file": token_file},
            "upstreams": [f"{addr}:9"], "state_dir": ws.path(f"{name}-state"),
            "stale_after": STALE_AFTER,
        }, name=f"agent-{name}", prefix=lan.prefix(name))
        self.sent = self.failed = 0
        self.errors = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._ask, daemon=True)

    def start(self):
        self.agent.start(DEADLINE)
        self.metrics_http = harness.Http(*self.agent.metrics, new_socket=self.lan.tcp_socket(
            self.name))
        harness.poll(f"agent {self.name} answers api.{DOMAIN}", lambda: self.addresses("api"),
                     DEADLINE)
        self.thread.start()
        return self

    def addresses(self, service):
        client = dc.DnsClient(self.lan.ns(self.name), MACHINES[self.name], self.agent.port)
        try:
            return client.addresses(f"{service}.{DOMAIN}")
        finally:
            client.close()

    def _ask(self):
        client = dc.DnsClient(self.lan.ns(self.name), MACHINES[self.name], self.agent.port)
        try:
            while not self.stop_flag.is_set():
                self.sent += 1
                try:
                    rcode, answer = client.ask(f"api.{DOMAIN}", timeout=1)
                    if rcode != "NOERROR" or not answer:
                        self.failed += 1
                        self.errors.append(rcode)
                except Exception as e:  # noqa: BLE001 - a timeout is a failed answer
                    self.failed += 1
                    self.errors.append(f"{type(e).__name__}: {e}")
                time.sleep(0.02)
        finally:
            client.close()

    def stop_asking(self):
        self.stop_flag.set()
        if self.thread.is_alive():
            self.thread.join(5)

    def metric(self, name):
        return self.metrics_http.metric(name)

    def following(self, central):
        return self.metric(f'elasticdns_agent_sync_following{{url="{central.url}"}}')

    def answers(self, kind):
        return self.metric(f'elasticdns_agent_sync_answers_total{{kind="{kind}"}}')

    def index(self):
        return self.metric("elasticdns_agent_snapshot_index")


def stale_mark(central):
    """The ElasticDNS-Stale header of a topology read (None when not stale)."""
    return get(central, "/v1/topology")[2].getheader("ElasticDNS-Stale")


def write_service(central, name, address):
    """A service with one container on h1, written through `central`; the last write's
    acknowledged index."""
    central.put("services", name, {"name": name})
    return central.put("containers", f"{name}-c", container(f"{name}-c", "v1", address,
                                                            service=name))["index"]


def all_answer(machines, service, address):
    for m in machines:
        harness.poll(f"agent {m.name} answers {service} with {address}",
                     lambda: m.addresses(service) == [address], DEADLINE)


def replication(a, b, machines):
    acks = []
    for i, writer in enumerate((a, b, a, b)):
        acks.append(write_service(writer, f"w{i}", f"10.81.1.{i + 1}"))
    check(acks == sorted(acks), f"writes through A and B acknowledged at indexes {acks}")
    index = converge(a, b)
    check(index == acks[-1] and a.topology() == b.topology(),
          f"both replicas hold the same topology at the same index {index}")
    for i in range(4):
        all_answer(machines, f"w{i}", f"10.81.1.{i + 1}")
    for m in machines:
        harness.poll(f"agent {m.name} at index {index}", lambda: m.index() >= index, DEADLINE)
    print("ok: both agents answer every write, through either replica", flush=True)


def partition(lan, etcd, a, b, h1, h2):
    if etcd.leader() == "m3":
        etcd.move_leader("m3", "m1")
    harness.poll("etcd's leader is not member 3", lambda: etcd.leader() in ("m1", "m2"),
                 DEADLINE)
    check(h2.following(b) == 1 and h1.following(a) == 1,
          "before: agent h1 follows A, agent h2 follows B")
    full_before = {m.name: m.answers("full") for m in (h1, h2)}
    down_at = time.monotonic()
    lan.link("m3", "down")
    mark = harness.poll("B marks its reads stale", lambda: stale_mark(b), DEADLINE)
    figure(f"link down -> B stale: {(time.monotonic() - down_at) * 1000:.0f} ms "
           f"(ElasticDNS-Stale: {mark})")
    status, body = b.json("PUT", "/v1/containers/cut-b", container("cut-b", "v1", "10.81.2.1"))
    check(status == 503 and "refused" in body["error"]["reason"],
          f"B refuses writes with 503: {body['error']['reason']}")
    index = write_service(a, "p0", "10.81.2.10")
    check(stale_mark(a) is None, f"A (members 1 and 2 hold the quorum) is not stale and writes "
                                 f"(index {index})")
    harness.poll("agent h2 follows A and is at A's index",
                 lambda: h2.following(a) == 1 and h2.index() >= index, SILENT_FAILOVER_BOUND)
    figure(f"link down -> agent h2 follows A at its index: "
           f"{(time.monotonic() - down_at) * 1000:.0f} ms")
    index = write_service(a, "p1", "10.81.2.11")
    all_answer((h1, h2), "p0", "10.81.2.10")
    all_answer((h1, h2), "p1", "10.81.2.11")
    check(h1.following(a) == 1 and h2.following(a) == 1 and h2.following(b) == 0,
          "during the partition both agents follow A and answer A's writes")
    full_after = {m.name: m.answers("full") for m in (h1, h2)}
    check(full_after == full_before,
          f"agent h2 switched from B to A with deltas, no full snapshot (full answers "
          f"{full_before} -> {full_after}, delta answers h2: {h2.answers('delta'):.0f})")
    check(stale_mark(b) is not None and b.topology()["index"] < index,
          "B is still stale and behind while cut off")
    return full_before


def never_back(m):
    """The indexes the agent served, from its log: they never go down."""
    served = [int(x) for x in re.findall(r"serving snapshot index (\d+)", m.agent.log())]
    back = [(x, y) for x, y in zip(served, served[1:]) if y < x]
    check(served and not back, f"agent {m.name} never went back to an older snapshot "
                               f"({len(served)} served, {served[0]} to {served[-1]}; "
                               f"back: {back[:5]})")


def double_fault(a, b, machines):
    """kill -9 of A while B is cut off: no replica reachable, the agents answer from their
    snapshot."""
    index, behind = a.topology()["index"], b.topology()["index"]
    check(behind < index, f"B (cut off) is at {behind}, A and both agents at {index}")
    failures = 'elasticdns_agent_sync_failures_total{reason="network"}'
    before = {m.name: m.metric(failures) for m in machines}
    a.kill()
    for m in machines:
        harness.poll(f"agent {m.name} found A gone", lambda: m.metric(failures) > before[m.name],
                     DEADLINE)
    all_answer(machines, "p1", "10.81.2.11")
    check(all(m.index() == index for m in machines),
          f"no replica reachable: both agents answer from their snapshot at {index}")
    return index


def heal(lan, a, b, machines, index):
    """Link up with A still dead: B catches up and the agents follow it with deltas. While B
    is still stale and behind them, its answers (a long-poll held to its deadline, then B's
    older full snapshot) are not served (never_back checks that). Then A restarts (same port)
    and both replicas agree."""
    full_at_up = {m.name: m.answers("full") for m in machines}
    up_at = time.monotonic()
    lan.link("m3", "up")
    harness.poll("B caught up with A's last write and is not stale",
                 lambda: stale_mark(b) is None and b.topology()["index"] >= index, DEADLINE)
    figure(f"link up -> B at A's last index, not stale: "
           f"{(time.monotonic() - up_at) * 1000:.0f} ms")
    full_before = {m.name: m.answers("full") for m in machines}
    figure("full answers of B while stale and behind the agents (not served): " +
           ", ".join(f"{m.name} {full_before[m.name] - full_at_up[m.name]:.0f}" for m in machines))
    for m in machines:
        harness.poll(f"agent {m.name} follows B", lambda: m.following(b) == 1, 30)
    figure(f"link up -> both agents follow B: {(time.monotonic() - up_at) * 1000:.0f} ms")

    def write_through_b():
        status, body = b.json("PUT", "/v1/services/healed", {"name": "healed"})
        return status == 200 and body
    harness.poll("B takes writes again", write_through_b, DEADLINE)
    figure(f"link up -> first write through B acknowledged: "
           f"{(time.monotonic() - up_at) * 1000:.0f} ms")
    index = b.put("containers", "healed-c", container("healed-c", "v1", "10.81.3.1",
                                                      service="healed"))["index"]
    all_answer(machines, "healed", "10.81.3.1")
    full_after = {m.name: m.answers("full") for m in machines}
    check(full_after == full_before,
          f"once B caught up, the agents follow it with deltas, no full snapshot ({full_after})")
    a.start(DEADLINE)  # the same port (keep_port): the agents' URL
    check(converge(a, b) >= index and a.topology() == b.topology(),
          f"A restarted: both replicas hold the same topology at index {a.topology()['index']}")


def replica_killed(dead, alive, machines):
    """kill -9 of the replica both agents follow: they follow the other from their index."""
    full_before = {m.name: m.answers("full") for m in machines}
    killed_at = time.monotonic()
    dead.kill()
    index = write_service(alive, "after-kill", "10.81.4.1")
    for m in machines:
        harness.poll(f"agent {m.name} follows {alive.name} at its index",
                     lambda: m.following(alive) == 1 and m.index() >= index, DEADLINE)
    figure(f"kill -9 of {dead.name} -> both agents at {alive.name}'s index: "
           f"{(time.monotonic() - killed_at) * 1000:.0f} ms")
    all_answer(machines, "after-kill", "10.81.4.1")
    full_after = {m.name: m.answers("full") for m in machines}
    check(full_after == full_before,
          f"both agents switched from {dead.name} to {alive.name} with deltas, no full snapshot "
          f"(full answers {full_after}, delta answers "
          f"{ {m.name: m.answers('delta') for m in machines} })")


def main():
    build = sys.argv[1]
    central_bin = os.path.join(build, "central", "elasticdns-central")
    agent_bin = os.path.join(build, "agent", "elasticdns-agent")
    if os.geteuid() != 0:
        print("SKIPPED: needs root (network namespaces, veths, a bridge)")
        return SKIP
    missing = [t for t in ("etcd", "etcdctl", "ip", "nsenter") if not shutil.which(t)]
    if missing:
        print(f"SKIPPED: {', '.join(missing)} not installed (scripts/install-deps.sh installs "
              "etcd-server, etcd-client, iproute2, util-linux)")
        return SKIP
    dc.exit_on_signals()
    started = time.monotonic()
    lan = Lan()
    ws = harness.Workspace(prefix=f"{lan.tag}-")
    machines = []
    ok = False
    try:
        lan.build()
        etcd = NetnsEtcd(ws, shutil.which("etcd"), lan)
        etcd.start_all()
        a = etcd_test.replica(ws, central_bin, "A", etcd.endpoints(), host=MACHINES["m1"],
                              prefix=lan.prefix("m1"), new_socket=lan.tcp_socket("m1"),
                              keep_port=True)
        b = etcd_test.replica(ws, central_bin, "B", etcd.endpoints(["m3"]),
                              tokens=(a.admin_token, a.agent_token), host=MACHINES["m3"],
                              prefix=lan.prefix("m3"), new_socket=lan.tcp_socket("m3"))
        for h in ("h1", "h2"):
            a.put("servers", h, {"name": h, "address": MACHINES[h]})
        write_service(a, "api", "10.81.1.100")
        h1 = Machine(ws, lan, agent_bin, "h1", [a.url, b.url], a.agent_token_file)
        h2 = Machine(ws, lan, agent_bin, "h2", [b.url, a.url], a.agent_token_file)
        machines = [h1.start(), h2.start()]

        replication(a, b, machines)
        partition(lan, etcd, a, b, h1, h2)
        index = double_fault(a, b, machines)
        heal(lan, a, b, machines, index)
        replica_killed(b, a, machines)

        for m in machines:
            m.stop_asking()
            figure(f"agent {m.name}: {m.sent} DNS queries, {m.sent - m.failed} answered, "
                   f"{m.failed} failed")
            check(m.failed == 0 and m.sent > 100,
                  f"agent {m.name}: no DNS query failed during the faults ({m.errors[:5]})")
            never_back(m)
        ok = True
        return 0
    finally:
        for m in machines:
            m.stop_asking()
        if not ok:
            for name, kind, tail in ws.logs(tail=3000):
                print(f"----- {name} {kind} (last 3000 chars) -----\n{tail}", file=sys.stderr)
        errors = ws.stop_all()
        errors += [f"process {p.name} pid {p.pid} still running" for p in ws.procs
                   if p.running()]
        errors += lan.teardown()
        ws.close()
        if os.path.exists(ws.dir):
            errors.append(f"dir {ws.dir}")
        if errors:
            print("cleanup left: " + "; ".join(errors), flush=True)
            if ok:
                sys.exit(1)
        else:
            print(f"ok: cleaned up: every process stopped, namespaces {lan.tag}-* deleted "
                  f"(run took {time.monotonic() - started:.1f} s)", flush=True)
        if ok:
            print("figures: " + " | ".join(FIGURES), flush=True)


if __name__ == "__main__":
    sys.exit(main())
