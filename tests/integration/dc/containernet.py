"""ContainerNet on the harness's data centre: central leasing container subnets, one agent per
host running WireGuard (real wireguard-go over TUN in the host's network namespace), and the
views a test checks: the topology's servers, `wg show IF dump` and the routes of each host.

Used by dc/containernet_test.py and tests/bench/containernet_bench.py, on a
dc.World(containernet=True).
"""

import base64
import os
import signal
import socket
import subprocess
import time

import dc
import elastic
import harness

HOSTS = ("host1", "host2")
CENTRAL_CONFIG = """containernet:
  cluster_cidr: {cidr}
  subnet_prefix: {prefix}
agent_tokens_file: {tokens}
"""
# Every host that may join gets its own agent token (a per-server token may write only its own
# server's records, e.g. its WireGuard key).
TOKEN_HOSTS = ("host1", "host2", "host3")


class Central(elastic.Central):
    """Central with ContainerNet on (subnets leased out of dc.CONTAINERNET_CIDR) and a
    per-server agent token for every host of TOKEN_HOSTS."""

    def __init__(self, world, binary, token_hosts=TOKEN_HOSTS, prefix=dc.CONTAINERNET_PREFIX,
                 extra_config=""):
        self.server_tokens = {h: f"dc-{h}-token-{os.urandom(8).hex()}" for h in token_hosts}
        tokens = os.path.join(world.tmp, "agent-tokens")
        with open(tokens, "w") as f:
            for h, t in self.server_tokens.items():
                f.write(f"{t} {h}\n")
        os.chmod(tokens, 0o600)
        super().__init__(world, binary)
        self.config_path = self.ws.write("central.yaml", CENTRAL_CONFIG.format(
            cidr=dc.CONTAINERNET_CIDR, prefix=prefix, tokens=tokens) + extra_config)

    def server_token_file(self, host):
        return harness.token_file(os.path.join(self.ws.dir, f"agent-{host}.token"),
                                  self.server_tokens[host])

    def servers(self):
        """{name: server record} of the topology as agents read it."""
        return {s["name"]: s for s in self.topology()["topology"].get("servers", [])}


class Agent(elastic.Agent):
    """An agent with `containernet` on: WireGuard interface world.wg_interface(host) by
    wireguard-go, its key in the world's tmp dir, the gateway of the host's subnet on cbr0.
    It listens for DNS on the host's world address only (the container bridge has no address
    until the agent sets it); the eBPF redirect sends the containers' DNS there (inside
    dc.NETWORK, which the containers route through their gateway)."""

    def __init__(self, world, binary, host, central, wireguard_go="wireguard-go"):
        super().__init__(world, binary, host, central)
        self.interface = world.wg_interface(host)
        # In the agent's own state dir: the running agent's PID file for --rotate-key goes
        # beside the key.
        self.key_file = os.path.join(self.config["state_dir"], "containernet.key")
        self.config["listen"] = [f"{self.host_address}:53"]
        self.config["central"]["token_file"] = central.server_token_file(host)
        self.config["containernet"] = {
            "enabled": True,
            "interface": self.interface,
            "listen_port": dc.WIREGUARD_PORT,
            "key_file": self.key_file,
            "endpoint": "",
            "mtu": "auto",
            "implementation": "userspace",
            "wireguard_go": wireguard_go,
            "bridge": "cbr0",
        }
        self.write_config()

    def start(self, deadline=dc.DEFAULT_DEADLINE):
        harness.Agent.start(self, deadline)
        dc.log(f"agent {self.host} pid {self.proc.pid} on {self.host_address}:53, "
               f"WireGuard {self.interface}")
        return self


class Mesh:
    """Central (ContainerNet on) and one ContainerNet agent per host; the harness's view of the
    WireGuard mesh."""

    def __init__(self, world, central_bin, agent_bin, hosts=HOSTS, wireguard_go="wireguard-go",
                 upstream=True, central_kw=None):
        self.world = world
        self.agent_bin = agent_bin
        self.wireguard_go = wireguard_go
        if upstream:
            world.start_upstream()
        self.central = Central(world, central_bin, **(central_kw or {})).start()
        self.agents = {}
        for h in hosts:
            self.add_agent(h, wait=False)
        self.wait_published(hosts)
        self.wait_converged()

    # -- membership
    def add_agent(self, host, wait=True):
        """add_server, then start_agent; with wait, until the agent published its key and every
        agent programmed the mesh."""
        self.add_server(host)
        return self.start_agent(host, wait)

    def add_server(self, host):
        """The server record; central leases its subnet, which the world learns."""
        self.central.put("servers", host, {"address": self.world.host_address(host)})
        leased = dc.poll(f"{host}: central leased a subnet",
                         lambda: self.central.servers().get(host, {}).get("subnet"))
        self.world.set_subnet(host, leased)
        return leased

    def start_agent(self, host, wait=True):
        self.agents[host] = Agent(self.world, self.agent_bin, host, self.central,
                                  self.wireguard_go).start()
        if wait:
            self.wait_published([host])
            self.wait_converged()
        return self.agents[host]

    def stop_agent(self, host):
        """Stops `host`'s agent; it leaves the mesh's views (its wireguard-go must be gone:
        the world's teardown checks)."""
        agent = self.agents.pop(host)
        return agent.stop()

    def wait_published(self, hosts, deadline=dc.DEFAULT_DEADLINE):
        """Until each host's record has a subnet and a WireGuard key; the world learns the
        subnets (containers are created in them)."""

        def ready():
            servers = self.central.servers()
            return all(servers.get(h, {}).get("subnet") and servers[h].get("wireguard")
                       for h in hosts) and servers

        servers = dc.poll(f"{', '.join(hosts)}: subnet leased and key published", ready, deadline)
        for h in hosts:
            self.world.set_subnet(h, servers[h]["subnet"])
        return servers

    def expected_peers(self, host, servers=None):
        """{public key: (allowed ips, endpoint)} that `host` must have: every other server with
        a subnet and a key."""
        servers = servers or self.central.servers()
        return {s["wireguard"]["public_key"]: (s["subnet"], s["wireguard"]["endpoint"])
                for n, s in servers.items()
                if n != host and s.get("subnet") and s.get("wireguard")}

    def mesh_state(self, host):
        """(peers {key: (allowed ips, endpoint)}, container-subnet routes via the interface)."""
        peers = {k: (p["allowed_ips"], p["endpoint"]) for k, p in self.wg_peers(host).items()}
        return peers, self.wg_routes(host)

    def converged(self, host, servers=None):
        servers = servers or self.central.servers()
        want = self.expected_peers(host, servers)
        peers, routes = self.mesh_state(host)
        return peers == want and routes == sorted(a for a, _ in want.values())

    def wait_converged(self, hosts=None, deadline=dc.DEFAULT_DEADLINE):
        hosts = hosts or list(self.agents)
        for h in hosts:
            dc.poll(f"{h}: WireGuard peers and routes match the topology",
                    lambda: self.converged(h), deadline)

    # -- views
    def wg_peers(self, host):
        """`wg show IF dump` of `host`, parsed: {public key: {endpoint, allowed_ips,
        latest_handshake, rx, tx}}."""
        ns = self.world.host_ns[host]
        out = wg(ns, "show", self.agents[host].interface, "dump")
        lines = out.splitlines()[1:]  # the first line is the interface itself
        peers = {}
        for line in lines:
            f = line.split("\t")
            if len(f) < 8:
                continue
            peers[f[0]] = {"endpoint": f[2], "allowed_ips": f[3], "latest_handshake": int(f[4]),
                           "rx": int(f[5]), "tx": int(f[6])}
        return peers

    def public_key(self, host):
        ns = self.world.host_ns[host]
        return wg(ns, "show", self.agents[host].interface, "public-key").strip()

    def wg_routes(self, host):
        """Sorted destinations of the routes through `host`'s WireGuard interface."""
        ns = self.world.host_ns[host]
        r = dc.run(["ip", "-n", ns, "-4", "route", "show", "dev", self.agents[host].interface],
                   check=False)
        return sorted(line.split()[0] for line in r.stdout.splitlines() if line.strip())

    def mtu(self, host):
        ns = self.world.host_ns[host]
        out = dc.run(["ip", "-n", ns, "-o", "link", "show", self.agents[host].interface]).stdout
        return int(out.split(" mtu ")[1].split()[0])

    def rotate_key(self, host, cli=True):
        """Asks `host`'s agent to rotate its WireGuard key: `elasticdns-agent --config F
        --rotate-key` (the operator's command), or SIGUSR2 with cli=False."""
        agent = self.agents[host]
        if not cli:
            agent.send_signal(signal.SIGUSR2)
            return
        r = dc.run([self.agent_bin, "--config", agent.config_path, "--rotate-key"], check=False)
        if r.returncode != 0:
            raise RuntimeError(f"--rotate-key on {host}: {r.returncode} {r.stderr.strip()}")


def wg(ns, *args):
    """`wg ARGS` in netns `ns` (the UAPI socket is in the shared mount namespace; the netns is
    where wg looks for kernel interfaces)."""
    return dc.run(["nsenter", f"--net=/run/netns/{ns}", "wg"] + list(args), timeout=10).stdout


# --- the workload: containers that answer, and clients that time them ---------------------
def echo_container(world, host, cid, tcp_port=9000, udp_port=9001, http_port=8080):
    """A container on `host` (next address of its subnet) running dc/traffic_backend.py: TCP
    answers "CID\\n", UDP answers "CID", HTTP GET answers "CID ..."."""
    c = world.add_container(host, cid)
    p = world.spawn(f"backend-{cid}",
                    ["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "traffic_backend.py"),
                     "--id", cid, "--http", str(http_port), "--tcp", str(tcp_port),
                     "--udp", str(udp_port)], ns=c.ns, cgroup=c.cgroup)
    p.wait_line("ready")
    return c


def tcp_ask(ns, address, port, timeout=2.0):
    """The text a TCP server at address:port sends on connect, from a socket in netns `ns`."""
    s = dc.netns_socket(ns, socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((address, port))
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        return data.decode().strip()
    finally:
        s.close()


class UdpProbe:
    """Sends a numbered datagram every `interval` seconds from netns `ns` to an echo server and
    records when replies come back; the longest time without a reply is the gap."""

    def __init__(self, ns, address, port, interval=0.01):
        self.sock = dc.netns_socket(ns)
        self.sock.settimeout(interval)
        self.target = (address, port)
        self.interval = interval
        self.replies = []  # monotonic times of replies

    def run_for(self, seconds, during=None):
        """Probes for `seconds`; calls during() once after the first second."""
        start = time.monotonic()
        end = start + seconds
        called = during is None
        called_at = None
        while time.monotonic() < end:
            if not called and time.monotonic() - start > 1.0:
                called_at = time.monotonic()
                during()
                called = True
            try:
                self.sock.sendto(b"probe", self.target)
                self.sock.recv(2048)
                self.replies.append(time.monotonic())
                left = self.interval - (time.monotonic() - self.replies[-1])
                if left > 0:
                    time.sleep(left)
            except OSError:
                pass  # timeout, or ICMP unreachable while there is no route
        self.sock.close()
        return called_at

    def longest_gap(self, since=None):
        times = [t for t in self.replies if since is None or t >= since - 1.0]
        if len(times) < 2:
            return float("inf")
        return max(b - a for a, b in zip(times, times[1:]))


def ping(container, address, size, count=2):
    """`ping -M do -s SIZE` from a container: (returncode, output)."""
    r = container.run(["ping", "-n", "-M", "do", "-c", str(count), "-i", "0.2", "-W", "1",
                       "-s", str(size), address], timeout=15)
    return r.returncode, (r.stdout + r.stderr)


def tcpdump(world, path, iface="any"):
    """tcpdump in the world namespace (every port of the world bridge: on br0 itself tcpdump
    sees only what the bridge floods or delivers locally, not unicast forwarded between ports)
    writing `path`; returns the process once it captures."""
    p = world.spawn("tcpdump", ["tcpdump", "-i", iface, "-nn", "--immediate-mode", "-B", "8192", "-U",
                                  "-s", "0", "-w", path],
                    ns=world.world_ns)
    dc.poll("tcpdump listening", lambda: "listening on" in p.stderr() or p.popen.poll() is not None)
    if not p.running():
        raise RuntimeError(f"tcpdump exited: {p.stderr()}")
    return p


def read_pcap(path, bpf_filter=None):
    """The lines of `tcpdump -nn -r path [filter]`."""
    args = ["tcpdump", "-nn", "-r", path] + ([bpf_filter] if bpf_filter else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"tcpdump -r: {r.stderr.strip()}")
    return r.stdout.splitlines()


def uapi_peers(interface, timeout=2.0):
    """{public key (base64): {"endpoint", "allowed_ips" (sorted list)}} of a wireguard-go
    interface, read from its UAPI socket with the text configuration protocol (`get=1`): no
    process spawned, so a poller can look every few milliseconds."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(os.path.join(dc.WIREGUARD_SOCKETS, f"{interface}.sock"))
        s.sendall(b"get=1\n\n")
        data = b""
        while not data.endswith(b"\n\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    peers, current = {}, None
    for line in data.decode().splitlines():
        key, _, value = line.partition("=")
        if key == "public_key":
            current = {"endpoint": None, "allowed_ips": []}
            peers[base64.b64encode(bytes.fromhex(value)).decode()] = current
        elif current is not None and key == "endpoint":
            current["endpoint"] = value
        elif current is not None and key == "allowed_ip":
            current["allowed_ips"].append(value)
        elif key == "errno" and value != "0":
            raise RuntimeError(f"UAPI get on {interface}: errno {value}")
    for p in peers.values():
        p["allowed_ips"].sort()
    return peers


def random_public_key():
    """A WireGuard public key (base64 of 32 random bytes) for a server that has no agent."""
    return base64.b64encode(os.urandom(32)).decode()
