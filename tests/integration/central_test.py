#!/usr/bin/env python3
"""Integration tests of elasticdns-central and elasticdnsctl: the real binaries, real sockets on
127.0.0.1 (port 0, read back from the `listening on` line), a real SQLite database in a temp dir.

usage: central_test.py --central PATH --ctl PATH [unittest args, e.g. ApiTest]
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
import harness  # noqa: E402  (this directory)

CENTRAL = None
CTL = None
ADMIN = "admin-token-0123456789"
AGENT = "agent-token-9876543210"


def wait_for(predicate, deadline_s=5.0, what="condition"):
    harness.poll(what, predicate, deadline_s, interval=0.01)


def start_central(ws, config=None):
    """A central on 127.0.0.1 (a port the kernel picks) with this suite's tokens."""
    return harness.Central(ws, CENTRAL, admin_token=ADMIN, agent_token=AGENT,
                           config_text=config).start()


class CentralTestCase(unittest.TestCase):
    config = None

    def setUp(self):
        self.ws = harness.Workspace(prefix="central-test-")
        self.addCleanup(self.ws.close)
        self.central = start_central(self.ws, self.config)

    def tearDown(self):
        self.ws.stop_all()
        # Tokens are never logged.
        for name, kind, text in self.ws.logs(tail=None):
            self.assertNotIn(ADMIN, text, f"{name} {kind}")
            self.assertNotIn(AGENT, text, f"{name} {kind}")

    def container(self, cid, service="api", version="v1", server="host1", address="10.0.0.1",
                  **extra):
        body = {"service": service, "version": version, "server": server, "address": address}
        body.update(extra)
        return self.central.json("PUT", "/v1/containers/" + cid, body)


class ApiTest(CentralTestCase):
    def test_every_resource_put_and_delete(self):
        c = self.central
        self.assertEqual(c.json("PUT", "/v1/servers/host1",
                                {"address": "192.0.2.1", "labels": {"zone": "a"}})[0], 200)
        self.assertEqual(c.json("PUT", "/v1/services/api",
                                {"dns_behaviour": "non-versioned", "load_balancing": "closest",
                                 "ports": ["3000:80:443"]})[0], 200)
        self.assertEqual(self.container("c1", version="v1")[0], 200)
        status, body = self.container("c2", version="v2", address6="fd00::2")
        self.assertEqual(status, 200)
        self.assertEqual(body["changes"], 2)  # the version's first appearance, then the container
        self.assertEqual(c.json("PUT", "/v1/datasources/mysql/main",
                                {"primary": True, "addresses": ["10.0.1.1", "fd00::1"]})[0], 200)
        t = c.topology()
        self.assertEqual(t["kind"], "full")
        topo = t["topology"]
        self.assertEqual(t["index"], topo["index"])
        self.assertEqual(topo["servers"], [{"name": "host1", "address": "192.0.2.1",
                                            "labels": {"zone": "a"}}])
        self.assertEqual(topo["services"][0]["load_balancing"], "closest")
        self.assertEqual(topo["services"][0]["ports"], [{"container": 3000, "http": 80,
                                                         "https": 443}])
        self.assertEqual(sorted(x["id"] for x in topo["containers"]), ["c1", "c2"])
        self.assertEqual(topo["datasources"][0]["group"], "main")
        self.assertEqual([v["name"] for v in topo["versions"]], ["v1", "v2"])
        self.assertEqual(topo["latest_versions"], {"api": "v2"})
        # Draining the newest container makes the older version the latest.
        self.assertEqual(self.container("c2", version="v2", state="draining")[0], 200)
        self.assertEqual(c.topology()["topology"]["latest_versions"], {"api": "v1"})
        # An identical put changes nothing and keeps the index.
        index = c.topology()["index"]
        status, body = self.container("c2", version="v2", state="draining")
        self.assertEqual((status, body["changes"], body["index"]), (200, 0, index))
        for path in ["/v1/containers/c1", "/v1/containers/c2", "/v1/servers/host1",
                     "/v1/services/api", "/v1/datasources/mysql/main"]:
            self.assertEqual(c.json("DELETE", path)[0], 200, path)
            self.assertEqual(c.json("DELETE", path)[0], 404, path)
        topo = c.topology()["topology"]
        for kind in ["servers", "services", "containers", "datasources"]:
            self.assertEqual(topo[kind], [], kind)
        self.assertEqual(topo["latest_versions"], {})
        # Versions keep their order after their containers are gone: v1 first, then v2, v3.
        self.assertEqual(self.container("c3", version="v3")[0], 200)
        self.assertEqual(self.container("c4", version="v1")[0], 200)
        gens = {v["name"]: v["generation"] for v in c.topology()["topology"]["versions"]}
        self.assertLess(gens["v1"], gens["v2"])
        self.assertLess(gens["v2"], gens["v3"])
        self.assertEqual(c.topology()["topology"]["latest_versions"], {"api": "v3"})

    def test_apply_service_yml(self):
        yml = ("services:\n"
               "  api:\n"
               "    dns_behaviour: versioned\n"
               "    load_balancing: sticky\n"
               "    ports: [\"3000:80:443\", {container: 5000, udp: 5000}]\n"
               "    traffic_matches: [api.example.com]\n"
               "  web:\n"
               "    load_balancing: closest\n")
        status, body = self.central.json("POST", "/v1/apply", yml)
        self.assertEqual(status, 200, body)
        services = {s["name"]: s for s in self.central.topology()["topology"]["services"]}
        self.assertEqual(services["api"], {
            "name": "api", "dns_behaviour": "versioned", "load_balancing": "sticky",
            "ports": [{"container": 3000, "http": 80, "https": 443},
                      {"container": 5000, "udp": 5000}],
            "traffic_matches": ["api.example.com"]})
        self.assertEqual(services["web"]["dns_behaviour"], "versioned")
        self.assertEqual(services["web"]["load_balancing"], "closest")
        # Unknown directives: 400 naming every one of them; nothing changes.
        before = self.central.topology()
        status, body = self.central.json(
            "POST", "/v1/apply",
            "services:\n  api:\n    image: x\n    git_url: y\n  web:\n    build_command: z\n")
        self.assertEqual(status, 400)
        for name in ["api/image", "api/git_url", "web/build_command"]:
            self.assertIn(name, body["error"]["reason"])
        self.assertEqual(self.central.topology(), before)

    def test_auth(self):
        c = self.central
        for token in [None, "wrong", AGENT]:
            status, data, resp = c.request("PUT", "/v1/servers/h", {"address": "192.0.2.1"},
                                           token=token)
            self.assertEqual(status, 401, token)
            self.assertEqual(data, b"")
        status, data, _ = c.request("GET", "/v1/topology", token=None)
        self.assertEqual((status, data), (401, b""))
        status, data, _ = c.request("GET", "/v1/topology", token="x" + AGENT)
        self.assertEqual(status, 401)
        status, _, _ = c.request("GET", "/v1/topology", token=None,
                                 headers={"Authorization": "Basic " + AGENT})
        self.assertEqual(status, 401)
        self.assertEqual(c.request("GET", "/v1/topology", token=AGENT)[0], 200)
        self.assertEqual(c.request("GET", "/v1/topology", token=ADMIN)[0], 200)
        self.assertEqual(c.request("GET", "/healthz", token=None)[0], 200)
        self.assertEqual(c.topology()["index"], 0)
        self.assertGreaterEqual(c.metric("elasticdns_central_auth_failures_total"), 6)

    def test_metrics(self):
        self.container("c1")
        status, data, resp = self.central.request("GET", "/metrics", token=None)
        self.assertEqual(status, 200)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/plain"))
        text = data.decode()
        self.assertIn('elasticdns_central_records{kind="container"} 1', text)
        self.assertIn("elasticdns_central_index 2", text)
        self.assertIn("elasticdns_central_commit_seconds_bucket", text)


class WatchTest(CentralTestCase):
    config = "change_log_retention: 5\n"

    def long_poll(self, index, wait, results):
        start = time.monotonic()
        status, body = self.central.json("GET", "/v1/topology?index=%d&wait=%s" % (index, wait),
                                         token=AGENT)
        results.append((status, body, time.monotonic() - start))

    def test_watch_wakes_on_write(self):
        self.container("c1")
        index = self.central.topology()["index"]
        results = []
        threads = [threading.Thread(target=self.long_poll, args=(index, "30s", results))
                   for _ in range(3)]
        for t in threads:
            t.start()
        wait_for(lambda: self.central.metric("elasticdns_central_watchers") == 3,
                 what="3 watchers")
        self.container("c2", address="10.0.0.2")
        for t in threads:
            t.join(10)
        self.assertEqual(len(results), 3)
        for status, body, elapsed in results:
            self.assertEqual(status, 200)
            self.assertEqual(body["kind"], "delta")
            self.assertEqual(body["since"], index)
            self.assertEqual(body["index"], index + 1)
            self.assertEqual([(c["op"], c["kind"], c["key"]) for c in body["changes"]],
                             [("put", "container", "c2")])
            self.assertLess(elapsed, 10)
        self.assertEqual(self.central.metric("elasticdns_central_watchers"), 0)

    def test_watch_deadline(self):
        self.container("c1")
        index = self.central.topology()["index"]
        results = []
        self.long_poll(index, "300ms", results)
        status, body, elapsed = results[0]
        self.assertEqual(status, 200)
        self.assertGreaterEqual(elapsed, 0.29)
        self.assertEqual(body, {"kind": "delta", "index": index, "since": index, "changes": []})

    def test_delta_then_full_when_too_far_behind(self):
        self.container("c1")  # index 2 (version, container)
        for i in range(8):
            self.container("c1", address="10.0.0.%d" % (i + 2))  # index 10
        t = self.central.topology()
        self.assertEqual(t["index"], 10)
        # Retention 5: changes 6..10 are held, so a client at 5 gets a delta, one at 4 a full.
        status, body = self.central.json("GET", "/v1/topology?index=5", token=AGENT)
        self.assertEqual((body["kind"], body["since"], len(body["changes"])), ("delta", 5, 5))
        status, body = self.central.json("GET", "/v1/topology?index=4&wait=10s", token=AGENT)
        self.assertEqual(body, t)
        # A client ahead of central (central restored from an older copy) gets a full at once.
        start = time.monotonic()
        status, body = self.central.json("GET", "/v1/topology?index=99&wait=10s", token=AGENT)
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(body, t)
        # Deltas survive a restart: the change log is in the database.
        self.central.stop()
        self.central.start()
        status, body = self.central.json("GET", "/v1/topology?index=7", token=AGENT)
        self.assertEqual((body["kind"], [c["index"] for c in body["changes"]]),
                         ("delta", [8, 9, 10]))

    def test_watcher_that_hangs_up_is_dropped(self):
        index = self.central.topology()["index"]
        s = socket.create_connection(("127.0.0.1", self.central.port))
        s.sendall(("GET /v1/topology?index=%d&wait=60s HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % (index, AGENT)).encode())
        wait_for(lambda: self.central.metric("elasticdns_central_watchers") == 1,
                 what="a watcher")
        s.close()
        wait_for(lambda: self.central.metric("elasticdns_central_watchers") == 0,
                 what="the watcher to go")


    def test_large_responses_reach_slow_readers_whole(self):
        """Responses larger than a socket buffer takes, to woken long-polls and to an HTTP/1.0
        client that read late and slowly, arrive whole; keep-alive connections go on."""
        # Applies of 55 services with 64 traffic_matches of ~250 bytes (each ~0.9 MB, under the
        # 1 MiB body limit) until the snapshot is larger than a socket's send buffer can grow
        # (tcp_wmem's maximum, 4 MB by default): a single sendmsg cannot take it.
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            wmem_max = int(f.read().split()[2])
        names = 55
        applies = wmem_max * 5 // 4 // (names * 64 * 250) + 1

        def apply(k):
            yml = "services:\n" + "".join(
                "  s%d:\n    traffic_matches: [%s]\n" % (i, ", ".join(
                    '"%s"' % ("m%d-%d-" % (i, j) + "x" * 240) for j in range(64)))
                for i in range(k * names, (k + 1) * names))
            status, body = self.central.json("POST", "/v1/apply", yml)
            self.assertEqual(status, 200, body)

        for k in range(applies - 1):
            apply(k)
        index = self.central.topology()["index"]

        def connect():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
            s.settimeout(10)
            s.connect(("127.0.0.1", self.central.port))
            return s

        def read_response(s, slow):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                self.assertTrue(chunk, "closed before the head")
                data += chunk
            head, body = data.split(b"\r\n\r\n", 1)
            length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")][0])
            reads = 0
            while len(body) < length:
                chunk = s.recv(4096)
                self.assertTrue(chunk, "closed after %d of %d body bytes" % (len(body), length))
                body += chunk
                reads += 1
                if slow and reads % 64 == 0:
                    time.sleep(0.01)
            self.assertEqual(len(body), length)
            return head, json.loads(body)

        watchers = [connect() for _ in range(3)]
        for s in watchers:
            s.sendall(("GET /v1/topology?index=%d&wait=30s HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\n\r\n" % (index, AGENT)).encode())
        wait_for(lambda: self.central.metric("elasticdns_central_watchers") == 3,
                 what="3 watchers")
        apply(applies - 1)
        time.sleep(0.5)  # nobody reads yet: central has written what the buffers take
        topology = self.central.topology()
        services = topology["topology"]["services"]
        self.assertEqual(len(services), names * applies)
        self.assertIn("m%d-63-" % (names * applies - 1) + "x" * 240,
                      [m for svc in services for m in svc["traffic_matches"]])
        for s in watchers:
            # More changes than the retained log (5): the woken watchers get the full snapshot.
            head, woken = read_response(s, slow=True)
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            self.assertEqual(woken, topology)
            # The same connection serves the next request.
            s.sendall(("GET /v1/topology?index=%d HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\n\r\n" % (index, AGENT)).encode())
            _, again = read_response(s, slow=False)
            self.assertEqual(again, topology)
            s.close()
        # HTTP/1.0: the whole snapshot, then central closes.
        s = connect()
        s.sendall(("GET /v1/topology HTTP/1.0\r\nAuthorization: Bearer %s\r\n\r\n"
                   % AGENT).encode())
        time.sleep(0.5)
        head, full = read_response(s, slow=True)
        self.assertTrue(head.startswith(b"HTTP/1.0 200"), head)
        self.assertEqual(full, topology)
        self.assertEqual(s.recv(1), b"")
        s.close()


class LimitsTest(CentralTestCase):
    config = "max_watchers: 2\nmax_connections: 20\nidle_timeout: 1s\n"

    def raw(self, data, read=True):
        s = socket.create_connection(("127.0.0.1", self.central.port), timeout=5)
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                # Central may answer (413) and stop reading before the whole request is sent;
                # its answer is still there to read.
                pass
            out = b""
            while read:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    def test_watcher_limit(self):
        index = self.central.topology()["index"]
        results = []
        threads = [threading.Thread(target=lambda: results.append(self.central.json(
            "GET", "/v1/topology?index=%d&wait=30s" % index, token=AGENT))) for _ in range(2)]
        for t in threads:
            t.start()
        wait_for(lambda: self.central.metric("elasticdns_central_watchers") == 2,
                 what="2 watchers")
        status, body = self.central.json("GET", "/v1/topology?index=%d&wait=30s" % index,
                                         token=AGENT)
        self.assertEqual(status, 503)
        self.assertEqual(body["error"]["field"], "wait")
        self.container("c1")
        for t in threads:
            t.join(10)
        self.assertEqual([r[0] for r in results], [200, 200])

    def test_connection_limit_and_idle_timeout(self):
        socks = []
        try:
            for _ in range(20):  # max_connections
                socks.append(socket.create_connection(("127.0.0.1", self.central.port)))
                socks[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                socks[-1].settimeout(5)
                data = b""
                while not data.endswith(b"}"):
                    data += socks[-1].recv(1000)
                self.assertTrue(data.startswith(b"HTTP/1.1 200"))
            # Beyond the limit a connection is closed at once.
            extra = socket.create_connection(("127.0.0.1", self.central.port))
            socks.append(extra)
            extra.settimeout(5)
            try:
                self.assertEqual(extra.recv(1), b"")
            except ConnectionResetError:
                pass
            # Idle connections are closed by the server after idle_timeout (1s).
            start = time.monotonic()
            self.assertEqual(socks[0].recv(1000), b"")
            self.assertLess(time.monotonic() - start, 4)
        finally:
            for s in socks:
                s.close()
        wait_for(lambda: self.central.metric("elasticdns_central_connections") is not None,
                 what="central to accept again")
        self.assertGreaterEqual(
            self.central.metric("elasticdns_central_connections_rejected_total"), 1)

    def test_header_and_body_limits(self):
        out = self.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:40])
        big = json.dumps({"address": "192.0.2.1", "labels": {"k": "v" * (1 << 20)}}).encode()
        out = self.raw(b"PUT /v1/servers/h HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                       ADMIN.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(big) + big)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:40])
        out = self.raw(b"GARBAGE\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out[:40])
        self.assertEqual(self.central.topology()["index"], 0)


def deep(n):
    return "[" * n + "]" * n


MALFORMED = [
    # method, path, body, expected status, expected error field (None: no JSON check)
    ("PUT", "/v1/servers/Host1", {"address": "192.0.2.1"}, 400, "name"),
    ("PUT", "/v1/servers/-bad-", {"address": "192.0.2.1"}, 400, "name"),
    ("PUT", "/v1/servers/host1", {"address": "300.1.1.1"}, 400, "address"),
    ("PUT", "/v1/servers/host1", {}, 400, "address"),
    ("PUT", "/v1/servers/host1", "{not json", 400, "body"),
    ("PUT", "/v1/servers/host1", [], 400, "body"),
    ("PUT", "/v1/servers/host1", "", 400, "body"),
    ("PUT", "/v1/servers/host1", {"address": "192.0.2.1", "extra": 1}, 400, "extra"),
    ("PUT", "/v1/servers/host1", {"name": "host2", "address": "192.0.2.1"}, 400, "name"),
    ("PUT", "/v1/servers/host1", {"address": "192.0.2.1", "labels": ["a"]}, 400, "labels"),
    ("PUT", "/v1/servers/host1", '{"address":"192.0.2.1","labels":' + deep(100) + "}", 400,
     "body"),
    ("PUT", "/v1/services/api", {"dns_behaviour": "sometimes"}, 400, "dns_behaviour"),
    ("PUT", "/v1/services/api", {"load_balancing": "random"}, 400, "load_balancing"),
    ("PUT", "/v1/services/api", {"ports": ["70000"]}, 400, "ports/0"),
    ("PUT", "/v1/services/api", {"ports": "3000"}, 400, "ports"),
    ("PUT", "/v1/services/api", {"ports": ["3000"] * 33}, 400, "ports"),
    ("PUT", "/v1/services/a_b", {}, 400, "name"),
    ("PUT", "/v1/containers/c1", {"version": "v1", "server": "h", "address": "10.0.0.1"}, 400,
     "service"),
    ("PUT", "/v1/containers/c1", {"service": "api", "version": "v 1", "server": "h",
                                  "address": "10.0.0.1"}, 400, "version"),
    ("PUT", "/v1/containers/c1", {"service": "api", "version": "v1", "server": "h"}, 400,
     "address"),
    ("PUT", "/v1/containers/c1", {"service": "api", "version": "v1", "server": "h",
                                  "address6": "10.0.0.1"}, 400, "address6"),
    ("PUT", "/v1/containers/c1", {"service": "api", "version": "v1", "server": "h",
                                  "address": "10.0.0.1", "state": "stopped"}, 400, "state"),
    ("PUT", "/v1/containers/c1", {"service": "api", "version": "v1", "server": "Host",
                                  "address": "10.0.0.1"}, 400, "server"),
    ("PUT", "/v1/containers/c%2F1", {"service": "api", "version": "v1", "server": "h",
                                     "address": "10.0.0.1"}, 400, "id"),
    ("PUT", "/v1/containers/c1", {"id": "c2", "service": "api", "version": "v1", "server": "h",
                                  "address": "10.0.0.1"}, 400, "id"),
    ("PUT", "/v1/datasources/mysql/main", {"addresses": []}, 400, "addresses"),
    ("PUT", "/v1/datasources/mysql/main", {"addresses": ["nope"]}, 400, "addresses/0"),
    ("PUT", "/v1/datasources/mysql/main", {"addresses": ["10.0.0.1"], "primary": "yes"}, 400,
     "primary"),
    ("PUT", "/v1/datasources/mysql/main", {"addresses": ["10.0.0.1"] * 65}, 400, "addresses"),
    ("PUT", "/v1/datasources/MySQL/main", {"addresses": ["10.0.0.1"]}, 400, "type"),
    ("POST", "/v1/apply", "services:\n  api:\n    image: x\n", 400, "services/api"),
    ("POST", "/v1/apply", "services: [valid", 400, ""),
    ("POST", "/v1/apply", "services: []\n", 400, "services"),
    ("POST", "/v1/apply", "services:\n  api:\n    dns_behaviour: maybe\n", 400,
     "services/api/dns_behaviour"),
    ("POST", "/v1/apply", "databases: [mysql]\n", 400, "databases"),
    ("POST", "/v1/apply", "", 400, "body"),
    ("POST", "/v1/apply", "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, "
     "*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, "
     "*c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n", 400, ""),
    ("GET", "/v1/topology?index=abc", None, 400, "index"),
    ("GET", "/v1/topology?index=-1", None, 400, "index"),
    ("GET", "/v1/topology?wait=5s", None, 400, "wait"),
    ("GET", "/v1/topology?index=1&wait=forever", None, 400, "wait"),
    ("GET", "/v1/topology?foo=1", None, 400, "query"),
    ("DELETE", "/v1/containers/nonexistent", None, 404, "container"),
    ("DELETE", "/v1/servers/host1", '{"x":1}', 400, "body"),
    ("PATCH", "/v1/servers/host1", {"address": "192.0.2.1"}, 405, "method"),
    ("POST", "/v1/servers/host1", {"address": "192.0.2.1"}, 405, "method"),
    ("GET", "/v1/nothing", None, 404, "path"),
    ("PUT", "/v1/servers/host1/extra", {"address": "192.0.2.1"}, 404, "path"),
    ("PUT", "/v1/datasources/mysql", {"addresses": ["10.0.0.1"]}, 404, "path"),
    ("PUT", "/v1/servers/host1?x=1", {"address": "192.0.2.1"}, 400, "query"),
]


class MalformedTest(CentralTestCase):
    def test_malformed_requests_change_nothing(self):
        self.assertGreaterEqual(len(MALFORMED), 30)
        self.container("c1")
        self.central.json("PUT", "/v1/servers/host1", {"address": "192.0.2.1"})
        before = self.central.topology()
        for method, path, body, want_status, want_field in MALFORMED:
            with self.subTest(method=method, path=path, body=str(body)[:60]):
                status, data, resp = self.central.request(method, path, body)
                self.assertEqual(status, want_status, data[:200])
                err = json.loads(data)["error"]
                self.assertIsInstance(err["reason"], str)
                self.assertTrue(err["reason"])
                self.assertEqual(err["field"], want_field, err)
                self.assertEqual(self.central.topology(), before)
        self.assertEqual(self.central.request("GET", "/healthz", token=None)[0], 200)


class DurabilityTest(CentralTestCase):
    def test_kill9_during_writes_loses_no_acknowledged_write(self):
        acked = {}  # container id → (address, index)
        lock = threading.Lock()
        stop = threading.Event()

        def writer(n):
            conn = http.client.HTTPConnection("127.0.0.1", self.central.port, timeout=10)
            i = 0
            while not stop.is_set():
                cid = "w%d-%d" % (n, i)
                body = json.dumps({"service": "api", "version": "v%d" % (i % 7), "server": "h",
                                   "address": "10.%d.%d.%d" % (n, (i >> 8) & 255, i & 255)})
                try:
                    conn.request("PUT", "/v1/containers/" + cid, body=body,
                                 headers={"Authorization": "Bearer " + ADMIN})
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException):
                    return  # central died mid-request: this write was not acknowledged
                if resp.status == 200:
                    with lock:
                        acked[cid] = (json.loads(body)["address"], json.loads(data)["index"])
                i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 300, deadline_s=30, what="300 acknowledged writes")
        self.central.kill()  # in the middle of the stream
        stop.set()
        for t in threads:
            t.join(10)
        with lock:
            snapshot = dict(acked)
            max_index = max(i for _, i in snapshot.values())
        self.central.start()
        topo = self.central.topology()
        self.assertGreaterEqual(topo["index"], max_index)
        have = {c["id"]: c["address"] for c in topo["topology"]["containers"]}
        lost = [cid for cid, (addr, _) in snapshot.items() if have.get(cid) != addr]
        self.assertEqual(lost, [])
        # The index continues after the restart.
        status, body = self.container("after-restart")
        self.assertEqual(status, 200)
        self.assertGreater(body["index"], topo["index"])

    def test_index_monotonic_across_restarts(self):
        last = 0
        for round_ in range(4):
            status, body = self.container("c%d" % round_, version="r%d" % round_)
            self.assertEqual(status, 200)
            self.assertGreater(body["index"], last)
            last = body["index"]
            if round_ % 2:
                self.central.kill()
            else:
                self.central.stop()
            self.central.start()
            self.assertEqual(self.central.topology()["index"], last)
        # Deleting everything still moves the index forward.
        for round_ in range(4):
            status, body = self.central.json("DELETE", "/v1/containers/c%d" % round_)
            self.assertGreater(body["index"], last)
            last = body["index"]
        self.central.stop()
        self.central.start()
        self.assertEqual(self.central.topology()["index"], last)
        self.assertEqual([v["name"] for v in self.central.topology()["topology"]["versions"]],
                         ["r0", "r1", "r2", "r3"])


class CtlTest(CentralTestCase):
    def ctl(self, *args, token=ADMIN, url=None, env_token=None, stdin=None):
        env = dict(os.environ)
        env["ELASTICDNS_URL"] = url or self.central.url
        env.pop("ELASTICDNS_TOKEN", None)
        if env_token:
            env["ELASTICDNS_TOKEN"] = env_token
        cmd = [CTL] + (["--token", token] if token else []) + list(args)
        p = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def test_ctl_end_to_end(self):
        yml = os.path.join(self.ws.dir, "service.yml")
        with open(yml, "w") as f:
            f.write("services:\n  api:\n    load_balancing: sticky\n    ports: [\"3000:80\"]\n")
        self.assertEqual(self.ctl("apply", yml)[0], 0)
        self.assertEqual(self.ctl("server", "put", "host1", "--address", "192.0.2.1",
                                  "--label", "zone=a")[0], 0)
        # Port 81: api has http 80 without traffic_matches, so central refuses a second
        # service there (the traffic port rule).
        self.assertEqual(self.ctl("service", "put", "web", "--load-balancing", "closest",
                                  "--port", "8080:81", "--traffic-match", "www.example.com")[0], 0)
        self.assertEqual(self.ctl("container", "put", "c1", "--service", "api", "--version",
                                  "v1", "--server", "host1", "--address", "10.0.0.1")[0], 0)
        self.assertEqual(self.ctl("datasource", "put", "mysql", "main", "--address",
                                  "10.0.1.1", "--address", "10.0.1.2", "--primary")[0], 0)
        # The token may come from a file or the environment.
        token_file = os.path.join(self.ws.dir, "admin.token")
        rc, out, err = self.ctl("topology", token=None, env_token=AGENT)
        self.assertEqual(rc, 0, err)
        topo = json.loads(out)["topology"]
        self.assertEqual(topo["services"][0]["load_balancing"], "sticky")
        self.assertEqual(topo["servers"][0]["labels"], {"zone": "a"})
        self.assertEqual(topo["services"][1]["traffic_matches"], ["www.example.com"])
        self.assertEqual(topo["datasources"][0]["addresses"], ["10.0.1.1", "10.0.1.2"])
        self.assertTrue(topo["datasources"][0]["primary"])
        self.assertEqual(topo["containers"][0]["id"], "c1")
        index = json.loads(out)["index"]
        # watch: the first line is the snapshot, the second the delta of the next write.
        p = subprocess.Popen([CTL, "--url", self.central.url, "--token-file", token_file,
                              "watch", "--count", "2", "--wait", "20s"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = json.loads(p.stdout.readline())
            self.assertEqual((first["kind"], first["index"]), ("full", index))
            wait_for(lambda: self.central.metric("elasticdns_central_watchers") == 1,
                     what="ctl watch")
            self.assertEqual(self.ctl("container", "delete", "c1")[0], 0)
            second = json.loads(p.stdout.readline())
            self.assertEqual(second["kind"], "delta")
            self.assertEqual([(c["op"], c["key"]) for c in second["changes"]],
                             [("delete", "c1")])
            self.assertEqual(p.wait(10), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(self.ctl("datasource", "delete", "mysql", "main")[0], 0)
        self.assertEqual(self.ctl("server", "delete", "host1")[0], 0)
        self.assertEqual(self.ctl("service", "delete", "web")[0], 0)

    def test_ctl_errors(self):
        rc, out, err = self.ctl("container", "put", "c1", "--service", "api", "--version",
                                "v1", "--server", "host1", "--address", "999.0.0.1")
        self.assertEqual(rc, 1)
        self.assertIn("address", err)
        self.assertIn("IPv4", err)
        rc, _, err = self.ctl("server", "delete", "nope")
        self.assertEqual(rc, 1)
        self.assertIn("404", err)
        rc, _, err = self.ctl("server", "put", "h", "--address", "192.0.2.1", token="bad")
        self.assertEqual(rc, 1)
        self.assertIn("unauthorized", err)
        rc, _, err = self.ctl("server", "put", "h", "--address", "192.0.2.1", token=AGENT)
        self.assertEqual(rc, 1)
        rc, _, err = self.ctl("frobnicate")
        self.assertEqual(rc, 2)
        rc, _, err = self.ctl("server", "put", "h")
        self.assertEqual(rc, 2)
        self.assertIn("--address", err)
        rc, _, err = self.ctl("server", "put", "h", "--address", "192.0.2.1", "--bogus", "1")
        self.assertEqual(rc, 2)
        yml = os.path.join(self.ws.dir, "bad.yml")
        with open(yml, "w") as f:
            f.write("services:\n  api:\n    image: ubuntu\n")
        rc, _, err = self.ctl("apply", yml)
        self.assertEqual(rc, 1)
        self.assertIn("api/image", err)
        # Nothing listens on a port we just closed.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        rc, _, err = self.ctl("topology", url="http://127.0.0.1:%d" % port)
        self.assertEqual(rc, 3)
        self.assertIn("cannot reach", err)
        self.assertEqual(self.central.topology()["index"], 0)


class ConfigFileTest(unittest.TestCase):
    def test_config_file_and_bad_config(self):
        with harness.Workspace(prefix="central-test-") as ws:
            c = start_central(ws, config="durability: normal\nlog_level: warn\n")
            try:
                self.assertEqual(c.request("GET", "/healthz", token=None)[0], 200)
            finally:
                c.kill()
            path = ws.write("bad.yaml", "listen: 127.0.0.1:0\nunknown_key: 1\n")
            p = subprocess.run([CENTRAL, "--config", path, "--data-dir", ws.dir,
                                "--admin-token-file", c.admin_token_file],
                               capture_output=True, text=True, timeout=10)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("unknown_key", p.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--central", required=True)
    parser.add_argument("--ctl", required=True)
    args, rest = parser.parse_known_args()
    CENTRAL, CTL = os.path.abspath(args.central), os.path.abspath(args.ctl)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
