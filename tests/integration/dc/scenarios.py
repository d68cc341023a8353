#!/usr/bin/python3
"""The mission's promises, end to end, on a data centre built on this machine.

  scenarios.py --group GROUP --central BIN --agent BIN [--no-bpf]

Groups (one data centre each; every scenario step is a separately reported check):
  deploy                rolling deploy: old web -> old api, new web -> new api, over UDP and
                        TCP, from dig, glibc and musl, on both hosts; a draining api leaves
                        the answers; then the deploy completes (v1 web -> v2 api)
  policies              versioned fallback (v3 web -> v2 api), non-versioned, roundrobin,
                        sticky (short window), closest
  datasources_upstream  main.mysql / spare.mysql / mysql; an external name through unbound
  central_down          central stopped, agent restarted from disk, central back + catch-up
  host_network          host-networked containers told apart by their socket
  all                   every group above, one data centre each

Exit 0 if every check passed, 1 if one failed, 77 (SKIPPED) when not root or when the daemons
are not built; the reason is printed.
"""

import argparse
import os
import sys
import time
import traceback

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dc  # noqa: E402
import elastic  # noqa: E402
from elastic import resolve  # noqa: E402

CLIENT_KINDS = ("dig-udp", "dig-tcp", "glibc-udp", "glibc-tcp", "musl-udp")
STICKY_WINDOW = 2  # seconds: short so the sticky scenario takes seconds


class Report:
    def __init__(self):
        self.passed, self.failed, self.skipped = [], [], []

    def check(self, name, ok, detail=""):
        if ok:
            self.passed.append(name)
            print(f"PASS {name}", flush=True)
        else:
            self.failed.append(name)
            print(f"FAIL {name}: {detail}", flush=True)
        return ok

    def skip(self, name, reason):
        self.skipped.append(name)
        print(f"SKIP {name}: {reason}", flush=True)

    def summary(self):
        print(
            f"== {len(self.passed)} passed, {len(self.failed)} failed, {len(self.skipped)} skipped",
            flush=True,
        )


def eventually(fn, deadline=dc.DEFAULT_DEADLINE):
    """fn() until it returns (True, detail); returns the last (ok, detail)."""
    end = time.monotonic() + deadline
    while True:
        ok, detail = fn()
        if ok or time.monotonic() > end:
            return ok, detail
        time.sleep(0.05)


# --- topology used by the scenarios --------------------------------------------------------
# Real containers (netns + cgroup): the callers, and the api containers themselves.
DEPLOY = {
    # id: (host, service, version, address)
    "web-v1-h1": ("host1", "web", "v1", "10.77.1.10"),
    "api-v1-h1": ("host1", "api", "v1", "10.77.1.12"),
    "web-v1-h2": ("host2", "web", "v1", "10.77.2.10"),
    "api-v1-h2": ("host2", "api", "v1", "10.77.2.12"),
    "web-v2-h1": ("host1", "web", "v2", "10.77.1.11"),
    "api-v2-h1": ("host1", "api", "v2", "10.77.1.13"),
    "web-v2-h2": ("host2", "web", "v2", "10.77.2.11"),
    "api-v2-h2": ("host2", "api", "v2", "10.77.2.13"),
}  # insertion order: v1 reaches central first, so v1 is older than v2


def api_of(version):
    return sorted(a for (h, s, v, a) in DEPLOY.values() if s == "api" and v == version)


def put_container(cluster, cid, service, version, host, address, state=None):
    body = {"service": service, "version": version, "server": host, "address": address}
    if state:
        body["state"] = state
    cluster.central.put("containers", cid, body)


def setup_deploy(world, cluster):
    for svc in ("web", "api"):
        cluster.central.put(
            "services", svc, {"dns_behaviour": "versioned", "load_balancing": "roundrobin"}
        )
    for cid, (host, svc, ver, addr) in DEPLOY.items():
        world.add_container(host, cid, addr)
        put_container(cluster, cid, svc, ver, host, addr)
    # A host process (not a container) gets the latest version: wait until every agent has it.
    cluster.wait_all_agents(f"api.{elastic.DOMAIN}", api_of("v2"))


# --- scenarios -----------------------------------------------------------------------------
def skip_without_musl(report, name, kind, musl):
    """True, with a skip reported, when `kind` needs musl-gcc and it is not installed."""
    if kind.startswith("musl") and not musl:
        report.skip(name, "musl-gcc not installed (scripts/install-deps.sh installs musl-tools)")
        return True
    return False


def check_resolve(report, c, kind, qname, want, name, musl):
    """Reports whether container c, asking via `kind`, gets exactly the addresses `want`."""
    if skip_without_musl(report, name, kind, musl):
        return
    got, raw = resolve(c, kind, qname, musl)
    report.check(name, sorted(got) == sorted(want), f"want {sorted(want)}, got {got}: {raw}")


def scenario_deploy(world, cluster, report, musl):
    setup_deploy(world, cluster)
    for caller in ("web-v1-h1", "web-v2-h1", "web-v1-h2", "web-v2-h2"):
        c = world.containers[caller]
        version = DEPLOY[caller][2]
        for kind in CLIENT_KINDS:
            check_resolve(report, c, kind, "api", api_of(version),
                          f"deploy: {caller} ({version}) asks api via {kind}", musl)

    # The deploy goes on: api-v1-h1 is draining, so it leaves the answers at once.
    put_container(cluster, "api-v1-h1", "api", "v1", "host1", DEPLOY["api-v1-h1"][3], state="draining")
    for caller in ("web-v1-h1", "web-v1-h2"):
        c = world.containers[caller]
        want = [DEPLOY["api-v1-h2"][3]]
        ok, detail = eventually(lambda: (lambda r: (sorted(r[0]) == want, r))(resolve(c, "dig-udp", "api")))
        report.check(f"deploy: {caller} no longer gets the draining api-v1-h1", ok, f"want {want}, got {detail}")

    # The deploy completes: the v1 api containers go away; a v1 web still alive gets v2 api.
    for cid in ("api-v1-h1", "api-v1-h2"):
        cluster.central.delete("containers", cid)
    cluster.wait_all_agents(f"api.{elastic.DOMAIN}", api_of("v2"))
    for caller in ("web-v1-h1", "web-v1-h2"):
        c = world.containers[caller]
        for kind in ("dig-udp", "dig-tcp", "glibc-udp", "musl-udp"):
            name = f"deploy complete: {caller} (v1) gets v2 api via {kind}"
            if skip_without_musl(report, name, kind, musl):
                continue
            ok, detail = eventually(
                lambda: (lambda r: (sorted(r[0]) == api_of("v2"), r))(resolve(c, kind, "api", musl))
            )
            report.check(name, ok, f"want {api_of('v2')}, got {detail}")


def scenario_policies(world, cluster, report, musl):
    setup_deploy(world, cluster)
    central = cluster.central
    web1 = world.containers["web-v1-h1"]
    web1b = world.containers["web-v1-h2"]
    # non-versioned: the latest version's containers, whoever asks.
    central.put("services", "cache", {"dns_behaviour": "non-versioned", "load_balancing": "roundrobin"})
    put_container(cluster, "cache-v1", "cache", "v1", "host1", "10.77.1.40")
    put_container(cluster, "cache-v2", "cache", "v2", "host2", "10.77.2.40")
    # roundrobin over three containers on two hosts.
    central.put("services", "rr", {"dns_behaviour": "versioned", "load_balancing": "roundrobin"})
    rr = ["10.77.1.50", "10.77.1.51", "10.77.2.50"]
    for i, a in enumerate(rr):
        put_container(cluster, f"rr-{i}", "rr", "v1", "host1" if a.startswith("10.77.1.") else "host2", a)
    # sticky over three containers.
    central.put("services", "st", {"dns_behaviour": "versioned", "load_balancing": "sticky"})
    st = ["10.77.1.60", "10.77.1.61", "10.77.2.60"]
    for i, a in enumerate(st):
        put_container(cluster, f"st-{i}", "st", "v1", "host1" if a.startswith("10.77.1.") else "host2", a)
    # closest: `near` on both hosts, `far` only on host2.
    for svc in ("near", "far"):
        central.put("services", svc, {"dns_behaviour": "versioned", "load_balancing": "closest"})
    near_h1, near_h2 = ["10.77.1.70", "10.77.1.71"], ["10.77.2.70"]
    far = ["10.77.2.71", "10.77.2.72"]
    for i, a in enumerate(near_h1):
        put_container(cluster, f"near-h1-{i}", "near", "v1", "host1", a)
    put_container(cluster, "near-h2-0", "near", "v1", "host2", near_h2[0])
    for i, a in enumerate(far):
        put_container(cluster, f"far-h2-{i}", "far", "v1", "host2", a)
    cluster.wait_all_agents(f"far.{elastic.DOMAIN}", far)
    cluster.wait_all_agents(f"cache.{elastic.DOMAIN}", ["10.77.2.40"])

    # A v3 web (no v3 api exists): the newest api version older than v3, i.e. v2.
    web3 = world.add_container("host1", "web-v3-h1", "10.77.1.90")
    put_container(cluster, "web-v3-h1", "web", "v3", "host1", "10.77.1.90")
    cluster.wait_all_agents(f"web.{elastic.DOMAIN}", ["10.77.1.90"])
    got, raw = resolve(web3, "dig-udp", "api")
    report.check("versioned: a v3 web gets the newest older api (v2)", sorted(got) == api_of("v2"), raw)

    got, raw = resolve(web1, "dig-udp", "cache")
    report.check("non-versioned: v1 web gets the latest (v2) cache", sorted(got) == ["10.77.2.40"], raw)

    firsts, whole = set(), True
    for _ in range(3 * len(rr)):
        got, raw = resolve(web1, "dig-udp", "rr")
        whole = whole and sorted(got) == sorted(rr)
        if got:
            firsts.add(got[0])
    report.check("roundrobin: every answer is the whole list", whole, raw)
    report.check(
        "roundrobin: the list rotates over every container",
        firsts == set(rr),
        f"first addresses seen: {sorted(firsts)}",
    )

    answers = [elastic.dig_ttls(web1, "st") for _ in range(5)]
    singles = all(len(a) == 1 for a in answers)
    pinned = {a[0][0] for a in answers if a}
    report.check("sticky: a single address per answer", singles, answers)
    report.check("sticky: the same address within the window", len(pinned) == 1 and pinned <= set(st), answers)
    report.check(
        f"sticky: TTL within the window ({STICKY_WINDOW}s)",
        all(a and a[0][1] <= STICKY_WINDOW for a in answers),
        answers,
    )
    first = answers[0][0][0] if answers and answers[0] else None
    seen = [first]
    for _ in range(8):  # bounded: 8 windows
        time.sleep(STICKY_WINDOW + 0.3)  # let the window run out (time, not readiness)
        a = elastic.dig_ttls(web1, "st")
        seen.append(a[0][0] if a else None)
        if seen[-1] != first:
            break
    report.check("sticky: the address can change after the window", seen[-1] != first and seen[-1] in st, seen)
    # A pinned address that disappears is dropped at once.
    a = elastic.dig_ttls(web1, "st")
    if a:
        pin = a[0][0]
        cid = f"st-{st.index(pin)}"
        central.delete("containers", cid)
        ok, detail = eventually(lambda: (lambda r: (len(r) == 1 and r[0][0] != pin, r))(elastic.dig_ttls(web1, "st")))
        report.check("sticky: a pinned container removed is dropped at once", ok, f"pin {pin}: {detail}")

    got, raw = resolve(web1, "dig-udp", "near")
    report.check("closest: host1 caller gets host1 containers", sorted(got) == near_h1, raw)
    got, raw = resolve(web1b, "dig-udp", "near")
    report.check("closest: host2 caller gets host2 containers", sorted(got) == near_h2, raw)
    got, raw = resolve(web1, "dig-udp", "far")
    report.check("closest: none on the caller's host -> all", sorted(got) == far, raw)


def scenario_datasources_upstream(world, cluster, report, musl):
    setup_deploy(world, cluster)
    central = cluster.central
    web = world.containers["web-v2-h1"]
    web2 = world.containers["web-v1-h2"]
    central.put("datasources", "mysql/main", {"primary": True, "addresses": ["10.77.0.101"]})
    central.put("datasources", "mysql/spare", {"primary": False, "addresses": ["10.77.0.102"]})
    cluster.wait_all_agents(f"spare.mysql.{elastic.DOMAIN}", ["10.77.0.102"])
    for c in (web, web2):
        for name, want in (("main.mysql", ["10.77.0.101"]), ("spare.mysql", ["10.77.0.102"]), ("mysql", ["10.77.0.101"])):
            got, raw = resolve(c, "dig-udp", name)
            report.check(f"datasources: {c.id} {name} -> {want}", sorted(got) == want, raw)
    # The primary moves to spare: `mysql` follows.
    central.put("datasources", "mysql/main", {"primary": False, "addresses": ["10.77.0.101"]})
    central.put("datasources", "mysql/spare", {"primary": True, "addresses": ["10.77.0.102"]})
    ok, detail = eventually(lambda: (lambda r: (sorted(r[0]) == ["10.77.0.102"], r))(resolve(web, "dig-udp", "mysql")))
    report.check("datasources: mysql follows the primary group", ok, detail)

    want = [dc.UPSTREAM_RECORDS["www.example.test"]]
    for c in (web, web2):
        for kind in ("dig-udp", "dig-tcp", "glibc-udp", "musl-udp"):
            check_resolve(report, c, kind, "www.example.test", want,
                          f"upstream: {c.id} resolves www.example.test via {kind}", musl)
    status, raw = elastic.dig_status(web, "nothing.example.test")
    report.check("upstream: NXDOMAIN from the upstream comes through", status == "NXDOMAIN", raw)
    status, raw = elastic.dig_status(web, f"nothing.{elastic.DOMAIN}")
    report.check("zone: an unknown name in the zone is NXDOMAIN", status == "NXDOMAIN", raw)


def scenario_central_down(world, cluster, report, musl):
    setup_deploy(world, cluster)
    central = cluster.central
    callers = [world.containers["web-v1-h1"], world.containers["web-v2-h2"]]

    def versioned_ok(tag):
        for c in callers:
            want = api_of(DEPLOY[c.id][2])
            got, raw = resolve(c, "dig-udp", "api")
            report.check(f"{tag}: {c.id} gets its api version", sorted(got) == want, f"want {want}: {raw}")

    central.stop()  # SIGTERM; the data dir stays
    report.check("central stopped", central.proc.popen.poll() is not None)
    versioned_ok("central down")
    time.sleep(1.0)  # the agents' sync is failing now; they must still answer after retries
    versioned_ok("central down, 1 s later")

    a1 = cluster.agents["host1"]
    a1.stop()
    a1.start()
    c = world.containers["web-v1-h1"]
    got, raw = resolve(c, "dig-udp", "api")
    report.check("agent restarted while central down answers from disk", sorted(got) == api_of("v1"), raw)
    got, raw = resolve(c, "glibc-tcp", "api")
    report.check("agent restarted while central down answers from disk (TCP)", sorted(got) == api_of("v1"), raw)

    # Central back while the agents cannot reach it yet (a partition), changes made meanwhile,
    # then the partition heals: every agent catches up.
    for h in elastic.AGENT_HOSTS:
        world.ip(world.host_ns[h], "route", "add", "prohibit", f"{central.address}/32")
    central.start()
    world.add_container("host2", "api-v2-h2b", "10.77.2.14")
    put_container(cluster, "api-v2-h2b", "api", "v2", "host2", "10.77.2.14")
    central.delete("containers", "api-v2-h1")
    new_v2 = ["10.77.2.13", "10.77.2.14"]
    got, raw = resolve(world.containers["web-v2-h1"], "dig-udp", "api")
    report.check("partitioned agents still answer the old topology", sorted(got) == api_of("v2"), raw)
    for h in elastic.AGENT_HOSTS:
        world.ip(world.host_ns[h], "route", "del", "prohibit", f"{central.address}/32")
    try:
        cluster.wait_all_agents(f"api.{elastic.DOMAIN}", new_v2, deadline=30)
        report.check("central back: every agent catches up with changes made meanwhile", True)
    except TimeoutError as e:
        report.check("central back: every agent catches up with changes made meanwhile", False, str(e))
    got, raw = resolve(world.containers["web-v2-h1"], "dig-udp", "api")
    report.check("central back: a v2 web container sees the new api set", sorted(got) == new_v2, raw)


def scenario_host_network(world, cluster, report, musl):
    setup_deploy(world, cluster)
    h1 = world.host_address("host1")
    hn = {}
    for ver in ("v1", "v2"):
        cid = f"hostnet-web-{ver}"
        hn[ver] = world.add_container("host1", cid, host_network=True)
        put_container(cluster, cid, "web", ver, "host1", h1)
    cluster.wait_all_agents(f"web.{elastic.DOMAIN}", sorted({"10.77.1.11", "10.77.2.11", h1}))
    for ver, c in hn.items():
        for kind in ("dig-udp", "dig-tcp", "glibc-udp", "musl-udp"):
            check_resolve(report, c, kind, "api", api_of(ver),
                          f"host network: {c.id} (same IP as its host) gets {ver} api via {kind}", musl)
    # A host process outside any container cgroup, same source address: the latest version.
    client = cluster.agents["host1"].client()
    try:
        got = client.addresses(f"api.{elastic.DOMAIN}", 1.0)
    finally:
        client.close()
    report.check("host network: a plain host process gets the latest version", got == api_of("v2"), got)


GROUPS = {
    "deploy": (scenario_deploy, {}),
    "policies": (scenario_policies, {"sticky_window": STICKY_WINDOW}),
    "datasources_upstream": (scenario_datasources_upstream, {}),
    "central_down": (scenario_central_down, {}),
    "host_network": (scenario_host_network, {}),
}


def run_group(group, args, report):
    fn, opts = GROUPS[group]
    world = dc.World(resolv_agent=args.resolv_agent)
    failed = True
    try:
        world.build()
        musl = elastic.musl_resolver(world)
        cluster = elastic.Cluster(world, args.central, args.agent, bpf=not args.no_bpf, **opts)
        fn(world, cluster, report, musl)
        failed = False
    except Exception as e:  # noqa: BLE001 - a broken scenario is a failed check, not a crash
        traceback.print_exc()
        report.check(f"{group}: ran to the end", False, repr(e))
    finally:
        try:
            world.teardown(failed=failed or bool(report.failed))
            report.check(f"{group}: teardown left nothing", True)
        except Exception as e:  # noqa: BLE001
            report.check(f"{group}: teardown left nothing", False, repr(e))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--group", required=True, choices=list(GROUPS) + ["all"])
    p.add_argument("--central", help="elasticdns-central binary")
    p.add_argument("--agent", help="elasticdns-agent binary")
    p.add_argument("--no-bpf", action="store_true", help="agents without eBPF (most checks then fail)")
    p.add_argument(
        "--resolv-agent",
        action="store_true",
        help="debugging aid: containers' resolv.conf names the agent (no redirect needed)",
    )
    args = p.parse_args()
    dc.exit_on_signals()
    if os.geteuid() != 0:
        print("SKIPPED: the data-centre scenarios need root (netns, cgroups, eBPF)")
        return 77
    missing = [n for n, b in (("elasticdns-central", args.central), ("elasticdns-agent", args.agent)) if not b or not os.access(b, os.X_OK)]
    if missing:
        print(f"SKIPPED: {', '.join(missing)} not built in this tree, so no scenario can run")
        return 77
    report = Report()
    for group in GROUPS if args.group == "all" else [args.group]:
        print(f"== group {group}", flush=True)
        run_group(group, args, report)
    report.summary()
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
