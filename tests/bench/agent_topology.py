#!/usr/bin/env python3
"""Turns the peers.sh harness's hosts file ("ADDR svcK.ZONE" lines, 4 per name) into an agent
topology snapshot, so the agent serves the same answers as the peers, with the versioned policy
doing real work:

- svcK: the 4 harness addresses, running version v2; plus 2 running v1 containers each.
- the caller: 127.0.0.1 (the load generators' source) is container `bench-client` of version
  v3, so every answer takes the "newest older version" branch (v3 -> v2), not the trivial
  unknown-caller one.
- filler services until the snapshot holds --containers containers in all.

usage: agent_topology.py HOSTS_FILE OUT_DIR [--containers N]
"""
import argparse
import json
import os
from collections import defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("hosts")
ap.add_argument("out_dir")
ap.add_argument("--containers", type=int, default=10000)
args = ap.parse_args()

names = defaultdict(list)
with open(args.hosts) as f:
    for line in f:
        parts = line.split()
        if len(parts) != 2:
            continue
        addr, fqdn = parts
        names[fqdn.split(".")[0]].append(addr)

containers = []
def add(cid, service, version, address, server="bench"):
    containers.append({"id": cid, "service": service, "version": version, "server": server,
                       "address": address, "state": "running"})

add("bench-client", "client", "v3", "127.0.0.1")
n = 0
for svc, addrs in sorted(names.items()):
    for i, a in enumerate(addrs):
        add(f"{svc}-v2-{i}", svc, "v2", a)
    for i in range(2):
        add(f"{svc}-v1-{i}", svc, "v1", f"10.{200 + (n >> 16) % 50}.{(n >> 8) & 255}.{n & 255}")
        n += 1
k = 0
while len(containers) < args.containers:
    add(f"filler-{k}", f"filler{k // 8}", ("v1", "v2", "v3")[k % 3],
        f"10.{250 + (k >> 16) % 5}.{(k >> 8) & 255}.{k & 255}", server=f"host{k % 50}")
    k += 1

services = [{"name": s, "dns_behaviour": "versioned", "load_balancing": "roundrobin",
             "ports": []} for s in sorted(names)]
topology = {"index": 1, "servers": [{"name": "bench", "address": "127.0.0.1"}],
            "services": services, "containers": containers, "datasources": [],
            "versions": [{"name": "v1", "generation": 1}, {"name": "v2", "generation": 2},
                         {"name": "v3", "generation": 3}],
            "latest_versions": {}}
os.makedirs(args.out_dir, exist_ok=True)
with open(os.path.join(args.out_dir, "topology.json"), "w") as f:
    json.dump(topology, f)
print(f"{len(containers)} containers, {len(services)} services")
