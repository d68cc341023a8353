#!/usr/bin/env python3
"""A bounded, continuous stream of DNS queries for one name over UDP and TCP, each query on a
fresh socket (as stub resolvers do), no retries: every query that gets no correct answer within
TIMEOUT counts as failed. Used across agent restarts (agent_restart_test.sh).

  query_stream.py SERVER NAME EXPECT STOPFILE MAX_SECONDS

Runs until STOPFILE exists or MAX_SECONDS passed. Prints `progress udp_ok=N tcp_ok=M` every
0.2 s, each failure as `failed PROTO T REASON`, and at the end
`udp sent=N ok=N failed=N tcp sent=N ok=N failed=N`. Exit 0 only when nothing failed."""
import os
import sys
import threading
import time

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

TIMEOUT = 1.0  # seconds; the agent answers zone names in well under a millisecond
UDP_GAP = 0.002  # between queries of one stream: a few hundred queries a second
TCP_GAP = 0.005

server, name, expect, stopfile, max_seconds = sys.argv[1:6]
deadline = time.monotonic() + float(max_seconds)
lock = threading.Lock()
stats = {p: {"sent": 0, "ok": 0, "failed": 0} for p in ("udp", "tcp")}
t0 = time.monotonic()


def check(reply):
    """None when `reply` answers NOERROR with an A record of EXPECT, else the reason."""
    if reply.rcode() != dns.rcode.NOERROR:
        return "rcode %d" % reply.rcode()
    if not any(rr.address == expect for rrset in reply.answer
               if rrset.rdtype == dns.rdatatype.A for rr in rrset):
        return "answer without " + expect
    return None


def ask(send):
    """The outcome of one query sent by `send` (dns.query.udp or tcp): None or the reason."""
    try:
        return check(send(dns.message.make_query(name, dns.rdatatype.A), server,
                          timeout=TIMEOUT, port=53))
    except (OSError, dns.exception.DNSException) as e:
        return "%s: %s" % (type(e).__name__, e)


def record(proto, err):
    with lock:
        s = stats[proto]
        s["sent"] += 1
        if err is None:
            s["ok"] += 1
        else:
            s["failed"] += 1
            print("failed %s %.3f %s" % (proto, time.monotonic() - t0, err), flush=True)


def running():
    return time.monotonic() < deadline and not os.path.exists(stopfile)


def stream(proto, send, gap):
    while running():
        record(proto, ask(send))
        time.sleep(gap)


threads = [threading.Thread(target=stream, args=("udp", dns.query.udp, UDP_GAP)),
           threading.Thread(target=stream, args=("tcp", dns.query.tcp, TCP_GAP))]
for t in threads:
    t.start()
while any(t.is_alive() for t in threads):
    with lock:
        print("progress udp_ok=%d tcp_ok=%d" % (stats["udp"]["ok"], stats["tcp"]["ok"]), flush=True)
    time.sleep(0.2)
for t in threads:
    t.join()
u, t = stats["udp"], stats["tcp"]
print("udp sent=%d ok=%d failed=%d tcp sent=%d ok=%d failed=%d"
      % (u["sent"], u["ok"], u["failed"], t["sent"], t["ok"], t["failed"]), flush=True)
sys.exit(0 if u["failed"] == 0 and t["failed"] == 0 else 1)
