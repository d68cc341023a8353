"""ElasticDNS on the harness's data centre: a real elasticdns-central on the `central` host, a
real elasticdns-agent per host (with its eBPF on the host's container cgroup), the REST client
the tests write the topology with, and the DNS clients they ask from inside containers.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket

import dc

DOMAIN = "cloud66.local"
ADMIN_TOKEN = "dc-admin-token-0123456789abcdef"
AGENT_TOKEN = "dc-agent-token-0123456789abcdef"
AGENT_HOSTS = ("host1", "host2")
IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


class Central:
    def __init__(self, world, binary):
        self.world = world
        self.binary = binary
        self.ns = world.host_ns["central"]
        self.address = world.host_address("central")
        self.data_dir = os.path.join(world.tmp, "central-data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.admin_token_file = os.path.join(world.tmp, "admin.token")
        self.agent_token_file = os.path.join(world.tmp, "agent.token")
        for path, token in ((self.admin_token_file, ADMIN_TOKEN), (self.agent_token_file, AGENT_TOKEN)):
            with open(path, "w") as f:
                f.write(token + "\n")
            os.chmod(path, 0o600)
        self.port = 0
        self.proc = None
        self.starts = 0
        self.conn = None

    def start(self):
        """Starts central; the first time on a port the kernel picks, later on the same one."""
        self.starts += 1
        self.proc = self.world.spawn(
            f"central-{self.starts}",
            [
                self.binary,
                "--listen",
                f"{self.address}:{self.port}",
                "--data-dir",
                self.data_dir,
                "--admin-token-file",
                self.admin_token_file,
                "--agent-token-file",
                self.agent_token_file,
            ],
            ns=self.ns,
        )
        listening = self.proc.wait_line("listening on ")
        self.port = int(listening.rsplit(":", 1)[1])
        self.url = f"http://{self.address}:{self.port}"
        self.conn = None
        dc.log(f"central pid {self.proc.pid} on {self.url}")
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.conn:
            self.conn.close()
            self.conn = None
        return self.proc.stop(sig)

    def _connection(self):
        if self.conn is None:
            sock = dc.netns_socket(self.ns, socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect((self.address, self.port))
            conn = http.client.HTTPConnection(self.address, self.port, timeout=10)
            conn.sock = sock
            self.conn = conn
        return self.conn

    def request(self, method, path, body=None):
        """One HTTP request on a kept-alive connection; returns (status, parsed JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return resp.status, parsed

    def put(self, kind, key, value):
        status, body = self.request("PUT", f"/v1/{kind}/{key}", value)
        if not 200 <= status < 300:
            raise RuntimeError(f"PUT /v1/{kind}/{key} -> {status} {body}")
        return body

    def delete(self, kind, key):
        status, body = self.request("DELETE", f"/v1/{kind}/{key}")
        if not 200 <= status < 300:
            raise RuntimeError(f"DELETE /v1/{kind}/{key} -> {status} {body}")
        return body


class Agent:
    def __init__(self, world, binary, host, central, sticky_window=None, bpf=True):
        self.world = world
        self.binary = binary
        self.host = host
        self.ns = world.host_ns[host]
        self.bridge_address = world.gateway(host)
        self.host_address = world.host_address(host)
        self.state_dir = os.path.join(world.tmp, f"agent-{host}-state")
        os.makedirs(self.state_dir, exist_ok=True)
        self.pin_path = world.add_pin(f"agent-{host}")
        self.config_path = os.path.join(world.tmp, f"agent-{host}.yaml")
        self.starts = 0
        self.proc = None
        self.write_config(central, sticky_window, bpf)

    def write_config(self, central, sticky_window, bpf):
        lines = [
            f"domain: {DOMAIN}",
            # The first address is where the eBPF redirect sends the containers' DNS.
            f'listen: ["{self.bridge_address}:53", "{self.host_address}:53"]',
            f"server_name: {self.host}",
            "central:",
            f'  urls: ["{central.url}"]',
            f"  token_file: {central.agent_token_file}",
            f'upstreams: ["{self.world.host_address("upstream")}:53"]',
            "ttl: 5",
            "negative_ttl: 5",
            f"state_dir: {self.state_dir}",
            f'allow_networks: ["{dc.NETWORK}", "127.0.0.0/8"]',
        ]
        if sticky_window is not None:
            lines.append(f"sticky_window: {sticky_window}")
        lines += [
            "bpf:",
            f"  enabled: {'true' if bpf else 'false'}",
            f"  cgroup: {self.world.host_cgroups[self.host]}",
            "  redirect: true",
            f"  pin_path: {self.pin_path}",
        ]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, deadline=dc.DEFAULT_DEADLINE):
        self.starts += 1
        self.proc = self.world.spawn(
            f"agent-{self.host}-{self.starts}", [self.binary, "--config", self.config_path], ns=self.ns
        )
        for proto in ("udp", "tcp"):
            for addr in (self.bridge_address, self.host_address):
                self.proc.wait_line(f"listening on {proto} {addr}:53", deadline)
        dc.log(f"agent {self.host} pid {self.proc.pid} on {self.bridge_address}:53 {self.host_address}:53")
        return self

    def stop(self, sig=signal.SIGTERM):
        return self.proc.stop(sig)

    def client(self):
        """A DNS client in the host's netns (a host process, not a container) asking this agent."""
        return dc.DnsClient(self.ns, self.host_address)


class Cluster:
    """The data centre with central, unbound and one agent per host."""

    def __init__(self, world, central_bin, agent_bin, sticky_window=None, bpf=True, hosts=AGENT_HOSTS):
        self.world = world
        world.start_upstream()
        self.central = Central(world, central_bin).start()
        self.agents = {h: Agent(world, agent_bin, h, self.central, sticky_window, bpf).start() for h in hosts}
        for h in hosts:
            self.central.put("servers", h, {"address": world.host_address(h)})

    def wait_all_agents(self, name, expected, deadline=dc.DEFAULT_DEADLINE):
        """Polls every agent (asked as a host process: latest version) until `name` answers
        exactly the sorted list `expected` (None = an error rcode such as NXDOMAIN)."""
        for h, agent in self.agents.items():
            client = agent.client()
            try:
                dc.poll(
                    f"agent {h}: {name} -> {expected}",
                    lambda: client.addresses(name, 0.3) == expected,
                    deadline,
                )
            finally:
                client.close()


# --- DNS clients run inside containers -----------------------------------------------------
def musl_resolver(world):
    """Builds the musl getaddrinfo client (tests/integration/dc/musl_resolve.c) into tmp."""
    musl_gcc = shutil.which("musl-gcc")
    if not musl_gcc:
        return None
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "musl_resolve.c")
    out = os.path.join(world.tmp, "musl_resolve")
    dc.run([musl_gcc, "-static", "-O2", "-o", out, src])
    return out


def client_command(kind, name, musl=None):
    """argv and env of a resolver client: dig (UDP/TCP), glibc getaddrinfo (UDP/TCP), musl."""
    fqdn = f"{name}.{DOMAIN}" if not name.endswith(".test") else name
    if kind == "dig-udp":
        return ["dig", "+time=2", "+tries=1", "+noall", "+answer", fqdn, "A"], None
    if kind == "dig-tcp":
        return ["dig", "+tcp", "+time=2", "+tries=1", "+noall", "+answer", fqdn, "A"], None
    if kind == "glibc-udp":
        return ["getent", "ahosts", fqdn], None
    if kind == "glibc-tcp":
        return ["getent", "ahosts", fqdn], {"RES_OPTIONS": "use-vc"}
    if kind == "musl-udp":
        return [musl, fqdn], None
    raise ValueError(kind)


def parse_addresses(kind, out):
    """Ordered IPv4 answers (dig: the A records; getent/musl: unique addresses in order)."""
    addrs = []
    for line in out.splitlines():
        f = line.split()
        if not f:
            continue
        if kind.startswith("dig"):
            if len(f) >= 5 and f[3] == "A":
                addrs.append(f[4])
        elif IPV4.match(f[0]) and f[0] not in addrs:
            addrs.append(f[0])
    return addrs


def resolve(container, kind, name, musl=None):
    """(ordered IPv4 answers, raw output) for `name` asked by `container` through its
    resolv.conf, i.e. through the eBPF redirect."""
    args, env = client_command(kind, name, musl)
    r = container.run(args, env=env, timeout=15)
    return parse_addresses(kind, r.stdout), (r.stdout + r.stderr).strip()


def dig_ttls(container, name):
    """[(address, ttl)] of a dig over UDP from the container."""
    r = container.run(["dig", "+time=2", "+tries=1", "+noall", "+answer", f"{name}.{DOMAIN}", "A"])
    out = []
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 5 and f[3] == "A":
            out.append((f[4], int(f[1])))
    return out


def dig_status(container, fqdn):
    r = container.run(["dig", "+time=2", "+tries=1", fqdn, "A"])
    m = re.search(r"status: (\w+)", r.stdout)
    return (m.group(1) if m else None), (r.stdout + r.stderr)
