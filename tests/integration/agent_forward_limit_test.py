#!/usr/bin/env python3
"""forward_limit end to end: the real agent forwards names outside its zone to a real (tiny)
upstream on loopback; a caller that sends faster than its bucket gets REFUSED for the rest,
another caller keeps its own bucket, zone answers are never limited, and the count shows in
/metrics. Loopback only; no root needed.
    agent_forward_limit_test.py BUILD_DIR
"""
import os
import socket
import sys
import threading
import time

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

sys.dont_write_bytecode = True  # keep the source tree clean
import harness  # noqa: E402  (this directory)

DEADLINE = 20  # seconds: the machine may be loaded
PER_SECOND, BURST = 2, 5


def upstream(sock, stop):
    """Answers every query with its question and NOERROR, no records."""
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(512)
        except socket.timeout:
            continue
        try:
            reply = dns.message.make_response(dns.message.from_wire(data))
        except dns.exception.DNSException:
            continue
        reply.flags |= dns.flags.RA
        sock.sendto(reply.to_wire(), peer)


def ask(source, port, name):
    """The rcode of the agent's answer to `name`, asked from `source`."""
    q = dns.message.make_query(name, dns.rdatatype.A)
    return dns.query.udp(q, "127.0.0.1", timeout=5, port=port, source=source,
                         ignore_unexpected=True).rcode()


def main():
    build = sys.argv[1]
    agent_bin = os.path.join(build, "agent", "elasticdns-agent")
    ws = harness.Workspace(prefix="edns-limit-")
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.bind(("127.0.0.1", 0))
    stop = threading.Event()
    t = threading.Thread(target=upstream, args=(up, stop), daemon=True)
    t.start()
    os.mkdir(ws.path("state"))
    ws.write("state/topology.json", """{"index": 1, "servers": [{"name": "host1", "address": "127.0.0.1"}],
 "services": [{"name": "api"}], "versions": [{"name": "v1", "generation": 1}],
 "containers": [{"id": "api-1", "service": "api", "version": "v1", "server": "host1",
                 "address": "10.77.1.1"}]}""")
    agent = harness.Agent(ws, agent_bin, {
        "listen": ["127.0.0.1:0"],
        "server_name": "host1",
        "state_dir": ws.path("state"),
        "upstreams": [f"127.0.0.1:{up.getsockname()[1]}"],
        "metrics_listen": "127.0.0.1:0",
        "forward_limit": {"per_second": PER_SECOND, "burst": BURST},
    })
    try:
        agent.start(DEADLINE)
        dns_port = agent.port

        start = time.monotonic()
        rcodes = [ask("127.0.0.1", dns_port, f"n{i}.example.test") for i in range(20)]
        elapsed = time.monotonic() - start
        ok, refused = rcodes.count(dns.rcode.NOERROR), rcodes.count(dns.rcode.REFUSED)
        # The burst, plus what the bucket refilled while the 20 queries ran.
        allowed_max = BURST + int(elapsed * PER_SECOND) + 1
        assert BURST <= ok <= allowed_max, f"{ok} forwarded of 20 in {elapsed:.2f}s: {rcodes}"
        assert ok + refused == 20, f"other rcodes: {rcodes}"
        assert rcodes[:BURST] == [0] * BURST, f"the burst was not forwarded: {rcodes}"
        print(f"ok: caller 127.0.0.1: {ok} forwarded, {refused} REFUSED in {elapsed:.2f}s")

        other = [ask("127.0.0.2", dns_port, f"m{i}.example.test") for i in range(3)]
        assert other == [0, 0, 0], f"caller 127.0.0.2 was limited too: {other}"
        print("ok: caller 127.0.0.2 has its own bucket")

        zone = ask("127.0.0.1", dns_port, "api.cloud66.local")
        assert zone == 0, f"a zone answer for the limited caller: rcode {zone}"
        print(f"ok: the limited caller still gets zone answers (rcode {zone})")

        got = agent.metric("elasticdns_agent_forward_limited_total")
        assert got == refused, f"metric: {got}, want {refused}"
        print(f"ok: elasticdns_agent_forward_limited_total {got}")
    except Exception:
        for name, kind, text in ws.logs(tail=3000):
            sys.stdout.write(f"--- {name} {kind}\n{text}\n")
        raise
    finally:
        ws.close()
        stop.set()
        t.join()
        up.close()


if __name__ == "__main__":
    main()
