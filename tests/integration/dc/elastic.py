"""ElasticDNS on the harness's data centre: a real elasticdns-central on the `central` host, a
real elasticdns-agent per host (with its eBPF on the host's container cgroup), the REST client
the tests write the topology with, and the DNS clients they ask from inside containers.
"""

import os
import re
import shutil
import socket

import dc
import harness

DOMAIN = "cloud66.local"
ADMIN_TOKEN = "dc-admin-token-0123456789abcdef"
AGENT_TOKEN = "dc-agent-token-0123456789abcdef"
AGENT_HOSTS = ("host1", "host2")
IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


class Central(harness.Central):
    """Central on the `central` host, written to over one kept-alive connection from inside
    that host's netns. A restart listens on the port the first start got."""

    def __init__(self, world, binary):
        self.ns = world.host_ns["central"]
        self.address = world.host_address("central")
        super().__init__(world.ws, binary, host=self.address, admin_token=ADMIN_TOKEN,
                         agent_token=AGENT_TOKEN, prefix=world.prefix(self.ns),
                         new_socket=lambda: dc.netns_socket(self.ns, socket.AF_INET,
                                                            socket.SOCK_STREAM),
                         keep_alive=True, keep_port=True)

    def start(self, deadline=dc.DEFAULT_DEADLINE):
        super().start(deadline)
        dc.log(f"central pid {self.proc.pid} on {self.url}")
        return self


class Agent(harness.Agent):
    """The agent of one host, in the host's netns, with its eBPF on the host's container
    cgroup; listening on the container bridge (where the redirect sends the containers' DNS)
    and on the host's own address."""

    def __init__(self, world, binary, host, central, sticky_window=None, bpf=True):
        self.world = world
        self.host = host
        self.bridge_address = world.gateway(host)
        self.host_address = world.host_address(host)
        self.ns = world.host_ns[host]
        config = {
            "domain": DOMAIN,
            # The first address is where the eBPF redirect sends the containers' DNS.
            "listen": [f"{self.bridge_address}:53", f"{self.host_address}:53"],
            "server_name": host,
            "central": {"urls": [central.url], "token_file": central.agent_token_file},
            "upstreams": [f'{world.host_address("upstream")}:53'],
            "ttl": 5,
            "negative_ttl": 5,
            "state_dir": os.path.join(world.tmp, f"agent-{host}-state"),
            "allow_networks": [dc.NETWORK, "127.0.0.0/8"],
        }
        if sticky_window is not None:
            config["sticky_window"] = sticky_window
        config["bpf"] = {
            "enabled": bpf,
            "cgroup": world.host_cgroups[host],
            "redirect": True,
            "pin_path": world.add_pin(f"agent-{host}"),
        }
        super().__init__(world.ws, binary, config, name=f"agent-{host}", prefix=world.prefix(self.ns))

    def start(self, deadline=dc.DEFAULT_DEADLINE):
        super().start(deadline)
        dc.log(f"agent {self.host} pid {self.proc.pid} on {self.bridge_address}:53 {self.host_address}:53")
        return self

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
