#!/usr/bin/env python3
"""The operator's view end to end: a real elasticdns-central and two real elasticdns-agents on
loopback. `elasticdnsctl status` shows both agents at lag 0, then the stopped one as not seen
(central runs with --agent-report-ttl 1s); `rollout status --wait` returns when a scripted
deploy completes; `explain` answers from central's topology; /v1/agents needs a token, tokens
appear in no log, and responses carry the Content-Security-Policy. No root needed.
    operator_test.py BUILD_DIR
"""
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
import harness  # noqa: E402  (this directory)

DEADLINE = 15  # seconds: the machine may be loaded


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what)


class Ctl:
    def __init__(self, binary, central):
        self.binary = binary
        self.env = dict(os.environ, ELASTICDNS_URL=central.url,
                        ELASTICDNS_TOKEN=central.agent_token)
        self.env.pop("NO_COLOR", None)

    def run(self, *args):
        p = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True,
                           timeout=DEADLINE)
        return p.returncode, p.stdout, p.stderr

    def status(self):
        code, out, err = self.run("status", "--output", "json")
        assert code == 0, (code, err)
        return json.loads(out)

    def start(self, *args):
        return subprocess.Popen([self.binary, *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def agents_by_name(status):
    return {a["server"]: a for a in status["agents"]}


def main():
    build = sys.argv[1]
    central_bin = os.path.join(build, "central", "elasticdns-central")
    agent_bin = os.path.join(build, "agent", "elasticdns-agent")
    ctl_bin = os.path.join(build, "central", "elasticdnsctl")
    ws = harness.Workspace(prefix="edns-operator-")
    rollout = None
    try:
        central = harness.Central(ws, central_bin, extra_args=["--agent-report-ttl", "1s"])
        central.start(DEADLINE)
        for host in ("host1", "host2"):
            central.put("servers", host, {"address": "127.0.0.1"})
        central.put("containers", "web-1", {"service": "web", "version": "v1",
                                            "server": "host1", "address": "10.0.1.1"})
        central.put("containers", "api-1", {"service": "api", "version": "v1",
                                            "server": "host1", "address": "10.0.0.1"})
        agents = []
        for host in ("host1", "host2"):
            agents.append(harness.Agent(ws, agent_bin, {
                "listen": ["127.0.0.1:0"],
                "server_name": host,
                "central": {"urls": [central.url], "token_file": central.agent_token_file},
                "upstreams": ["127.0.0.1:9"],
                "stale_after": "2s",
                "state_dir": ws.path(f"state-{host}"),
            }, name=f"agent-{host}").start(DEADLINE))
        ctl = Ctl(ctl_bin, central)

        # Both agents report and follow central: lag 0.
        def both_current():
            s = ctl.status()
            a = agents_by_name(s)
            return s if all(a.get(h, {}).get("seen") and a[h]["lag"] == 0 and
                            a[h]["index"] == s["index"] for h in ("host1", "host2")) else None
        s = harness.poll("both agents at lag 0", both_current, DEADLINE)
        check(s["index"] == central.topology()["index"], "status index is central's index")
        a = agents_by_name(s)
        check(a["host1"]["version"] and a["host1"]["ebpf_identity"] is False,
              "agents report their version and eBPF state")
        code, table, _ = ctl.run("status")
        check(code == 0 and "\x1b[" not in table, "status prints plain tables when not a tty")
        lines = {line.split()[0]: line.split() for line in table.splitlines() if line}
        check(lines["host1"][1:3] == [str(s["index"]), "0"] and
              lines["host2"][1:3] == [str(s["index"]), "0"],
              "the AGENT table shows both agents at central's index, lag 0")

        # /v1/agents needs a read token; the dashboard's CSP is on every response.
        status_code, _, _ = central.request("GET", "/v1/agents", token=None)
        check(status_code == 401, "GET /v1/agents without a token: 401")
        status_code, body, _ = central.request("GET", "/v1/agents", token=central.agent_token)
        check(status_code == 200 and len(json.loads(body)["agents"]) == 2, "GET /v1/agents")
        status_code, _, resp = central.request("GET", "/ui/", token=None)
        csp = resp.getheader("Content-Security-Policy") or ""
        check(status_code == 200 and "script-src 'self'" in csp and "default-src 'none'" in csp,
              "the dashboard is served with a strict Content-Security-Policy")

        # A rolling deploy of api, scripted; rollout status follows it.
        central.put("containers", "api-2", {"service": "api", "version": "v2",
                                            "server": "host2", "address": "10.0.0.2"})
        code, out, _ = ctl.run("rollout", "status", "api")
        check(code == 4 and "api: v1 1 running → v2 1 running" in out,
              "rollout status during the deploy: exit 4 and the verdict")
        code, out, _ = ctl.run("explain", "api", "--from", "web-1")
        check(code == 0 and "answer:   10.0.0.1" in out and "own version" in out,
              "explain: web v1 gets api v1 by the versioned policy")
        rollout = ctl.start("rollout", "status", "api", "--wait", "--timeout", "20s")
        time.sleep(0.3)  # let it take its first look (the test holds even if it has not)
        check(rollout.poll() is None, "rollout status --wait waits while v1 runs")
        central.put("containers", "api-1", {"service": "api", "version": "v1",
                                            "server": "host1", "address": "10.0.0.1",
                                            "state": "draining"})
        central.put("containers", "web-1", {"service": "web", "version": "v2",
                                            "server": "host1", "address": "10.0.1.1"})
        check(rollout.poll() is None, "still waiting while v1 drains")
        central.delete("containers", "api-1")
        out, err = rollout.communicate(timeout=DEADLINE)
        check(rollout.returncode == 0, f"rollout status --wait returned 0 (stderr: {err!r})")
        check("every agent at index" in out.splitlines()[-1],
              f"its last line says the rollout reached every agent: {out.splitlines()[-1]!r}")
        rollout = None
        code, _, _ = ctl.run("rollout", "status", "api")
        check(code == 0, "rollout status after the deploy: exit 0")
        code, _, _ = ctl.run("rollout", "status", "nothing")
        check(code == 1, "rollout status of an unknown service: exit 1")

        # host2's agent stops: not seen once the report TTL has passed.
        agents[1].stop()
        def host2_gone():
            a = agents_by_name(ctl.status())
            return a["host2"]["seen"] is False and a["host1"]["seen"] and a["host1"]["lag"] == 0
        harness.poll("host2 shown as not seen", host2_gone, DEADLINE)
        code, table, _ = ctl.run("status")
        check("(not seen)" in next(l for l in table.splitlines() if l.startswith("host2")),
              "the AGENT table marks host2 as not seen")
        check("elasticdns_central_agents{lag=\"not_seen\"} 1" in
              central.http.request("GET", "/metrics")[1].decode(), "metrics: one agent not seen")

        for name in os.listdir(ws.dir):
            if name.endswith((".err", ".out")):
                with open(ws.path(name), errors="replace") as f:
                    text = f.read()
                assert central.admin_token not in text and central.agent_token not in text, name
        print("ok: no token in any log")
        return 0
    finally:
        if rollout is not None:
            rollout.kill()
            rollout.wait()
        ws.close()


if __name__ == "__main__":
    sys.exit(main())
