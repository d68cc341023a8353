#!/usr/bin/python3
"""Traffic distribution end to end: a real nginx per host, configured by its real agent from
the topology's `ports` and `traffic_matches`, in front of real containers of the data centre.

  traffic_test.py --central BIN --agent BIN [--nginx /usr/sbin/nginx]

An external client (its own network namespace on the world bridge) sends HTTP, HTTPS and TCP to
host1's address: exact, wildcard and "_" matches, three services sharing port 80, HTTPS with a
test certificate (made here with openssl), a TCP stream port; backends on both hosts. Then a
rolling deploy with a 5 s upload in flight, and a candidate nginx rejects (a bad certificate).
Each nginx runs with its own prefix, pid and config in the world's temp dir and is stopped by
PID. Exit 0 if every check passed, 1 if one failed, 77 (SKIPPED, reason printed) when not root
or nginx / its stream module / openssl are missing.
"""

import argparse
import difflib
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dc  # noqa: E402
import elastic  # noqa: E402
import harness  # noqa: E402
from scenarios import Report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
CLIENT_ADDRESS = "10.77.0.100"
VALID = 1  # seconds nginx keeps a resolved answer (traffic.valid)
HTTP_PORT = 8080  # the containers' port
TCP_PORT = 9000
UDP_PORT = 9001
NO_BACKEND = {"shop-dead"}  # containers that run nothing

SERVICE_YML = """
services:
  shop:
    ports: ["8080:80"]
    traffic_matches: [shop.example.test]
  blog:
    ports: ["8080:80:443"]
    traffic_matches: ["*.blog.example.test", secure.example.test]
  catch:
    ports: ["8080:80"]
    traffic_matches: [_]
  db:
    ports: [{container: 9000, tcp: 15000}, {container: 9001, udp: 15001}]
  app:
    ports: ["8080:81"]
  worker:
    ports: ["5000"]
"""

CONTAINERS = {
    # id: (host, service, version, address)
    "shop-h1": ("host1", "shop", "v1", "10.77.1.20"),
    "shop-h2": ("host2", "shop", "v1", "10.77.2.20"),
    "shop-dead": ("host1", "shop", "v1", "10.77.1.29"),  # nothing listens: refuses
    "blog-h2": ("host2", "blog", "v1", "10.77.2.21"),
    "catch-h1": ("host1", "catch", "v1", "10.77.1.22"),
    "db-h2": ("host2", "db", "v1", "10.77.2.23"),
    "app-v1-h1": ("host1", "app", "v1", "10.77.1.24"),
}
APP_V2 = {"app-v2-h2": ("host2", "app", "v2", "10.77.2.24")}  # the deploy's new version


class Nginx:
    """nginx in one host's namespace, with its own prefix; the agent owns the two files it
    includes."""

    def __init__(self, world, host, binary):
        self.world, self.host, self.binary = world, host, binary
        self.dir = os.path.join(world.tmp, f"nginx-{host}")
        os.makedirs(os.path.join(self.dir, "work"))
        self.http_file = os.path.join(self.dir, "elasticdns-http.conf")
        self.stream_file = os.path.join(self.dir, "elasticdns-stream.conf")
        self.modules = os.path.join(self.dir, "modules.conf")
        self.pid_file = os.path.join(self.dir, "nginx.pid")
        self.error_log = os.path.join(self.dir, "error.log")
        self.conf = os.path.join(self.dir, "nginx.conf")
        for f in (self.http_file, self.stream_file):
            open(f, "w").close()
        with open(self.modules, "w") as f:
            f.write(f"load_module {STREAM_MODULE};\n")
        temp = "\n".join(f"    {k}_temp_path {self.dir}/{k};" for k in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(self.conf, "w") as f:
            f.write(f"""daemon off;
user root;
worker_processes 1;
pid {self.pid_file};
error_log {self.error_log} notice;
include {self.modules};
events {{ worker_connections 1024; }}
include {self.stream_file};
http {{
    access_log off;
{temp}
    # A site of the operator's own: a service taking port 82 as "_" clashes with it.
    server {{ listen 82 default_server; return 204; }}
    include {self.http_file};
}}
""")

    def start(self):
        ns = self.world.host_ns[self.host]
        self.proc = self.world.spawn(f"nginx-{self.host}",
                                     [self.binary, "-p", self.dir + "/", "-c", self.conf,
                                      "-e", self.error_log], ns=ns)
        dc.poll(f"nginx on {self.host} writes its pid", lambda: os.path.exists(self.pid_file))
        return self

    def reloads(self):
        """SIGHUPs nginx received (its error log at notice level says so)."""
        with open(self.error_log) as f:
            return len(re.findall(r"signal 1 \(SIGHUP\) received", f.read()))

    def traffic_config(self, certs):
        return {
            "enabled": True,
            "nginx": self.binary,
            "http_file": self.http_file,
            "stream_file": self.stream_file,
            "test_includes": [self.modules],
            "reload": "signal",
            "pid_file": self.pid_file,
            "cert_dir": certs,
            "valid": f"{VALID}s",
            "retries": 3,
            "connect_timeout": "500ms",
            "work_dir": os.path.join(self.dir, "work"),
            "main_conf": self.conf,
        }


class Client:
    """The external client: its own netns on the world bridge; talks to host1's address."""

    def __init__(self, world):
        self.world = world
        self.ns = world._add_netns("client", resolv=False)
        world.ip(world.world_ns, "link", "add", "client", "type", "veth", "peer", "name", "eth0",
                 "netns", self.ns)
        world.ip(world.world_ns, "link", "set", "client", "master", "br0", "up")
        world.ip(self.ns, "addr", "add", f"{CLIENT_ADDRESS}/{dc.PREFIX}", "dev", "eth0")
        world.ip(self.ns, "link", "set", "eth0", "up")
        self.target = world.host_address("host1")

    def socket(self):
        return dc.netns_socket(self.ns, socket.AF_INET, socket.SOCK_STREAM)

    def get(self, host_header, port=80, path="/"):
        """(status, body text) of GET with this Host header."""
        h = harness.Http(self.target, port, new_socket=self.socket, timeout=5)
        status, data, _ = h.request("GET", path, headers={"Host": host_header})
        return status, data.decode()

    def get_tls(self, server_name, cafile, port=443):
        ctx = ssl.create_default_context(cafile=cafile)
        s = self.socket()
        s.settimeout(5)
        s.connect((self.target, port))
        with ctx.wrap_socket(s, server_hostname=server_name) as t:
            t.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := t.recv(65536):
                data += chunk
        head, _, body = data.decode().partition("\r\n\r\n")
        return int(head.split()[1]), body

    def tcp(self, port):
        s = self.socket()
        s.settimeout(5)
        try:
            s.connect((self.target, port))
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            return data.decode().strip()
        finally:
            s.close()

    def udp(self, port):
        """The answer to one datagram (retried: UDP may drop), or None."""
        s = dc.netns_socket(self.ns)
        s.settimeout(1)
        try:
            for _ in range(3):
                s.sendto(b"who", (self.target, port))
                try:
                    return s.recv(2048).decode()
                except socket.timeout:
                    continue
            return None
        finally:
            s.close()

    def websocket(self, host_header, message):
        """(status line, the echo of `message`) through a websocket upgrade."""
        s = self.socket()
        s.settimeout(5)
        try:
            s.connect((self.target, 80))
            s.sendall((f"GET /ws HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(1)
                if not chunk:
                    break
                head += chunk
            s.sendall(message)
            return head.split(b"\r\n")[0].decode(), s.recv(4096)
        finally:
            s.close()

    def slow_post(self, host_header, port, size, seconds):
        """Sends the head of a POST of `size` bytes; returns the socket, for the body."""
        s = self.socket()
        s.settimeout(seconds + 10)
        s.connect((self.target, port))
        s.sendall((f"POST /upload HTTP/1.1\r\nHost: {host_header}\r\nContent-Length: {size}\r\n"
                   "Connection: close\r\n\r\n").encode())
        return s


def backend(world, cid):
    host, _, _, address = {**CONTAINERS, **APP_V2}[cid]
    c = world.add_container(host, cid, address)
    if cid in NO_BACKEND:
        return c
    p = world.spawn(f"backend-{cid}", [sys.executable, os.path.join(HERE, "traffic_backend.py"),
                                       "--id", cid, "--http", str(HTTP_PORT), "--tcp",
                                       str(TCP_PORT), "--udp", str(UDP_PORT)],
                    ns=c.ns, cgroup=c.cgroup)
    p.wait_line("ready")
    return c


def make_certificate(directory, name):
    os.makedirs(directory, exist_ok=True)
    crt, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    dc.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}", "-keyout", key, "-out", crt])
    return crt


def agent_metric(agent, name):
    host, port = agent.metrics
    h = harness.Http(host, port, new_socket=lambda: dc.netns_socket(agent.ns, socket.AF_INET,
                                                                      socket.SOCK_STREAM))
    return h.metric(name)


def ident(body):
    return body.split()[0] if body else None


def check_routing(report, client, crt):
    cases = [
        # shop-dead refuses: nginx tries the next address (every request answered).
        ("exact match shop.example.test", "shop.example.test", {"shop-h1", "shop-h2"}),
        ("exact match is case-insensitive", "SHOP.example.test", {"shop-h1", "shop-h2"}),
        ("wildcard *.blog.example.test (backend on host2)", "a.b.blog.example.test", {"blog-h2"}),
        ("\"_\" catch-all for an unknown name", "unknown.example.test", {"catch-h1"}),
        ("\"_\" catch-all for blog.example.test (not under *.blog)", "blog.example.test",
         {"catch-h1"}),
    ]
    for what, host, want in cases:
        seen, statuses = set(), set()
        for _ in range(16 if len(want) > 1 else 4):
            status, body = client.get(host)
            statuses.add(status)
            seen.add(ident(body) if status == 200 else body)
        report.check(f"traffic: {what} -> {sorted(want)}", statuses == {200} and seen == want,
                     f"statuses {sorted(statuses)}, saw {sorted(seen)}")
    status, body = client.get("x.blog.example.test")
    report.check("traffic: Host, X-Forwarded-Proto and X-Forwarded-For reach the container",
                 body.split()[1:] == ["x.blog.example.test", "http", CLIENT_ADDRESS], body)
    status, body = client.get_tls("secure.example.test", crt)
    report.check("traffic: HTTPS on 443 with the name's certificate reaches blog on host2",
                 status == 200 and body.split() == ["blog-h2", "secure.example.test", "https",
                                                    CLIENT_ADDRESS],
                 f"{status} {body!r}")
    got = client.tcp(15000)
    report.check("traffic: TCP stream port 15000 reaches db on host2", got == "db-h2", got)
    got = client.udp(15001)
    report.check("traffic: UDP stream port 15001 reaches db on host2", got == "db-h2", got)
    status, echo = client.websocket("shop.example.test", b"hello")
    report.check("traffic: a websocket upgrade passes through (101, then both ways)",
                 " 101 " in status and echo.split(b" ")[1:] == [b"hello"], f"{status} {echo!r}")
    status, body = client.get("anything", port=81)
    report.check("traffic: a service alone on its port (app, 81) gets every name",
                 status == 200 and ident(body) == "app-v1-h1", f"{status} {body!r}")


def check_print(report, args, agent, nginx):
    """--print-traffic-config on the agent's own config and snapshot prints what it installed."""
    r = dc.run([args.agent, "--config", agent.config_path, "--print-traffic-config"], check=False)
    with open(nginx.http_file) as f:
        installed = f.read()
    report.check("print: --print-traffic-config prints the installed http file",
                 r.returncode == 0 and installed in r.stdout, r.stderr[-2000:])


def check_rolling_deploy(report, world, cluster, client, nginxes):
    agent = cluster.agents["host1"]
    reloads_before = agent_metric(agent, "elasticdns_traffic_reloads_total")
    sighups_before = nginxes["host1"].reloads()
    steps, seconds = 20, 5.0
    size = steps * 32 * 1024
    s = client.slow_post("app.example.test", 81, size, seconds)
    chunk = b"x" * (size // steps)
    s.sendall(chunk)  # the request has reached v1 (nginx streams the body: no buffering)
    # v2 becomes the latest version and v1 drains while the upload is in flight.
    for cid, spec in APP_V2.items():
        backend(world, cid)
        elastic_put(cluster, cid, *spec)
    host, svc, ver, addr = CONTAINERS["app-v1-h1"]
    elastic_put(cluster, "app-v1-h1", host, svc, ver, addr, state="draining")
    switched = time.monotonic()
    for _ in range(steps - 1):
        time.sleep(seconds / steps)
        s.sendall(chunk)
    resp = http.client.HTTPResponse(s)
    resp.begin()
    body = resp.read().decode()
    s.close()
    report.check("deploy: the 5 s upload in flight to v1 completes with 200 at v1",
                 resp.status == 200 and body.split() == ["app-v1-h1", str(size)],
                 f"{resp.status} {body!r}")
    # New requests once nginx's cached answer (valid) has passed go to v2 only.
    left = switched + VALID + 0.5 - time.monotonic()
    if left > 0:
        time.sleep(left)
    seen = [ident(client.get("app.example.test", port=81)[1]) for _ in range(10)]
    report.check("deploy: requests started after the TTL reach v2 only",
                 set(seen) == {"app-v2-h2"}, seen)
    report.check("deploy: nginx was not reloaded (agent metric)",
                 agent_metric(agent, "elasticdns_traffic_reloads_total") == reloads_before,
                 agent_metric(agent, "elasticdns_traffic_reloads_total"))
    report.check("deploy: nginx was not reloaded (nginx's log)",
                 nginxes["host1"].reloads() == sighups_before, nginxes["host1"].reloads())


def check_bad_candidate(report, cluster, client, nginx, certs):
    agent = cluster.agents["host1"]
    with open(os.path.join(certs, "bad.example.test.crt"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    with open(os.path.join(certs, "bad.example.test.key"), "w") as f:
        f.write("not a key\n")
    good = open(nginx.http_file).read()
    sighups = nginx.reloads()
    cluster.central.put("services", "bad", {"ports": ["8080::8443"],
                                            "traffic_matches": ["bad.example.test"]})
    failures = 'elasticdns_traffic_reload_failures_total{reason="invalid"}'
    try:
        dc.poll("the agent rejects the candidate", lambda: agent_metric(agent, failures) == 1)
        rejected = True
    except TimeoutError as e:
        rejected = str(e)
    report.check("bad candidate: nginx -t rejects it, counted", rejected is True, rejected)
    failed = os.path.join(nginx.dir, "work", "failed-http.conf")
    report.check("bad candidate: kept for inspection",
                 os.path.exists(failed) and "bad.example.test" in open(failed).read(), failed)
    report.check("bad candidate: the installed file is unchanged, nginx not reloaded",
                 open(nginx.http_file).read() == good and nginx.reloads() == sighups, "")
    status, body = client.get("shop.example.test")
    report.check("bad candidate: the running config keeps serving",
                 status == 200 and ident(body) in ("shop-h1", "shop-h2"), f"{status} {body!r}")
    log_lines = agent.log().count("nginx rejected the configuration")
    report.check("bad candidate: logged once", log_lines == 1, log_lines)
    # Taking the bad service away renders the installed text again: nothing to reload.
    cluster.central.delete("services", "bad")
    try:
        dc.poll("the agent is current again",
                lambda: agent_metric(agent, "elasticdns_traffic_config_current") == 1)
        current = True
    except TimeoutError as e:
        current = str(e)
    report.check("bad candidate: removed again, the installed config is current, no reload",
                 current is True and nginx.reloads() == sighups, current)


def check_main_conf_clash(report, cluster, client, nginx):
    """A candidate that passes alone but clashes with the operator's site on port 82."""
    agent = cluster.agents["host1"]
    good = open(nginx.http_file).read()
    sighups = nginx.reloads()
    failures = 'elasticdns_traffic_reload_failures_total{reason="invalid"}'
    before = agent_metric(agent, failures)
    cluster.central.put("services", "clash", {"ports": ["8080:82"]})  # alone: "_"
    try:
        dc.poll("the agent rejects the clash", lambda: agent_metric(agent, failures) == before + 1)
        rejected = True
    except TimeoutError as e:
        rejected = str(e)
    report.check("main conf: a candidate clashing with another site is rejected, counted",
                 rejected is True, rejected)
    report.check("main conf: the last good file is back, nginx not reloaded",
                 open(nginx.http_file).read() == good and nginx.reloads() == sighups, "")
    status, body = client.get("shop.example.test")
    report.check("main conf: the running config keeps serving",
                 status == 200 and ident(body) in ("shop-h1", "shop-h2"), f"{status} {body!r}")
    cluster.central.delete("services", "clash")


def elastic_put(cluster, cid, host, service, version, address, state=None):
    body = {"service": service, "version": version, "server": host, "address": address}
    if state:
        body["state"] = state
    cluster.central.put("containers", cid, body)


def start_cluster(world, args, certs):
    """Upstream, central, nginx and an agent with `traffic` on each host."""
    world.start_upstream()
    central = elastic.Central(world, args.central).start()
    nginxes, agents = {}, {}
    for h in elastic.AGENT_HOSTS:
        nginxes[h] = Nginx(world, h, args.nginx).start()
        a = elastic.Agent(world, args.agent, h, central)
        a.config["traffic"] = nginxes[h].traffic_config(certs)
        a.config["metrics_listen"] = f"{world.host_address(h)}:0"
        a.write_config()
        agents[h] = a.start()
        central.put("servers", h, {"address": world.host_address(h)})

    class Cluster:
        pass

    c = Cluster()
    c.central, c.agents = central, agents
    return c, nginxes


def run(args, report):
    world = dc.World()
    failed = True
    try:
        world.build()
        certs = os.path.join(world.tmp, "certs")
        crt = make_certificate(certs, "secure.example.test")
        cluster, nginxes = start_cluster(world, args, certs)
        client = Client(world)
        for cid in CONTAINERS:
            backend(world, cid)
        status, _, _ = cluster.central.request("POST", "/v1/apply", SERVICE_YML)
        if status != 200:
            raise RuntimeError(f"apply -> {status}")
        for cid, (host, svc, ver, addr) in CONTAINERS.items():
            elastic_put(cluster, cid, host, svc, ver, addr)
        dc.poll("nginx on host1 serves the topology",
                lambda: ident(client.get("shop.example.test")[1]) in ("shop-h1", "shop-h2")
                and client.tcp(15000) == "db-h2", 15)
        check_routing(report, client, crt)
        check_print(report, args, cluster.agents["host1"], nginxes["host1"])
        check_rolling_deploy(report, world, cluster, client, nginxes)
        check_bad_candidate(report, cluster, client, nginxes["host1"], certs)
        check_main_conf_clash(report, cluster, client, nginxes["host1"])
        def normalized(h):  # the resolver and the self-signed certificate's path differ
            text = open(nginxes[h].http_file).read()
            return text.replace(cluster.agents[h].bridge_address + ":", "AGENT:").replace(
                f"nginx-{h}/", "nginx-HOST/")
        # host2's agent went through the same adds and deletes of the checks above on its own
        # thread (nothing was refused there): wait until it has rendered the last of them.
        try:
            dc.poll("host2's nginx configuration catches up with host1's",
                    lambda: normalized("host1") == normalized("host2"), 10)
            same = ""
        except TimeoutError:
            same = "".join(difflib.unified_diff(
                normalized("host1").splitlines(True), normalized("host2").splitlines(True),
                "host1", "host2"))
        report.check("host2's nginx got the same configuration as host1's", same == "", same)
        failed = False
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        report.check("traffic: ran to the end", False, repr(e))
    finally:
        try:
            world.teardown(failed=failed or bool(report.failed))
            report.check("traffic: teardown left nothing", True)
        except Exception as e:  # noqa: BLE001
            report.check("traffic: teardown left nothing", False, repr(e))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--central", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--nginx", default="/usr/sbin/nginx")
    args = p.parse_args()
    dc.exit_on_signals()
    if os.geteuid() != 0:
        print("SKIPPED: the traffic tests need root (netns, cgroups, eBPF, nginx on port 80)")
        return 77
    missing = [what for what, ok in (
        ("elasticdns-central", os.access(args.central, os.X_OK)),
        ("elasticdns-agent", os.access(args.agent, os.X_OK)),
        (f"nginx ({args.nginx})", os.access(args.nginx, os.X_OK)),
        (f"nginx's stream module ({STREAM_MODULE}, libnginx-mod-stream)",
         os.path.exists(STREAM_MODULE)),
        ("openssl", shutil.which("openssl") is not None)) if not ok]
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
