#!/usr/bin/python3
"""The README's demo (run by scripts/demo.sh): central and one agent on this machine, inside a
private network-namespace world with no route off the machine, and web + api in v1 and v2 as
containers (netns + cgroup v2). Prints the dig answers that show versioned routing, then stops
everything it started (also on Ctrl-C or an error). With --hold it waits for Enter first, so
you can ask your own questions from the containers.

  demo.py --central BIN --agent BIN [--hold]
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dc  # noqa: E402
import elastic  # noqa: E402

HOST = "host1"
CONTAINERS = [
    # id, service, version, address (all on host1's container bridge 10.77.1.0/24)
    ("web-v1", "web", "v1", "10.77.1.10"),
    ("api-v1", "api", "v1", "10.77.1.20"),
    ("web-v2", "web", "v2", "10.77.1.11"),
    ("api-v2", "api", "v2", "10.77.1.21"),
]


def show(container, args, env=None):
    shown = " ".join(args)
    print(f"\n[{container.id}]$ {shown}")
    r = container.run(args, env=env, timeout=15)
    print((r.stdout + r.stderr).rstrip() or "(no output)")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--central", required=True)
    ap.add_argument("--agent", required=True)
    ap.add_argument("--hold", action="store_true", help="keep it running until Enter is pressed")
    args = ap.parse_args()
    dc.exit_on_signals()
    if os.geteuid() != 0:
        print("demo: needs root (network namespaces, cgroups, eBPF)", file=sys.stderr)
        return 1

    world = dc.World()
    failed = True
    try:
        world.build()
        cluster = elastic.Cluster(world, args.central, args.agent, hosts=(HOST,))
        central = cluster.central
        for svc in ("web", "api"):
            central.put("services", svc, {"dns_behaviour": "versioned", "load_balancing": "roundrobin"})
        for cid, svc, ver, addr in CONTAINERS:
            world.add_container(HOST, cid, addr)
            central.put("containers", cid, {"service": svc, "version": ver, "server": HOST, "address": addr})
        cluster.wait_all_agents(f"api.{elastic.DOMAIN}", ["10.77.1.21"])

        print("\n=== ElasticDNS demo ===")
        print(f"central  : {central.url} (netns {central.ns})")
        agent = cluster.agents[HOST]
        print(f"agent    : {agent.bridge_address}:53 on {HOST} (netns {agent.ns}), eBPF on {world.host_cgroups[HOST]}")
        print("topology :")
        for cid, svc, ver, addr in CONTAINERS:
            print(f"  container {cid:7} service {svc} version {ver} address {addr}")
        web_v1, web_v2 = world.containers["web-v1"], world.containers["web-v2"]
        print(f"\nEvery container's /etc/resolv.conf says 'nameserver {dc.BLACKHOLE_RESOLVER}', an address")
        print("blackholed here: the answers below come from the agent through the eBPF redirect.")
        show(web_v1, ["cat", "/etc/resolv.conf"])
        print("\n--- an old (v1) web container asks for api: it gets the v1 api ---")
        show(web_v1, ["dig", "+noall", "+answer", "api.cloud66.local"])
        print("\n--- a new (v2) web container asks for api: it gets the v2 api ---")
        show(web_v2, ["dig", "+noall", "+answer", "api.cloud66.local"])
        print("\n--- the same over TCP, and through glibc's getaddrinfo ---")
        show(web_v1, ["dig", "+tcp", "+noall", "+answer", "api.cloud66.local"])
        show(web_v2, ["getent", "hosts", "api.cloud66.local"])
        print("\n--- names outside the zone go to the upstream resolver (a local unbound) ---")
        show(web_v1, ["dig", "+noall", "+answer", "www.example.test"])
        print("\n--- the deploy completes: api v1 is removed; the old web now gets v2 ---")
        central.delete("containers", "api-v1")
        dc.poll(
            "web-v1 gets api v2",
            lambda: elastic.resolve(web_v1, "dig-udp", "api")[0] == ["10.77.1.21"],
        )
        show(web_v1, ["dig", "+noall", "+answer", "api.cloud66.local"])

        if args.hold:
            print("\nStill running. From another shell, ask from a container, e.g.:")
            print(f"  sh -c 'echo $$ > {web_v1.cgroup}/cgroup.procs; exec ip netns exec {web_v1.ns} dig api.cloud66.local'")
            print("Press Enter (or Ctrl-C) to stop everything.")
            try:
                input()
            except (EOFError, KeyboardInterrupt):
                pass
        failed = False
        return 0
    finally:
        print("\nstopping: central, agent, unbound, namespaces, cgroups, BPF pins ...")
        world.teardown(failed=failed)
        print("demo stopped; nothing left running.")


if __name__ == "__main__":
    sys.exit(main())
