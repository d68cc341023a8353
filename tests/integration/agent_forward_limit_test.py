#!/usr/bin/env python3
"""forward_limit end to end: the real agent forwards names outside its zone to a real (tiny)
upstream on loopback; a caller that sends faster than its bucket gets REFUSED for the rest,
another caller keeps its own bucket, zone answers are never limited, and the count shows in
/metrics. Loopback only; no root needed.
    agent_forward_limit_test.py BUILD_DIR
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

DEADLINE = 20  # seconds: the machine may be loaded
PER_SECOND, BURST = 2, 5


def query(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


def upstream(sock, stop):
    """Answers every query with its question and NOERROR, no records."""
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(512)
        except socket.timeout:
            continue
        if len(data) >= 12:
            sock.sendto(data[:2] + b"\x81\x80" + data[4:6] + b"\x00\x00" * 3 + data[12:], peer)


def ask(source, port, name, qid):
    """The rcode of the agent's answer to `name`, asked from `source`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.settimeout(5)
    s.sendto(query(name, qid), ("127.0.0.1", port))
    while True:
        data, _ = s.recvfrom(4096)
        if data[:2] == struct.pack(">H", qid):
            s.close()
            return data[3] & 0x0F


def main():
    build = sys.argv[1]
    agent = os.path.join(build, "agent", "elasticdns-agent")
    tmp = tempfile.mkdtemp(prefix="edns-limit-")
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.bind(("127.0.0.1", 0))
    stop = threading.Event()
    t = threading.Thread(target=upstream, args=(up, stop), daemon=True)
    t.start()
    os.mkdir(os.path.join(tmp, "state"))
    with open(os.path.join(tmp, "state", "topology.json"), "w") as f:
        f.write("""{"index": 1, "servers": [{"name": "host1", "address": "127.0.0.1"}],
 "services": [{"name": "api"}], "versions": [{"name": "v1", "generation": 1}],
 "containers": [{"id": "api-1", "service": "api", "version": "v1", "server": "host1",
                 "address": "10.77.1.1"}]}""")
    config = os.path.join(tmp, "agent.yaml")
    with open(config, "w") as f:
        f.write(f"""listen: [127.0.0.1:0]
server_name: host1
state_dir: {tmp}/state
upstreams: ["127.0.0.1:{up.getsockname()[1]}"]
metrics_listen: 127.0.0.1:0
forward_limit: {{per_second: {PER_SECOND}, burst: {BURST}}}
""")
    log = open(os.path.join(tmp, "agent.log"), "wb")
    p = subprocess.Popen([agent, "--config", config], stdout=subprocess.PIPE, stderr=log,
                         stdin=subprocess.DEVNULL)
    try:
        lines, end = [], time.monotonic() + DEADLINE
        while len(lines) < 3:  # udp, tcp, metrics
            line = p.stdout.readline().decode()
            if not line or time.monotonic() > end:
                raise AssertionError(f"agent did not start: {lines}")
            if line.startswith("listening on"):
                lines.append(line.split()[2:])
        dns = next(int(a.rsplit(":", 1)[1]) for kind, a in lines if kind == "udp")
        metrics = "http://" + next(a for kind, a in lines if kind == "metrics")

        start = time.monotonic()
        rcodes = [ask("127.0.0.1", dns, f"n{i}.example.test", 100 + i) for i in range(20)]
        elapsed = time.monotonic() - start
        ok, refused = rcodes.count(0), rcodes.count(5)
        # The burst, plus what the bucket refilled while the 20 queries ran.
        allowed_max = BURST + int(elapsed * PER_SECOND) + 1
        assert BURST <= ok <= allowed_max, f"{ok} forwarded of 20 in {elapsed:.2f}s: {rcodes}"
        assert ok + refused == 20, f"other rcodes: {rcodes}"
        assert rcodes[:BURST] == [0] * BURST, f"the burst was not forwarded: {rcodes}"
        print(f"ok: caller 127.0.0.1: {ok} forwarded, {refused} REFUSED in {elapsed:.2f}s")

        other = [ask("127.0.0.2", dns, f"m{i}.example.test", 200 + i) for i in range(3)]
        assert other == [0, 0, 0], f"caller 127.0.0.2 was limited too: {other}"
        print("ok: caller 127.0.0.2 has its own bucket")

        zone = ask("127.0.0.1", dns, "api.cloud66.local", 300)
        assert zone == 0, f"a zone answer for the limited caller: rcode {zone}"
        print(f"ok: the limited caller still gets zone answers (rcode {zone})")

        with urllib.request.urlopen(f"{metrics}/metrics", timeout=5) as r:
            text = r.read().decode()
        got = [l for l in text.splitlines()
               if l.startswith("elasticdns_agent_forward_limited_total")]
        assert got and float(got[0].split()[-1]) == refused, f"metric: {got}, want {refused}"
        print(f"ok: {got[0]}")
    except Exception:
        log.flush()
        sys.stdout.write(open(os.path.join(tmp, "agent.log")).read()[-3000:])
        raise
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        stop.set()
        t.join()
        up.close()
        subprocess.run(["rm", "-rf", tmp], check=False)


if __name__ == "__main__":
    main()
