#!/usr/bin/python3
"""End to end: a real elasticdns-central, a real elasticdns-agent, a real unbound (Debian's)
as the upstream resolver, all on loopback, queried with dig and drill.

Proves: versioned answers by source address, non-versioned, roundrobin, sticky, closest,
datasources with groups and the primary alias, SRV, NXDOMAIN/NODATA with the SOA, TC over UDP
then the full answer over TCP, REFUSED outside allow_networks, forwarding to unbound, live
updates from central, central killed (the agent keeps answering, then adds EDE 3 Stale Answer),
the agent restarted while central is down (answers from its persisted snapshot), SIGTERM exits
0, metrics; and a bad config rejected at start and at SIGHUP while the old one keeps serving.

usage: agent_test.py BUILD_DIR       (exit 77 = skipped: a tool is missing)
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
import harness  # noqa: E402  (this directory)

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
AGENT = os.path.join(BUILD, "agent", "elasticdns-agent")
CENTRAL = os.path.join(BUILD, "central", "elasticdns-central")
DOMAIN = "cloud66.local"
DEADLINE = 10.0  # seconds to wait for any condition

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def wait_for(fn, what, deadline=DEADLINE):
    return harness.poll(what, fn, deadline, interval=0.05)


def free_port(addr):
    """A port free for both UDP and TCP on addr (unbound needs both)."""
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((addr, 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind((addr, port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


class Agent(harness.Agent):
    """The agent on loopback, asked with dig."""

    def dig(self, name, qtype="A", src=None, *opts):
        cmd = ["dig", "@127.0.0.1", "-p", str(self.port), "+time=2", "+tries=1"]
        if src:
            cmd += ["-b", src]
        cmd += list(opts) + [name, qtype]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout

    def answers(self, name, qtype="A", src=None, *opts):
        out = self.dig(name, qtype, src, "+noall", "+answer", *opts)
        return [l.split(None, 4)[4] for l in out.splitlines() if l and not l.startswith(";")]


def status(out):
    m = re.search(r"status: (\w+)", out)
    return m.group(1) if m else None


def flags(out):
    m = re.search(r"flags: ([a-z ]*);", out)
    return set(m.group(1).split()) if m else set()


def container(central, cid, service, version, server, address, state="running"):
    central.put("containers", cid, {"service": service, "version": version, "server": server,
                                    "address": address, "state": state})


def scenario(ws):
    # --- unbound: the "internet", a local zone on its own loopback address ---
    ub_addr = f"127.77.{os.getpid() % 200}.1"
    ub_port = free_port(ub_addr)
    ub_dir = ws.path("unbound")
    os.mkdir(ub_dir)
    with open(os.path.join(ub_dir, "unbound.conf"), "w") as f:
        f.write(f"""server:
  interface: {ub_addr}@{ub_port}
  port: {ub_port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{ub_dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  num-threads: 1
  do-ip6: no
  local-zone: "example.test." static
  local-data: "www.example.test. 300 IN A 192.0.2.1"
remote-control:
  control-enable: no
""")
    unbound = ws.spawn("unbound", ["unbound", "-d", "-c", os.path.join(ub_dir, "unbound.conf")])
    wait_for(lambda: "192.0.2.1" in subprocess.run(
        ["dig", "@" + ub_addr, "-p", str(ub_port), "+short", "+time=1", "+tries=1",
         "www.example.test"], capture_output=True, text=True).stdout, "unbound")

    # --- central with a topology ---
    central = harness.Central(ws, CENTRAL).start()
    for name in ("host1", "host2"):
        central.put("servers", name, {"address": "192.0.2.10"})
    central.put("services", "api", {"ports": ["3000:80:443"]})
    central.put("services", "flat", {"dns_behaviour": "non-versioned"})
    central.put("services", "stick", {"load_balancing": "sticky"})
    central.put("services", "near", {"load_balancing": "closest"})
    # v1 first: central orders versions by first sight.
    container(central, "web-1", "web", "v1", "host1", "127.0.1.1")
    container(central, "api-1a", "api", "v1", "host1", "10.0.1.1")
    container(central, "api-1b", "api", "v1", "host1", "10.0.1.2")
    container(central, "flat-1", "flat", "v1", "host1", "10.5.0.1")
    container(central, "web-2", "web", "v2", "host1", "127.0.1.2")
    container(central, "web-3", "web", "v2", "host2", "127.0.1.3")
    container(central, "api-2a", "api", "v2", "host1", "10.0.2.1")
    container(central, "api-2b", "api", "v2", "host2", "10.0.2.2")
    container(central, "api-2c", "api", "v2", "host2", "10.0.2.3", state="draining")
    container(central, "flat-2", "flat", "v2", "host1", "10.5.0.2")
    for i in range(1, 5):
        container(central, f"stick-{i}", "stick", "v1", "host1", f"10.6.0.{i}")
    container(central, "near-1", "near", "v1", "host1", "10.7.0.1")
    container(central, "near-2", "near", "v1", "host2", "10.7.0.2")
    container(central, "near-3", "near", "v1", "host2", "10.7.0.3")
    for i in range(40):
        container(central, f"big-{i}", "big", "v1", "host1", f"10.8.0.{i + 1}")
    central.put("datasources", "mysql/main", {"primary": True, "addresses": ["10.9.0.1"]})
    central.put("datasources", "mysql/spare", {"addresses": ["10.9.0.2"]})

    agent_config = {
        "listen": ["127.0.0.1:0"],
        "server_name": "host1",
        "central": {"urls": [central.url], "token_file": central.agent_token_file},
        "upstreams": [f"{ub_addr}:{ub_port}"],
        "stale_after": "2s",
        "sticky_window": "60s",
        "state_dir": ws.path("state"),
        "allow_networks": ["127.0.0.0/16"],
        "metrics_listen": "127.0.0.1:0",
    }
    agent = Agent(ws, AGENT, agent_config).start()
    wait_for(lambda: agent.answers("api." + DOMAIN, "A", "127.0.1.1"), "the first snapshot")

    s = lambda xs: sorted(xs)
    # Versioned by source address; draining never answered.
    check(s(agent.answers("api." + DOMAIN, "A", "127.0.1.1")) == ["10.0.1.1", "10.0.1.2"],
          "versioned: a v1 caller gets v1 api containers")
    check(s(agent.answers("api." + DOMAIN, "A", "127.0.1.2")) == ["10.0.2.1", "10.0.2.2"],
          "versioned: a v2 caller gets v2 (draining left out)")
    check(s(agent.answers("api." + DOMAIN, "A", "127.0.0.1")) == ["10.0.2.1", "10.0.2.2"],
          "versioned: an unknown caller gets the latest")
    check(agent.answers("flat." + DOMAIN, "A", "127.0.1.1") == ["10.5.0.2"],
          "non-versioned: the latest whoever asks")
    firsts = {agent.answers("api." + DOMAIN, "A", "127.0.1.1")[0] for _ in range(6)}
    check(len(firsts) == 2, "roundrobin: the list rotates")
    sticky = [agent.answers("stick." + DOMAIN, "A", "127.0.1.1") for _ in range(5)]
    check(all(len(a) == 1 for a in sticky) and len({a[0] for a in sticky}) == 1,
          "sticky: one address, the same every time")
    ttl = int(agent.dig("stick." + DOMAIN, "A", "127.0.1.1", "+noall", "+answer").split()[1])
    check(ttl <= 5, "sticky: TTL within the answer TTL and the window")
    check(s(agent.answers("near." + DOMAIN, "A", "127.0.1.3")) == ["10.7.0.2", "10.7.0.3"],
          "closest: a host2 caller gets host2's containers")
    check(agent.answers("near." + DOMAIN, "A", "127.0.1.1") == ["10.7.0.1"],
          "closest: a host1 caller gets host1's")
    check(agent.answers("mysql." + DOMAIN) == ["10.9.0.1"], "datasource: primary group alias")
    check(agent.answers("spare.mysql." + DOMAIN) == ["10.9.0.2"], "datasource: group name")
    check(agent.answers("_http._tcp.api." + DOMAIN, "SRV") == ["0 0 3000 api.cloud66.local."],
          "SRV from ports")
    nx = agent.dig("nope." + DOMAIN)
    check(status(nx) == "NXDOMAIN" and "SOA" in nx and "aa" in flags(nx), "NXDOMAIN with SOA, AA")
    nodata = agent.dig("api." + DOMAIN, "TXT")
    check(status(nodata) == "NOERROR" and "ANSWER: 0" in nodata and "AUTHORITY: 1" in nodata,
          "NODATA with SOA")
    tc = agent.dig("big." + DOMAIN, "A", None, "+noedns", "+ignore")
    check("tc" in flags(tc) and "ANSWER: 0" in tc, "UDP without EDNS: TC")
    check(len(agent.answers("big." + DOMAIN, "A", None, "+tcp")) == 40, "TCP: the full answer")
    drill = subprocess.run(["drill", "-t", "-p", str(agent.port), "@127.0.0.1",
                            "big." + DOMAIN, "A"], capture_output=True, text=True, timeout=10)
    check(drill.stdout.count("\tA\t10.8.0.") == 40, "drill over TCP: the full answer")
    drill = subprocess.run(["drill", "-p", str(agent.port), "@127.0.0.1", "-b", "1232",
                            "api." + DOMAIN, "A"], capture_output=True, text=True, timeout=10)
    check("rcode: NOERROR" in drill.stdout and "\tA\t10.0.2." in drill.stdout,
          "drill with EDNS: answered")
    check(status(agent.dig("api." + DOMAIN, "A", "127.200.0.1")) == "REFUSED",
          "REFUSED outside allow_networks")
    check(agent.answers("www.example.test") == ["192.0.2.1"], "forwarded to unbound")
    check(status(agent.dig("nothing.example.test")) == "NXDOMAIN", "forwarded NXDOMAIN")
    check(agent.answers("www.example.test", "A", None, "+tcp") == ["192.0.2.1"],
          "forwarded over TCP")
    check("EDE" not in agent.dig("api." + DOMAIN), "fresh answers carry no EDE")
    why = agent.dig("_explain.api." + DOMAIN, "TXT", "127.0.1.1", "+short")
    check("caller=web-1 version=v1" in why and "own version" in why, "explain TXT: " + why.strip())

    # Live update from central.
    container(central, "api-2d", "api", "v2", "host1", "10.0.2.4")
    wait_for(lambda: "10.0.2.4" in agent.answers("api." + DOMAIN, "A", "127.0.1.2"),
             "a new container to appear")
    check(True, "live update: a new container appears")

    metrics = agent.metrics_text()
    m = re.search(r'elasticdns_agent_queries_total\{type="A",rcode="NOERROR"\} (\d+)', metrics)
    check(m is not None and int(m.group(1)) > 10, "metrics: queries by type and rcode")
    check('elasticdns_agent_callers_total{caller="identified"}' in metrics, "metrics: callers")

    # Central killed mid-test: answers go on, then carry EDE 3 (Stale Answer).
    central.kill()
    check(s(agent.answers("api." + DOMAIN, "A", "127.0.1.1")) == ["10.0.1.1", "10.0.1.2"],
          "central down: still answering")
    wait_for(lambda: "EDE: 3" in agent.dig("api." + DOMAIN), "EDE 3 (Stale Answer)")
    stale = agent.dig("api." + DOMAIN)
    check("EDE: 3" in stale and status(stale) == "NOERROR", "stale answers carry EDE 3")

    # The agent restarted while central is down: it answers from its persisted snapshot.
    check(agent.stop() == 0, "SIGTERM: the agent exits 0")
    agent2 = Agent(ws, AGENT, agent_config, "agent2").start()
    check(s(agent2.answers("api." + DOMAIN, "A", "127.0.1.1")) == ["10.0.1.1", "10.0.1.2"],
          "restarted with central down: answers from disk")
    check("10.0.2.4" in agent2.answers("api." + DOMAIN, "A", "127.0.1.2"),
          "restarted: the snapshot is the latest one")

    # SIGHUP with a bad config: rejected, the old one keeps serving; a good one applies.
    agent2.config["ttl"] = "forever"
    agent2.write_config()
    agent2.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload rejected" in agent2.log(), "the reload to be rejected")
    check("ttl" in agent2.log().split("reload rejected", 1)[1].splitlines()[0],
          "SIGHUP bad config: the log names the key")
    check(agent2.answers("api." + DOMAIN, "A", "127.0.1.1") != [], "old config keeps serving")
    agent2.config["ttl"] = "7s"
    agent2.write_config()
    agent2.send_signal(signal.SIGHUP)
    wait_for(lambda: agent2.dig("flat." + DOMAIN, "A", None, "+noall", "+answer").split()[1:2]
             == ["7"], "the new TTL")
    check(True, "SIGHUP good config: applied")
    check(agent2.stop() == 0, "SIGTERM again: exit 0")
    unbound.stop()

    # systemd notifications, to a real notify socket: READY, WATCHDOG, STOPPING.
    notify_path = ws.path("notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    env = {"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "200000"}
    agent3 = Agent(ws, AGENT, agent_config, "agent3", env=env).start()
    got = []
    end = time.monotonic() + DEADLINE
    notify.settimeout(0.5)
    while time.monotonic() < end and not (b"READY=1" in got and got.count(b"WATCHDOG=1") >= 2):
        try:
            got += notify.recv(4096).split(b"\n")
        except socket.timeout:
            pass
    check(b"READY=1" in got, "sd_notify READY=1")
    check(got.count(b"WATCHDOG=1") >= 2, "sd_notify WATCHDOG=1, repeatedly")
    agent3.send_signal(signal.SIGTERM)
    try:
        got += notify.recv(4096).split(b"\n")
    except socket.timeout:
        pass
    check(b"STOPPING=1" in got, "sd_notify STOPPING=1 on SIGTERM")
    rc = agent3.stop()  # SIGTERM again while it stops: still a clean exit
    check(rc == 0, f"exit 0 after a second SIGTERM (got {rc})")
    notify.close()


def bad_config_at_start(ws):
    for text, key in (("listen: [\"127.0.0.1\"]\n", "listen/0"), ("ttl: soon\n", "ttl"),
                      ("colour: blue\n", "colour")):
        path = ws.write("bad.yaml", text)
        r = subprocess.run([AGENT, "--config", path], capture_output=True, text=True, timeout=10)
        check(r.returncode != 0 and key in r.stderr and "bad config" in r.stderr,
              f"bad config at start ({key}): exit {r.returncode}, {r.stderr.strip()}")


def main():
    for tool in ("dig", "drill", "unbound"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} is not installed (scripts/install-deps.sh installs it)")
            return 77
    for binary in (AGENT, CENTRAL):
        if not os.access(binary, os.X_OK):
            print(f"FAIL: {binary} not built")
            return 1
    ws = harness.Workspace(prefix="elasticdns-agent-it-")
    try:
        bad_config_at_start(ws)
        scenario(ws)
    except Exception as e:  # a timeout or a broken step: report it, clean up
        FAILURES.append(repr(e))
        print("FAIL", repr(e))
        for name, kind, text in ws.logs():
            print(f"--- {name} {kind} (tail)")
            print("\n".join(text.splitlines()[-15:]))
    finally:
        ws.close()
    print(f"{len(FAILURES)} failure(s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
