#!/usr/bin/env python3
"""Standards conformance of the real agent, checked with real DNS clients (dig, kdig, drill) on
loopback, as an operator's outside checks would:

- a delegation checker's walk of the apex: SOA and NS, the NS name's A/AAAA, the zone served
  authoritatively with the same SOA at each of those addresses, glue equal to the addresses,
  ANY at the apex; every answer the same over UDP and TCP;
- the DO bit copied into the reply's OPT (RFC 3225 3); error replies (NOTIMP, REFUSED, FORMERR,
  BADVERS, SERVFAIL) to a query with OPT carry an OPT and the question (RFC 6891 7);
- upstream failures (a real local upstream that never answers, or answers SERVFAIL) held per
  RFC 9520: a burst of queries for a failing name sends one upstream query, later queries are
  answered at once without asking upstream until the hold ends, and the hold backs off.

    conformance_test.py BUILD_DIR
Loopback only (127.0.0.1, ::1); no root. Exit 77 (skipped) when a client is missing.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rrset

sys.dont_write_bytecode = True  # keep the source tree clean
import harness  # noqa: E402  (this directory)

SKIP = 77
DEADLINE = 20  # seconds: the machine may be loaded
DOMAIN = "conformance.test"
NS_NAME = f"ns.{DOMAIN}."
HOLD = 2  # upstream_failure_cache.initial, seconds: room for a slow client start
UPSTREAM_TRIES = 3  # the forwarder's attempts per query (agent/upstream/forwarder.hpp)


class Upstream:
    """A tiny resolver on 127.0.0.1: silent.* never answered, broken.* SERVFAIL, the rest one A
    record. Counts the queries per name."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.asked = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def count(self, name):
        with self.lock:
            return self.asked.get(name, 0)

    def _serve(self):
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
                query = dns.message.from_wire(data)
            except (socket.timeout, dns.exception.DNSException):
                continue
            name = query.question[0].name.to_text().lower()
            with self.lock:
                self.asked[name] = self.asked.get(name, 0) + 1
            if name.startswith("silent."):
                continue
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.RA
            if name.startswith("broken."):
                reply.set_rcode(dns.rcode.SERVFAIL)
            else:
                reply.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.80"))
            self.sock.sendto(reply.to_wire(), peer)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


def run(argv):
    """Runs a DNS client; returns its parsed output: status, flags, edns (version, flags) or
    None, and the sections as sets of (owner, type, rdata) in lowercase, TTLs left out."""
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    r = {"status": None, "flags": set(), "edns": None, "sections": {}, "text": out}
    section = None
    for line in out.splitlines():
        if m := re.search(r"(?:status|rcode): ([A-Z]+)", line):
            r["status"] = r["status"] or m.group(1)
        if (m := re.match(r";; [Ff]lags: ([a-z ]*);", line)) and not r["flags"]:
            r["flags"] = set(m.group(1).split())
        if m := re.search(r"[Vv]ersion: (\d+)[;,] flags: ?([a-z ]*);", line):
            r["edns"] = (int(m.group(1)), set(m.group(2).split()))
        if m := re.match(r";; ([A-Z]+) SECTION:", line):
            section = m.group(1)
            r["sections"].setdefault(section, set())
            continue
        if not line.strip():
            section = None  # a blank line ends a section
            continue
        fields = line.lstrip(";").split()
        if section == "QUESTION" and len(fields) >= 3:
            r["sections"][section].add((fields[0].lower(), fields[-1], ""))
        elif section and line and not line.startswith(";") and len(fields) >= 5:
            r["sections"][section].add(
                (fields[0].lower(), fields[3], " ".join(fields[4:]).lower()))
    return r


def dig(server, port, name, qtype, *opts, tcp=False):
    return run(["dig", "-p", str(port), f"@{server}", name, qtype, "+norecurse", "+nocookie",
                "+tcp" if tcp else "+notcp", *opts])


def records(reply, section, rtype=None):
    return {rr for rr in reply["sections"].get(section, set()) if rtype in (None, rr[1])}


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


def check_apex(servers):
    """A delegation checker's walk: NS and SOA at the apex, the NS name's addresses, the zone at
    each of them; UDP and TCP alike. `servers`: the agent's (address, port) per listen address."""
    addr, port = servers[0]
    for tcp in (False, True):
        how = "TCP" if tcp else "UDP"
        ns = dig(addr, port, DOMAIN, "NS", tcp=tcp)
        check(ns["status"] == "NOERROR" and "aa" in ns["flags"], f"{how}: NS at the apex, AA")
        check(records(ns, "ANSWER") == {(DOMAIN + ".", "NS", NS_NAME)},
              f"{how}: the apex NS names the agent ({NS_NAME})")
        soa = dig(addr, port, DOMAIN, "SOA", tcp=tcp)
        (soa_rr,) = records(soa, "ANSWER", "SOA")
        check(soa_rr[2].split()[0] == NS_NAME, f"{how}: the SOA's MNAME is the NS name")
        a = records(dig(addr, port, NS_NAME, "A", tcp=tcp), "ANSWER", "A")
        aaaa = records(dig(addr, port, NS_NAME, "AAAA", tcp=tcp), "ANSWER", "AAAA")
        addresses = {rr[2] for rr in a | aaaa}
        check(addresses == {h for h, _ in servers},
              f"{how}: the NS name's A/AAAA are the listen addresses {sorted(addresses)}")
        check(records(ns, "ADDITIONAL") == a | aaaa, f"{how}: the NS answer's glue = A/AAAA")
        any_ = dig(addr, port, DOMAIN, "ANY", tcp=tcp)
        check(records(any_, "ANSWER") == records(ns, "ANSWER") | {soa_rr},
              f"{how}: ANY at the apex = SOA + NS")
        # The zone at every address of the NS name: authoritative, the same SOA.
        for host, p in servers:
            at = dig(host, p, DOMAIN, "SOA", tcp=tcp)
            check("aa" in at["flags"] and records(at, "ANSWER", "SOA") == {soa_rr},
                  f"{how}: {host} serves the zone with the same SOA")
    # ldns's drill agrees.
    d = run(["drill", "-p", str(port), "@" + addr, DOMAIN, "NS"])
    check(records(d, "ANSWER") == {(DOMAIN + ".", "NS", NS_NAME)} and
          records(d, "ADDITIONAL", "A") and records(d, "ADDITIONAL", "AAAA"),
          "drill: NS with glue")


def check_edns(addr, port):
    for client in ("dig", "kdig"):
        for do in (False, True):
            argv = [client, "-p", str(port), f"@{addr}", f"api.{DOMAIN}", "A", "+edns=0"]
            r = run(argv + (["+dnssec"] if do else []))
            check(r["status"] == "NOERROR" and r["edns"] and ("do" in r["edns"][1]) == do,
                  f"{client}: DO {'set' if do else 'clear'} in the query, "
                  f"{'set' if do else 'clear'} in the reply's OPT")
    bad = run(["kdig", "-p", str(port), f"@{addr}", DOMAIN, "SOA", "+edns=1", "+dnssec"])
    check(bad["status"] == "BADVERS" and bad["edns"] == (0, {"do"}) and
          records(bad, "QUESTION") == {(DOMAIN + ".", "SOA", "")},
          "kdig +edns=1: BADVERS, OPT version 0 with DO, the question kept")


def check_errors(addr, port):
    def error_reply(r, status, what):
        check(r["status"] == status and r["edns"] is not None and "do" in r["edns"][1] and
              len(r["sections"].get("QUESTION", ())) == 1,
              f"{what}: {status} with the question and an OPT with DO")

    error_reply(dig(addr, port, DOMAIN, "SOA", "+opcode=status", "+dnssec"), "NOTIMP",
                "dig +opcode=status")
    error_reply(dig(addr, port, DOMAIN, "SOA", "-b", "127.0.0.2", "+dnssec"), "REFUSED",
                "dig from outside allow_networks")
    # FORMERR: a query with a record in its answer section (dnspython; no client sends one).
    q = dns.message.make_query(f"api.{DOMAIN}", "A", use_edns=0, want_dnssec=True)
    q.answer.append(dns.rrset.from_text(f"api.{DOMAIN}.", 5, "IN", "A", "192.0.2.1"))
    r = dns.query.udp(q, addr, port=port, timeout=5)
    check(r.rcode() == dns.rcode.FORMERR and r.edns == 0 and r.ednsflags & dns.flags.DO and
          len(r.question) == 1,
          "FORMERR with the question and an OPT with DO")
    # AXFR over TCP (dig and kdig print no reply for a failed transfer): NOTIMP.
    q = dns.message.make_query(DOMAIN, "AXFR", use_edns=0, want_dnssec=True)
    r = dns.query.tcp(q, addr, port=port, timeout=5)
    check(r.rcode() == dns.rcode.NOTIMP and r.edns == 0 and r.ednsflags & dns.flags.DO and
          len(r.question) == 1,
          "AXFR over TCP: NOTIMP with the question and an OPT with DO")


def timed(fn, *args):
    start = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - start


def check_failures(addr, port, up, agent):
    def ask(name):
        return dig(addr, port, name, "A", "+dnssec", "+tries=1", "+time=10")

    hits = "elasticdns_agent_upstream_failure_cache_hits_total"
    # A burst for a name upstream never answers: one upstream query (and its retries).
    with ThreadPoolExecutor(5) as pool:
        replies = list(pool.map(ask, ["silent.example.test."] * 5))
    check(all(r["status"] == "SERVFAIL" and r["edns"] and "do" in r["edns"][1] and
              len(r["sections"].get("QUESTION", ())) == 1 for r in replies),
          "a burst for a silent upstream: SERVFAIL with the question and OPT, to every query")
    check(up.count("silent.example.test.") == UPSTREAM_TRIES,
          f"... after one upstream query ({up.count('silent.example.test.')} attempts)")
    check(agent.metric("elasticdns_agent_upstream_joined_total") == 4, "... 4 joined it")
    # Right after: held, answered at once, upstream not asked.
    r, took = timed(ask, "silent.example.test.")
    check(r["status"] == "SERVFAIL" and took < HOLD / 2 and
          up.count("silent.example.test.") == UPSTREAM_TRIES,
          f"held: SERVFAIL in {took * 1000:.0f} ms without asking upstream")
    check(agent.metric(hits) == 1, "failure cache hits: 1")

    # SERVFAIL from upstream: held too, then asked again after the hold, held twice as long.
    check(ask("broken.example.test.")["status"] == "SERVFAIL", "upstream SERVFAIL: SERVFAIL")
    n = up.count("broken.example.test.")
    check(ask("broken.example.test.")["status"] == "SERVFAIL" and
          up.count("broken.example.test.") == n, "... held: upstream not asked again")
    time.sleep(HOLD + 0.1)  # the hold is what is tested: it ends after HOLD seconds
    ask("broken.example.test.")
    check(up.count("broken.example.test.") == 2 * n, "after the hold: asked again")
    time.sleep(HOLD + 0.1)
    ask("broken.example.test.")
    check(up.count("broken.example.test.") == 2 * n,
          f"failed again: held {2 * HOLD} s now (backoff), not asked after {HOLD} s")
    check(ask("fine.example.test.")["status"] == "NOERROR", "other names are forwarded")


def main():
    build = sys.argv[1]
    missing = [t for t in ("dig", "kdig", "drill") if shutil.which(t) is None]
    if missing:
        print(f"SKIP: missing {', '.join(missing)} (scripts/install-deps.sh installs them)")
        return SKIP
    agent_bin = os.path.join(build, "agent", "elasticdns-agent")
    ws = harness.Workspace(prefix="edns-conformance-")
    up = Upstream()
    os.mkdir(ws.path("state"))
    ws.write("state/topology.json", """{"index": 3, "servers": [{"name": "host1", "address": "127.0.0.1"}],
 "services": [{"name": "api"}], "versions": [{"name": "v1", "generation": 1}],
 "containers": [{"id": "api-1", "service": "api", "version": "v1", "server": "host1",
                 "address": "10.77.1.1"}]}""")
    agent = harness.Agent(ws, agent_bin, {
        "domain": DOMAIN,
        "listen": ["127.0.0.1:0", "[::1]:0"],
        "server_name": "host1",
        "state_dir": ws.path("state"),
        "upstreams": [up.address],
        "metrics_listen": "127.0.0.1:0",
        "allow_networks": ["127.0.0.1/32", "::1/128"],
        "upstream_failure_cache": {"initial": f"{HOLD}s", "max": "30s"},
    })
    try:
        agent.start(DEADLINE)
        servers = [(h.strip("[]"), p) for h, p in agent.udp]
        check([p for _, p in agent.tcp] == [p for _, p in servers], "TCP on the UDP ports")
        addr, port = servers[0]
        check_apex(servers)
        check_edns(addr, port)
        check_errors(addr, port)
        check_failures(addr, port, up, agent)
    except Exception:
        for name, kind, text in ws.logs(tail=3000):
            sys.stdout.write(f"--- {name} {kind}\n{text}\n")
        raise
    finally:
        errors = ws.close()
        up.close()
    if errors:
        raise AssertionError(f"cleanup: {errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
