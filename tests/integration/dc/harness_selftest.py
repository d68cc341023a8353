#!/usr/bin/python3
"""Self-test of the data-centre harness, without ElasticDNS: namespaces, bridges, cgroups, the
unbound upstream, the blackholed resolver, and a teardown that leaves nothing. Builds and tears
down the world twice in a row.

Exit 0 on success, 1 on failure, 77 when not root (ctest reports SKIPPED).
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dc  # noqa: E402


def check(name, cond, detail=""):
    if not cond:
        raise AssertionError(f"{name}: {detail}")
    print(f"PASS {name}", flush=True)


def one_round(round_no):
    world = dc.World()
    failed = True
    try:
        world.build()
        c1 = world.add_container("host1", "selftest-a", "10.77.1.10")
        c2 = world.add_container("host2", "selftest-b", "10.77.2.10")
        hn = world.add_container("host1", "selftest-hostnet", host_network=True)
        world.start_upstream()
        pin = world.add_pin("selftest")
        check(f"round {round_no}: private bpffs mounted for pins", dc._is_mounted(world.bpffs), world.bpffs)
        os.makedirs(pin)
        up = world.host_address("upstream")
        for c in (c1, c2):
            r = c.run(["dig", "+short", "+time=2", "+tries=1", f"@{up}", "www.example.test"])
            check(
                f"round {round_no}: {c.id} resolves through unbound",
                r.stdout.strip() == dc.UPSTREAM_RECORDS["www.example.test"],
                r.stdout + r.stderr,
            )
            r = c.run(["dig", "+short", "+time=1", "+tries=1", "www.example.test"])
            check(
                f"round {round_no}: {c.id} resolv.conf resolver is blackholed",
                r.returncode != 0 and dc.UPSTREAM_RECORDS["www.example.test"] not in r.stdout,
                r.stdout + r.stderr,
            )
            r = c.run(["cat", "/proc/self/cgroup"])
            rel = os.path.relpath(c.cgroup, world.cg_mount)
            check(
                f"round {round_no}: {c.id} runs in its cgroup",
                f"0::/{rel}\n" in r.stdout,
                r.stdout,
            )
            r = c.run(["cat", "/etc/resolv.conf"])
            check(
                f"round {round_no}: {c.id} resolv.conf names the blackholed address",
                f"nameserver {dc.BLACKHOLE_RESOLVER}" in r.stdout,
                r.stdout,
            )
        r = hn.run(["cat", "/proc/self/cgroup"])
        check(
            f"round {round_no}: host-networked container in its cgroup",
            f"0::/{os.path.relpath(hn.cgroup, world.cg_mount)}\n" in r.stdout,
            r.stdout,
        )
        # Containers reach each other across hosts (host1 -> host2's unbound-free address:
        # a UDP query to a closed port on c2 comes back as ICMP port unreachable, i.e. routed).
        r = c1.run(["dig", "+time=1", "+tries=1", f"@{c2.address}", "x.test"])
        check(
            f"round {round_no}: host1 container reaches host2 container",
            "connection refused" in (r.stdout + r.stderr).lower(),
            r.stdout + r.stderr,
        )
        for ns in world.netns:
            r = dc.run(["ip", "-n", ns, "route", "get", "8.8.8.8"], check=False)
            check(f"round {round_no}: {ns} has no route off the machine", r.returncode != 0, r.stdout)
        failed = False
    finally:
        world.teardown(failed=failed)
    check(f"round {round_no}: teardown left nothing", not world.leftovers(), world.leftovers())


def failing_round():
    """A scenario that raises half-way: the teardown still removes everything."""
    world = dc.World()
    try:
        try:
            world.build()
            world.add_container("host1", "selftest-fail", "10.77.1.10")
            world.start_upstream()
            world.add_pin("selftest")
            raise RuntimeError("deliberate failure")
        finally:
            world.teardown(failed=False)
    except RuntimeError as e:
        check("a failing scenario raises its error", "deliberate" in str(e), str(e))
    check("a failing scenario's world is torn down", not world.leftovers(), world.leftovers())


CRASHING_CHILD = """
import os, sys, time
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import dc
w = dc.World()
w.build()
w.add_container("host1", "selftest-crash", "10.77.1.10")
w.add_container("host2", "selftest-crash-hn", host_network=True)
w.start_upstream()
w.add_pin("selftest")
print("WORLD", w.tag, w.tmp, flush=True)
time.sleep(60)
"""


def crashed_round():
    """A harness killed with SIGKILL (no teardown at all): the next run sweeps its leftovers."""
    import subprocess

    child = subprocess.Popen(
        ["/usr/bin/python3", "-c", CRASHING_CHILD, os.path.dirname(os.path.abspath(__file__))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = ""
        while not line.startswith("WORLD "):
            line = child.stdout.readline()
            if not line:
                raise AssertionError("the crashing child exited before building its world")
        _, tag, tmp = line.split()
    finally:
        child.kill()
        child.wait()
    names = dc.run(["ip", "netns", "list"]).stdout
    if tag in names:
        check("a killed harness leaves its world behind", True)
    else:  # a harness running in parallel (ctest -j) swept it first: nothing to prove here
        print("NOTE the killed harness's world was already swept by a concurrent run", flush=True)
    dc.sweep_stale()
    left = [n for n in dc.run(["ip", "netns", "list"]).stdout.split() if n.startswith(tag + "-")]
    left += [p for p in (os.path.join(dc.cgroup2_mount(), tag), tmp, f"/etc/netns/{tag}-host1") if os.path.exists(p)]
    left += [p for p in dc.run(["ps", "-eo", "args"]).stdout.splitlines() if tmp in p]
    check("the next run sweeps a killed harness's leftovers", not left, left)


def main():
    dc.exit_on_signals()
    if os.geteuid() != 0:
        print("SKIPPED: the data-centre harness needs root (netns, cgroups)")
        return 77
    for i in (1, 2):
        one_round(i)
    failing_round()
    crashed_round()
    return 0


if __name__ == "__main__":
    sys.exit(main())
