#!/usr/bin/env python3
"""Central as replicas over a real etcd cluster (Debian's etcd-server) on loopback: three etcd
members, two central replicas (A follows all members, B only member 3), a real agent following
both replicas and answering DNS. No root needed.
    etcd_test.py BUILD_DIR
Scenarios, in order, on one cluster:
  replication     writes through either replica are on both, at the same index; a long-poll
                  moved from A to B with the same `since` gets a delta
  leader kill     kill -9 of the etcd leader during writes through both replicas: every
                  acknowledged write is there afterwards, writes resume (time printed), and
                  the agent's DNS answers never fail
  replica kill    kill -9 of replica A: the agent follows B and its changes; A restarted catches up
  cut off         member 3 stopped (B's only member): B refuses writes with 503 and marks reads
                  stale; A goes on writing; etcd compacts; member 3 back: B's watch is behind the
                  compaction, B reloads, a watcher behind gets a full snapshot, then deltas
  bad config      unreachable endpoints, wrong credentials, a prefix holding foreign keys: a clear
                  error at start, nothing written
  migration       SQLite --export, etcd --import: the same topology, generations kept
Exits 77 (SKIPPED) when etcd is not installed.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
import harness  # noqa: E402  (this directory)

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402

DEADLINE = 20  # seconds: the machine may be loaded
SKIP = 77


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def etcd_call(port, path, body, timeout=3):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class Etcd:
    """A cluster of etcd members on loopback, each with its own client and peer port.
    etcd_partition_test.py puts each member in a network namespace by overriding client_url,
    peer_url, prefix and call."""

    def __init__(self, ws, binary, n=3, extra=()):
        self.ws, self.binary, self.extra = ws, binary, list(extra)
        self.names = [f"m{i + 1}" for i in range(n)]
        self.client = {m: free_port() for m in self.names}
        self.peer = {m: free_port() for m in self.names}
        self.procs = {}
        self.starts = 0

    def client_url(self, m):
        return f"http://127.0.0.1:{self.client[m]}"

    def peer_url(self, m):
        return f"http://127.0.0.1:{self.peer[m]}"

    def prefix(self, m):
        """The command prefix of member m's processes (etcd, and etcdctl talking to it)."""
        return []

    def call(self, m, path, body, timeout=3):
        """One request to member m's gRPC-JSON gateway; the JSON answer."""
        return etcd_call(self.client[m], path, body, timeout)

    def endpoints(self, members=None):
        return [self.client_url(m) for m in (members or self.names)]

    def start(self, m, state="new"):
        self.starts += 1
        cluster = ",".join(f"{x}={self.peer_url(x)}" for x in self.names)
        argv = [self.binary, "--name", m, "--data-dir", self.ws.path(f"etcd-{m}"),
                "--listen-client-urls", self.client_url(m),
                "--advertise-client-urls", self.client_url(m),
                "--listen-peer-urls", self.peer_url(m),
                "--initial-advertise-peer-urls", self.peer_url(m),
                "--initial-cluster", cluster, "--initial-cluster-state", state,
                "--initial-cluster-token", "edns-test", "--max-txn-ops", "10000",
                "--heartbeat-interval", "100", "--election-timeout", "1000"] + self.extra
        self.procs[m] = self.ws.spawn(f"etcd-{m}-{self.starts}", argv, self.prefix(m))

    def start_all(self):
        for m in self.names:
            self.start(m)
        harness.poll("etcd cluster has a leader", self.leader, DEADLINE)

    def status(self, m):
        try:
            return self.call(m, "/v3/maintenance/status", {}, timeout=1)
        except Exception:
            return None

    def leader(self):
        for m in self.names:
            s = self.status(m)
            if s and s.get("leader") and s["leader"] == s["header"]["member_id"]:
                return m
        return None

    def move_leader(self, current, to):
        """etcdctl move-leader from the leader `current` to member `to`."""
        target = format(int(self.status(to)["header"]["member_id"]), "x")
        ctl = [shutil.which("etcdctl"), "--endpoints", self.endpoints([current])[0]]
        subprocess.run(self.prefix(current) + ctl + ["move-leader", target],
                       env=dict(os.environ, ETCDCTL_API="3"), check=True, capture_output=True,
                       timeout=20)

    def put(self, m, key, value):
        import base64
        b = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
        return self.call(m, "/v3/kv/put", {"key": b(key), "value": b(value)})

    def revision(self, m):
        return int(self.call(m, "/v3/kv/range", {"key": "AA=="})["header"]["revision"])

    def compacted(self, m, revision):
        """True when member m refuses a read at `revision` - 1: it applied the compaction."""
        try:
            self.call(m, "/v3/kv/range", {"key": "AA==", "revision": str(revision - 1)}, timeout=1)
            return False
        except urllib.error.HTTPError as e:
            return b"compacted" in e.read()
        except OSError:
            return False

    def compact(self, m, revision):
        self.call(m, "/v3/kv/compaction", {"revision": str(revision), "physical": True})


def replica(ws, binary, name, endpoints, tokens=None, extra=(), **central_args):
    """A central replica over etcd; central_args go to harness.Central (host, prefix, ...)."""
    c = harness.Central(ws, binary, admin_token=tokens and tokens[0],
                        agent_token=tokens and tokens[1],
                        extra_args=["--store", "etcd", "--etcd-endpoints", ",".join(endpoints),
                                    *extra], name=f"central-{name}", **central_args)
    return c.start(DEADLINE)


def container(cid, version, address, state="running", service="api"):
    return {"id": cid, "service": service, "server": "h1", "version": version,
            "address": address, "state": state}


def get(central, path, token=None):
    status, body, resp = central.request("GET", path, token=token or central.agent_token)
    return status, (json.loads(body) if body else None), resp


def converge(a, b):
    """Both replicas at the same index; returns it."""
    def same():
        ia, ib = a.topology()["index"], b.topology()["index"]
        return ia if ia == ib else None
    return harness.poll("both replicas at the same index", same, DEADLINE)


class Querier(threading.Thread):
    """Asks the agent for api.cloud66.local every 20 ms; counts answers without an address."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop_flag = port, threading.Event()
        self.sent = self.failed = 0
        self.errors = []

    def run(self):
        while not self.stop_flag.is_set() and self.sent < 20000:
            self.sent += 1
            try:
                r = dns.query.udp(dns.message.make_query("api.cloud66.local", "A"), "127.0.0.1",
                                  timeout=1, port=self.port)
                if r.rcode() != dns.rcode.NOERROR or not r.answer:
                    self.failed += 1
                    self.errors.append(dns.rcode.to_text(r.rcode()))
            except Exception as e:  # a timeout is a failed answer
                self.failed += 1
                self.errors.append(type(e).__name__)
            time.sleep(0.02)

    def stop(self):
        self.stop_flag.set()
        self.join(5)


def replication(a, b):
    index0 = a.topology()["index"]
    for i in range(10):
        writer = a if i % 2 == 0 else b
        ack = writer.put("containers", f"r{i}", container(f"r{i}", "v1", f"10.1.0.{10 + i}"))
        check(ack["index"] > index0 and ack["changes"] == 1,
              f"write {i} through replica {writer.name[8:]}: {ack}")
        index0 = ack["index"]
    index = converge(a, b)
    ta, tb = a.topology(), b.topology()
    check(ta == tb and index == ta["index"],
          f"both replicas hold the same topology at the same index {index}")
    a.put("containers", "r-last", container("r-last", "v1", "10.1.0.99"))
    index2 = converge(a, b)
    _, da, _ = get(a, f"/v1/topology?index={index}")
    _, db, _ = get(b, f"/v1/topology?index={index}")
    check(da["kind"] == "delta" and db["kind"] == "delta" and da == db and db["index"] == index2,
          "the same `since` gets the same delta from either replica (an agent switching gets no "
          "full snapshot)")
    return index2


def leader_kill(etcd, a, b, querier):
    acked, refused = [], []
    stop = threading.Event()
    last_ack = [0.0]

    def writer():
        i = 0
        while not stop.is_set() and i < 2000:
            c = a if i % 2 == 0 else b
            cid = f"lk{i}"
            try:
                status, body = c.json("PUT", f"/v1/containers/{cid}",
                                      container(cid, "v1", f"10.2.{i // 250}.{i % 250 + 1}",
                                                service="load"))
            except Exception as e:  # a connection error: not acknowledged
                status, body = 0, str(e)
            if status == 200:
                acked.append((cid, body["index"]))
                last_ack[0] = time.monotonic()
            else:
                refused.append((cid, status))
            i += 1
            time.sleep(0.01)

    a.put("services", "load", {"name": "load"})
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    time.sleep(1.5)
    leader = etcd.leader()
    check(leader is not None, f"etcd leader is {leader}")
    killed_at = time.monotonic()
    etcd.procs[leader].kill()
    before = len(acked)
    harness.poll("a write acknowledged after the leader kill",
                 lambda: len(acked) > before and last_ack[0] > killed_at, DEADLINE)
    resumed = max(0.0, last_ack[0] - killed_at)
    time.sleep(1.5)
    stop.set()
    t.join(10)
    print(f"figure: leader kill -> next acknowledged write: {resumed * 1000:.0f} ms "
          f"({len(acked)} acknowledged, {len(refused)} refused during the run)", flush=True)
    check(len(acked) > 50, f"{len(acked)} writes acknowledged during the run")
    index = converge(a, b)
    ta = a.topology()
    present = {c["id"] for c in ta["topology"]["containers"]}
    missing = [cid for cid, _ in acked if cid not in present]
    check(not missing, f"every acknowledged write is present after the leader kill "
                       f"({len(acked)} of them; missing {missing[:5]})")
    check(ta == b.topology(), f"both replicas agree at index {index}")
    check(querier.failed == 0, f"DNS answers never failed ({querier.sent} queries so far, "
                               f"failures: {querier.errors[:5]})")
    etcd.start(leader, state="existing")
    harness.poll("the killed member rejoined", lambda: etcd.status(leader), DEADLINE)
    return leader


def replica_kill(ws, central_bin, etcd, a, b, agent):
    """kill -9 of the replica the agent follows: it follows the other; restarted, the killed one
    catches up."""
    following = lambda c: agent.metric(f'elasticdns_agent_sync_following{{url="{c.url}"}}')  # noqa
    followed = harness.poll("the agent follows one replica",
                            lambda: a if following(a) == 1 else b if following(b) == 1 else None,
                            DEADLINE)
    other = b if followed is a else a
    killed_at = time.monotonic()
    followed.kill()
    ack = other.put("containers", "after-kill", container("after-kill", "v1", "10.3.0.1"))
    harness.poll(f"the agent follows replica {other.name[8:]} after {followed.name[8:]} was killed",
                 lambda: agent.metric("elasticdns_agent_snapshot_index") >= ack["index"],
                 DEADLINE)
    print(f"figure: kill -9 of the followed replica -> agent at the other's index: "
          f"{(time.monotonic() - killed_at) * 1000:.0f} ms", flush=True)
    check(following(other) == 1, f"the agent follows {other.name[8:]} after {followed.name[8:]}'s "
                                 "kill -9, and its changes")
    followed.start(DEADLINE)
    other.put("containers", "after-kill2", container("after-kill2", "v1", "10.3.0.2"))
    index = converge(a, b)
    check(any(c["id"] == "after-kill2" for c in followed.topology()["topology"]["containers"]),
          f"replica {followed.name[8:]} restarted catches up (index {index})")


def cut_off(ws, central_bin, agent_bin, etcd, a, b):
    """B is replaced by a replica that knows only member 3 (as one in member 3's rack), and an
    agent follows it first, A second."""
    b.stop()
    b = replica(ws, central_bin, "B3", etcd.endpoints(["m3"]), tokens=(a.admin_token,
                                                                         a.agent_token))
    index = converge(a, b)
    agent = harness.Agent(ws, agent_bin, {
        "listen": ["127.0.0.1:0"], "server_name": "h1", "metrics_listen": "127.0.0.1:0",
        "central": {"urls": [b.url, a.url], "token_file": a.agent_token_file},
        "upstreams": ["127.0.0.1:9"], "state_dir": ws.path("agent2-state"),
    }, name="agent-b3").start(DEADLINE)
    following = lambda c: agent.metric(f'elasticdns_agent_sync_following{{url="{c.url}"}}')  # noqa
    harness.poll("the second agent follows B3", lambda: following(b) == 1, DEADLINE)
    # The member cut off is not the leader: A's members 1 and 2 keep a quorum with a leader, so
    # A's writes go on without an election.
    if etcd.leader() == "m3":
        etcd.move_leader("m3", "m1")
        harness.poll("member 1 leads", lambda: etcd.leader() == "m1", DEADLINE)
    m3 = etcd.procs["m3"]
    m3.send_signal(signal.SIGSTOP)
    try:
        def b_stale():
            _, _, resp = get(b, "/v1/topology")
            return resp.getheader("ElasticDNS-Stale")
        stale = harness.poll("replica B marks its reads stale", b_stale, DEADLINE)
        check(float(stale) >= 1, f"B answers reads from memory with ElasticDNS-Stale: {stale}")
        status, body = b.json("PUT", "/v1/containers/cut-b", container("cut-b", "v1", "10.4.0.1"))
        check(status == 503 and "refused" in body["error"]["reason"],
              f"B refuses writes with 503: {body['error']['reason']}")
        for i in range(5):
            ack = a.put("containers", f"cut-a{i}", container(f"cut-a{i}", "v1", f"10.4.1.{i + 1}"))
        harness.poll("the second agent moves to A and gets its writes",
                     lambda: agent.metric("elasticdns_agent_snapshot_index") >= ack["index"],
                     DEADLINE)
        check(following(a) == 1 and following(b) == 0 and
              agent.metric("elasticdns_agent_sync_stale_answers_total") >= 1,
              "an agent on the stale replica follows A and A's writes (sync_following, "
              "stale_answers_total)")
        _, _, resp = get(a, "/v1/topology")
        check(resp.getheader("ElasticDNS-Stale") is None, "A (on members 1 and 2) is not stale")
    finally:
        m3.send_signal(signal.SIGCONT)
    converge(a, b)
    check(any(c["id"] == "cut-a4" for c in b.topology()["topology"]["containers"]),
          "B caught up after member 3 came back")
    harness.poll("B is no longer stale",
                 lambda: get(b, "/v1/topology")[2].getheader("ElasticDNS-Stale") is None, DEADLINE)
    print("ok: B is no longer stale", flush=True)
    return b


def compaction(etcd, a, b):
    """B's watch is made to reconnect after etcd compacted past it: B is stopped, member 3 (B's
    only member) is killed, A writes, etcd compacts, member 3 restarts, then B runs again."""
    index = converge(a, b)
    b.proc.send_signal(signal.SIGSTOP)
    try:
        # Member 3 goes first, so no event of these writes waits in B's socket.
        etcd.procs["m3"].kill()
        for i in range(5):
            a.put("containers", f"co-a{i}", container(f"co-a{i}", "v1", f"10.5.0.{i + 1}"))
        leader = etcd.leader()
        rev = etcd.revision(leader)
        etcd.compact(leader, rev)
        etcd.start("m3", state="existing")
        harness.poll("member 3 restarted and applied the compaction",
                     lambda: etcd.compacted("m3", rev), DEADLINE)
        print(f"ok: etcd compacted at revision {rev}; B's watch was at {index}", flush=True)
    finally:
        b.proc.send_signal(signal.SIGCONT)
    try:
        harness.poll("B logs that its watch fell behind the compaction",
                     lambda: "behind the compaction" in b.proc.stderr(), DEADLINE)
    except TimeoutError:
        print(b.proc.stderr()[-3000:])
        raise
    converge(a, b)
    check(any(c["id"] == "co-a4" for c in b.topology()["topology"]["containers"]),
          "B reloaded after its watch fell behind the compaction")
    status, body, resp = get(b, f"/v1/topology?index={index}")
    check(body["kind"] == "full", "a watcher behind B's reload gets a full snapshot")
    new_index = body["index"]
    b.put("containers", "co-b", container("co-b", "v1", "10.5.1.1"))
    status, body, _ = get(b, f"/v1/topology?index={new_index}")
    check(body["kind"] == "delta" and body["since"] == new_index, "then deltas again")


def bad_config(ws, central_bin, etcd):
    def start_fails(args, what, expect):
        p = subprocess.run([central_bin, "--listen", "127.0.0.1:0", "--admin-token-file",
                            ws.path("admin.token"), "--store", "etcd", *args],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode != 0 and expect in p.stderr,
              f"{what}: exits {p.returncode}: {p.stderr.strip()[:160]}")
    dead = f"http://127.0.0.1:{free_port()}"
    start_fails(["--etcd-endpoints", dead], "unreachable endpoint", "no endpoint answered")
    m = etcd.leader() or "m1"
    etcd.put(m, "/foreign/app-key", "x")
    start_fails(["--etcd-endpoints", etcd.endpoints()[0], "--etcd-prefix", "/foreign/"],
                "a prefix holding foreign data", "not central's")
    rev = etcd.revision(m)
    check(etcd.revision(m) == rev, "nothing written by the refused starts")


def bad_credentials(ws, central_bin, etcd_bin):
    """A one-member cluster with auth on: a wrong password is refused at start, the right one
    works."""
    single = Etcd(ws, etcd_bin, n=1)
    single.names = ["auth"]
    single.client = {"auth": free_port()}
    single.peer = {"auth": free_port()}
    single.start_all()
    ctl = shutil.which("etcdctl")
    env = dict(os.environ, ETCDCTL_API="3")
    ep = single.endpoints()[0]
    for cmd in (["user", "add", "root:rootpw"], ["user", "add", "central:goodpw"],
                ["role", "add", "central"],
                ["role", "grant-permission", "central", "--prefix=true", "readwrite", "/edns/"],
                ["user", "grant-role", "central", "central"], ["auth", "enable"]):
        subprocess.run([ctl, "--endpoints", ep, *cmd], env=env, check=True, capture_output=True,
                       timeout=20)
    conf = ws.write("auth.yaml", "store: etcd\netcd:\n  endpoints: [" + ep + "]\n"
                    "  prefix: /edns/\n  username: central\n  password_file: " +
                    ws.path("pw") + "\n")
    for pw, ok in (("wrongpw", False), ("goodpw", True)):
        harness.token_file(ws.path("pw"), pw)
        p = subprocess.Popen([central_bin, "--config", conf, "--listen", "127.0.0.1:0",
                              "--admin-token-file", ws.path("admin.token")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            if ok:
                line = p.stdout.readline()
                check(line.startswith("listening on"), "the right password: central starts")
            else:
                _, err = p.communicate(timeout=30)
                check(p.returncode != 0 and "cannot authenticate" in err,
                      f"a wrong password: exits {p.returncode}: {err.strip()[:160]}")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    single.procs["auth"].stop()


def migration(ws, central_bin, etcd, source):
    export = ws.path("export.json")
    p = subprocess.run([central_bin, "--data-dir", source.data_dir, "--export", export],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"--export from SQLite: {p.stderr.strip()}")
    args = ["--store", "etcd", "--etcd-endpoints", ",".join(etcd.endpoints()),
            "--etcd-prefix", "/migrated/"]
    p = subprocess.run([central_bin, *args, "--import", export], capture_output=True, text=True,
                       timeout=60)
    check(p.returncode == 0, f"--import into etcd: {p.stderr.strip()}")
    p = subprocess.run([central_bin, *args, "--import", export], capture_output=True, text=True,
                       timeout=60)
    check(p.returncode != 0 and "not empty" in p.stderr, "a second import is refused: not empty")
    with open(export) as f:
        before = json.load(f)["topology"]
    c = harness.Central(ws, central_bin, extra_args=args).start(DEADLINE)
    after = c.topology()["topology"]
    c.stop()
    strip = lambda t: {k: v for k, v in t.items() if k != "index"}  # noqa: E731
    check(strip(after) == strip(before),
          "the etcd replica serves the SQLite topology (versions keep their generations)")


def main():
    build = sys.argv[1]
    central_bin = os.path.join(build, "central", "elasticdns-central")
    agent_bin = os.path.join(build, "agent", "elasticdns-agent")
    etcd_bin = shutil.which("etcd")
    if not etcd_bin or not shutil.which("etcdctl"):
        print("SKIPPED: etcd and etcdctl are not installed (scripts/install-deps.sh installs "
              "etcd-server and etcd-client)")
        return SKIP
    ws = harness.Workspace(prefix="edns-etcd-")
    querier = None
    try:
        etcd = Etcd(ws, etcd_bin)
        etcd.start_all()
        a = replica(ws, central_bin, "A", etcd.endpoints())
        b = replica(ws, central_bin, "B", etcd.endpoints(["m3", "m1", "m2"]),
                    tokens=(a.admin_token, a.agent_token))
        a.put("servers", "h1", {"name": "h1", "address": "127.0.0.1"})
        a.put("services", "api", {"name": "api"})
        b.put("containers", "c0", container("c0", "v1", "10.1.0.1"))
        replication(a, b)

        agent = harness.Agent(ws, agent_bin, {
            "listen": ["127.0.0.1:0"], "server_name": "h1",
            "metrics_listen": "127.0.0.1:0",
            "central": {"urls": [a.url, b.url], "token_file": a.agent_token_file},
            "upstreams": ["127.0.0.1:9"], "state_dir": ws.path("agent-state"),
        }).start(DEADLINE)
        harness.poll("the agent answers api.cloud66.local", lambda: dns.query.udp(
            dns.message.make_query("api.cloud66.local", "A"), "127.0.0.1", timeout=1,
            port=agent.port).answer, DEADLINE)
        querier = Querier(agent.port)
        querier.start()

        leader_kill(etcd, a, b, querier)
        replica_kill(ws, central_bin, etcd, a, b, agent)
        b = cut_off(ws, central_bin, agent_bin, etcd, a, b)
        compaction(etcd, a, b)
        querier.stop()
        check(querier.failed == 0 and querier.sent > 100,
              f"DNS answers never failed across the faults ({querier.sent} queries, "
              f"{querier.failed} failed {querier.errors[:5]})")
        bad_config(ws, central_bin, etcd)
        bad_credentials(ws, central_bin, etcd_bin)

        sqlite = harness.Central(ws, central_bin).start(DEADLINE)
        sqlite.put("servers", "h9", {"name": "h9", "address": "127.0.0.9"})
        sqlite.put("services", "api", {"name": "api"})
        for v in ("v1", "v2", "v3"):
            sqlite.put("containers", f"m-{v}", container(f"m-{v}", v, "10.9.0.1") | {"server": "h9"})
        sqlite.stop()
        migration(ws, central_bin, etcd, sqlite)
        return 0
    finally:
        if querier:
            querier.stop()
        ws.close()


if __name__ == "__main__":
    sys.exit(main())
