#!/usr/bin/python3
"""Traffic distribution benchmark, on the data centre of tests/integration/dc with a real nginx
on host1 configured by its agent (the same setup as dc/traffic_test.py).

  traffic_bench.py --central BIN --agent BIN [--nginx /usr/sbin/nginx] [--churn 200]
                   [--duration 5] [--connections 32] [--valid 2]

Prints:
  1. nginx reloads caused by --churn container starts/stops (half puts of running containers,
     half the same containers drained), from the agent's metric and nginx's own log. Target 0.
  2. requests/s and p50/p99 latency (wrk, keep-alive, --connections, --duration seconds) from
     an external client namespace through nginx on host1 to two containers, and directly to one
     container, in the same run. The containers run nginx answering a fixed body, so the
     backend is not the bottleneck.
  3. the time from "v2 is the latest version" (central acknowledged the write) until every new
     request goes to v2, over --switches rolling deploys, against the bound: traffic.valid plus
     the agent's propagation.
The machine may be shared: the load average is printed with each figure.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "dc"))
import dc  # noqa: E402
import elastic  # noqa: E402
import traffic_test as tt  # noqa: E402

BACKEND_PORT = 8080


def backend_nginx(world, binary, cid, host, address):
    """A container running nginx that answers "<cid>\\n" to everything."""
    c = world.add_container(host, cid, address)
    d = os.path.join(world.tmp, f"backend-{cid}")
    os.makedirs(d)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    server {{ listen {BACKEND_PORT}; keepalive_requests 100000; return 200 "{cid}\\n"; }}
}}
""")
    world.spawn(f"backend-{cid}", [binary, "-p", d + "/", "-c", conf, "-e", f"{d}/error.log"],
                ns=c.ns, cgroup=c.cgroup)
    dc.poll(f"{cid} pid", lambda: os.path.exists(f"{d}/nginx.pid"))
    return c


def wrk(client, url, host_header, duration, connections, close=False):
    """(requests/s, p50 ms, p99 ms, non-2xx) of one wrk run from the client namespace; close:
    a new connection per request."""
    extra = ["-H", "Connection: close"] if close else []
    r = dc.run(["ip", "netns", "exec", client.ns, "wrk", "-t", "2", "-c", str(connections), "-d",
                f"{duration}s", "--latency", "-H", f"Host: {host_header}"] + extra + [url],
               timeout=duration + 30)
    out = r.stdout

    def ms(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, ms("50"), ms("99"), int(bad.group(1)) if bad else 0


def churn(cluster, agent, nginx, n):
    reloads0 = tt.agent_metric(agent, "elasticdns_traffic_reloads_total")
    renders0 = tt.agent_metric(agent, "elasticdns_traffic_renders_total")
    sighups0 = nginx.reloads()
    half = n // 2
    for i in range(half):
        tt.elastic_put(cluster, f"churn-{i}", "host2", "web", "v1", f"10.77.2.{100 + i % 150}")
    for i in range(n - half):
        tt.elastic_put(cluster, f"churn-{i}", "host2", "web", "v1", f"10.77.2.{100 + i % 150}",
                       state="draining")
    index = cluster.central.json("GET", "/healthz", token=None)[1]["index"]
    dc.poll("agent host1 has the last churn change",
            lambda: tt.agent_metric(agent, "elasticdns_agent_snapshot_index") >= index, 30)
    time.sleep(0.5)  # let the traffic thread render the last snapshot
    renders = tt.agent_metric(agent, "elasticdns_traffic_renders_total") - renders0
    reloads = tt.agent_metric(agent, "elasticdns_traffic_reloads_total") - reloads0
    print(f"1. churn: {n} container starts/stops -> {renders:.0f} renders, {reloads:.0f} nginx "
          f"reloads by the agent, {nginx.reloads() - sighups0} SIGHUPs in nginx's log "
          f"(target 0; load {os.getloadavg()[0]:.1f})")


def throughput(client, world, duration, connections):
    # The direct path: the client reaches host1's container subnet through host1.
    world.ip(client.ns, "route", "add", "10.77.1.0/24", "via", world.host_address("host1"))
    via = wrk(client, f"http://{client.target}/", "web.example.test", duration, connections)
    direct = wrk(client, f"http://10.77.1.30:{BACKEND_PORT}/", "web.example.test", duration,
                 connections)
    # nginx opens a new connection to the container per request (a proxy_pass through a
    # variable has no upstream keep-alive): the direct path without keep-alive, for scale.
    direct_close = wrk(client, f"http://10.77.1.30:{BACKEND_PORT}/", "web.example.test",
                       duration, connections, close=True)
    print(f"2. wrk -t2 -c{connections} -d{duration}s (keep-alive), load {os.getloadavg()[0]:.1f}:")
    for name, (rps, p50, p99, bad) in (("through nginx (2 containers)", via),
                                       ("direct to one container", direct),
                                       ("direct, a connection per request", direct_close)):
        print(f"   {name:30s} {rps:10.0f} req/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
              f"non-2xx {bad}")
    print(f"   ratio through/direct: {via[0] / direct[0]:.2f}")


def switch_times(cluster, client, world, args):
    times = []
    for k in range(args.switches):
        new = f"web-s{k}"
        addr = f"10.77.2.{40 + k}"
        backend_nginx(world, args.nginx, new, "host2", addr)
        version = f"s{k}"
        t0 = time.monotonic()
        tt.elastic_put(cluster, new, "host2", "web", version, addr)
        acked = time.monotonic()
        last_old = acked
        # Requests until 1 s in a row answered by the new version only; an old answer counts
        # from when its request started.
        while time.monotonic() - last_old < 1.0 and time.monotonic() - acked < args.valid + 10:
            started = time.monotonic()
            status, body = client.get("web.example.test")
            if tt.ident(body) != new:
                last_old = started
        times.append(last_old - acked)
        print(f"   switch {k}: write {1000 * (acked - t0):.0f} ms, the last request answered by "
              f"the old version started {1000 * (last_old - acked):.0f} ms after it")
    print(f"3. v2 latest -> all new requests to v2: median {statistics.median(times):.2f} s, "
          f"max {max(times):.2f} s over {len(times)} switches (bound: valid={args.valid}s + "
          f"propagation; load {os.getloadavg()[0]:.1f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--central", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--churn", type=int, default=200)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--valid", type=int, default=2)
    ap.add_argument("--switches", type=int, default=5)
    args = ap.parse_args()
    dc.exit_on_signals()
    if os.geteuid() != 0:
        print("SKIPPED: needs root (netns, cgroups)")
        return 77
    if not shutil.which("wrk"):
        print("SKIPPED: wrk not installed (scripts/install-deps.sh installs it)")
        return 77
    world = dc.World()
    failed = True
    try:
        world.build()
        tt.VALID = args.valid
        certs = os.path.join(world.tmp, "certs")
        cluster, nginxes = tt.start_cluster(world, args, certs)
        client = tt.Client(world)
        agent, nginx = cluster.agents["host1"], nginxes["host1"]
        cluster.central.put("services", "web", {"ports": [f"{BACKEND_PORT}:80"]})
        backend_nginx(world, args.nginx, "web-a", "host1", "10.77.1.30")
        backend_nginx(world, args.nginx, "web-b", "host2", "10.77.2.30")
        tt.elastic_put(cluster, "web-a", "host1", "web", "v1", "10.77.1.30")
        tt.elastic_put(cluster, "web-b", "host2", "web", "v1", "10.77.2.30")
        dc.poll("nginx serves web", lambda: client.get("web.example.test")[0] == 200, 15)
        churn(cluster, agent, nginx, args.churn)
        throughput(client, world, args.duration, args.connections)
        switch_times(cluster, client, world, args)
        failed = False
        return 0
    finally:
        world.teardown(failed=failed)


if __name__ == "__main__":
    sys.exit(main())
