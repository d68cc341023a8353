#!/usr/bin/env python3
"""A bounded, continuous stream of DNS queries for one name over UDP and TCP, each query on a
fresh socket (as stub resolvers do), no retries: every query that gets no correct answer within
TIMEOUT counts as failed. Used across agent restarts (agent_restart_test.sh).

  query_stream.py SERVER NAME EXPECT STOPFILE MAX_SECONDS

Runs until STOPFILE exists or MAX_SECONDS passed. Prints `progress udp_ok=N tcp_ok=M` every
0.2 s, each failure as `failed PROTO T REASON`, and at the end
`udp sent=N ok=N failed=N tcp sent=N ok=N failed=N`. Exit 0 only when nothing failed."""
import os
import random
import socket
import struct
import sys
import threading
import time

TIMEOUT = 1.0  # seconds; the agent answers zone names in well under a millisecond
UDP_GAP = 0.002  # between queries of one stream: a few hundred queries a second
TCP_GAP = 0.005

server, name, expect, stopfile, max_seconds = sys.argv[1:6]
deadline = time.monotonic() + float(max_seconds)
want = socket.inet_aton(expect)
qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
lock = threading.Lock()
stats = {p: {"sent": 0, "ok": 0, "failed": 0} for p in ("udp", "tcp")}
t0 = time.monotonic()


def query(qid):
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)


def check(qid, reply):
    if len(reply) < 12:
        return "short reply"
    rid, flags = struct.unpack(">HH", reply[:4])
    if rid != qid:
        return "wrong id"
    if flags & 0x000F:
        return "rcode %d" % (flags & 0x0F)
    if want not in reply[12 + len(qname) + 4:]:
        return "answer without " + expect
    return None


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


def udp_stream():
    while running():
        qid = random.randrange(65536)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(TIMEOUT)
        try:
            s.sendto(query(qid), (server, 53))
            reply, _ = s.recvfrom(4096)
            err = check(qid, reply)
        except OSError as e:
            err = "%s: %s" % (type(e).__name__, e)
        finally:
            s.close()
        record("udp", err)
        time.sleep(UDP_GAP)


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def tcp_stream():
    while running():
        qid = random.randrange(65536)
        try:
            with socket.create_connection((server, 53), timeout=TIMEOUT) as s:
                s.settimeout(TIMEOUT)
                q = query(qid)
                s.sendall(struct.pack(">H", len(q)) + q)
                (n,) = struct.unpack(">H", recv_exact(s, 2))
                err = check(qid, recv_exact(s, n))
        except OSError as e:
            err = "%s: %s" % (type(e).__name__, e)
        record("tcp", err)
        time.sleep(TCP_GAP)


threads = [threading.Thread(target=f) for f in (udp_stream, tcp_stream)]
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
