#!/usr/bin/env python3
"""Central over etcd with TLS: Debian's etcd-server on loopback with https client URLs and
--client-cert-auth, a CA, a server certificate (subjectAltName IP:127.0.0.1) and client
certificates made with `openssl` in the workspace. No root needed.
    etcd_tls_test.py BUILD_DIR
Scenarios, in order, on one etcd member:
  replication   two replicas (A, B) on https with the CA and a client certificate: writes through
                either replica's API are in etcd (read back with etcdctl over TLS), a write
                through B reaches A through A's watch (and the reverse), and neither turns stale
                (the heartbeat goes over TLS too); after kill -9 and a restart of etcd, the
                replicas' watches resume over TLS. Prints a figure: the acknowledged write
                through one replica over TLS against one over the member's plain http URL
  refused       a CA that did not sign etcd's certificate, no client certificate, a client
                certificate of another CA, a name or an address the certificate does not
                carry, an http:// endpoint on the TLS port, a key that is not the
                certificate's: each exits 2 at start with a clear message, and nothing is
                written to etcd
Exits 77 (SKIPPED) when etcd or openssl is not installed.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
import harness  # noqa: E402  (this directory)
from etcd_test import DEADLINE, SKIP, check, container, replica  # noqa: E402

PREFIX = "/elasticdns/"


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def openssl(*args, cwd):
    subprocess.run([shutil.which("openssl"), *args], cwd=cwd, check=True, capture_output=True,
                   timeout=30)


class Pki:
    """A CA and certificates it signs (P-256 keys), as PEM files in `dir`."""

    def __init__(self, dir, name):
        self.dir, self.name = dir, name
        self.ca = self.path("ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", self.path("ca.key"), "-out", self.ca, "-days", "2",
                "-subj", f"/CN=elasticdns test CA {name}", cwd=dir)

    def path(self, file):
        return os.path.join(self.dir, f"{self.name}-{file}")

    def issue(self, cn, extensions):
        """(certificate, key) for `cn` with the X.509v3 `extensions` (openssl's config lines)."""
        cert, key, csr, ext = (self.path(f"{cn}.{e}") for e in ("pem", "key", "csr", "ext"))
        with open(ext, "w") as f:
            f.write(extensions + "\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key, "-out", csr, "-subj", f"/CN={cn}", cwd=self.dir)
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.path("ca.key"),
                "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
                "-extfile", ext, "-out", cert, cwd=self.dir)
        return cert, key


class TlsEtcd:
    """One etcd member on loopback: an https client URL with --client-cert-auth, the same on
    127.0.0.2 (an address its certificate does not carry), and a plain http one (for the figure:
    the same member without TLS); a plain peer URL."""

    def __init__(self, ws, binary, pki, server):
        self.ws, self.pki = ws, pki
        self.port, plain_port, peer = free_port(), free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.other_ip_url = f"https://127.0.0.2:{free_port('127.0.0.2')}"
        self.plain_url = f"http://127.0.0.1:{plain_port}"
        self.argv = [binary, "--name", "tls", "--data-dir", ws.path("etcd-tls"),
                     "--listen-client-urls", f"{self.url},{self.other_ip_url},{self.plain_url}",
                     "--advertise-client-urls", self.url,
                     "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-cluster", f"tls=http://127.0.0.1:{peer}",
                     "--cert-file", server[0], "--key-file", server[1], "--client-cert-auth",
                     "--trusted-ca-file", pki.ca]
        self.starts = 0
        self.start()

    def start(self):
        self.starts += 1
        self.proc = self.ws.spawn(f"etcd-tls-{self.starts}", self.argv)

    def ctl(self, client, *args):
        """etcdctl over TLS with the client certificate `client`; returns its stdout."""
        p = subprocess.run([shutil.which("etcdctl"), "--endpoints", self.url, "--cacert",
                            self.pki.ca, "--cert", client[0], "--key", client[1], *args],
                           env=dict(os.environ, ETCDCTL_API="3"), capture_output=True, text=True,
                           timeout=20)
        if p.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    def revision(self, client):
        out = json.loads(self.ctl(client, "get", "--write-out", "json", "x"))
        return int(out["header"]["revision"])

    def keys(self, client, prefix):
        return self.ctl(client, "get", "--prefix", "--keys-only", prefix).split()

    def healthy(self, client):
        """The JSON gateway answers over TLS with the client certificate (what central uses)."""
        ctx = ssl.create_default_context(cafile=self.pki.ca)
        ctx.load_cert_chain(*client)
        req = urllib.request.Request(self.url + "/v3/kv/range", b'{"key":"AA=="}',
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=2, context=ctx) as r:
            return "header" in json.loads(r.read())


def tls_config(ws, name, endpoint, ca=None, client=None):
    """A central.yml with the etcd section over TLS; returns its path."""
    text = f"store: etcd\netcd:\n  endpoints: [{endpoint}]\n  prefix: {PREFIX}\n  timeout: 2s\n"
    files = {"ca_file": ca, "cert_file": client and client[0], "key_file": client and client[1]}
    if any(files.values()):
        text += "  tls:\n" + "".join(f"    {k}: {v}\n" for k, v in files.items() if v)
    return ws.write(name, text)


def median_write_ms(writers, prefix, subnet, n=20):
    """Writes n containers (addresses 10.7.SUBNET.x) in series, through the writers in turn;
    (median, max) in ms of the acknowledgements, and their indices."""
    timings, indices = [], []
    for i in range(n):
        writer = writers[i % len(writers)]
        t0 = time.monotonic()
        ack = writer.put("containers", f"{prefix}{i}",
                         container(f"{prefix}{i}", "v1", f"10.7.{subnet}.{i + 1}"))
        timings.append(time.monotonic() - t0)
        indices.append(ack["index"])
    timings.sort()
    return timings[n // 2] * 1000, timings[-1] * 1000, indices


def replication(ws, central_bin, etcd, client, conf):
    a = replica(ws, central_bin, "A", [etcd.url], extra=["--config", conf])
    b = replica(ws, central_bin, "B", [etcd.url], tokens=(a.admin_token, a.agent_token),
                extra=["--config", conf])
    started = time.monotonic()
    a.put("servers", "h1", {"name": "h1", "address": "127.0.0.1"})
    a.put("services", "api", {"name": "api"})
    _, _, indices = median_write_ms([a, b], "t", 0)
    check(indices == sorted(set(indices)),
          f"20 writes through A and B in turn acknowledged over TLS (indices {indices[0]}.."
          f"{indices[-1]})")
    keys = etcd.keys(client, PREFIX + "records/container/")
    check(all(f"{PREFIX}records/container/t{i}" in keys for i in range(20)),
          f"etcdctl over TLS reads the 20 containers central wrote ({len(keys)} keys)")
    value = json.loads(etcd.ctl(client, "get", "--print-value-only",
                                f"{PREFIX}records/container/t3"))
    check(value["address"] == "10.7.0.4", "a record in etcd is the one written through B")

    def at_index(c, index):
        return c.topology()["index"] >= index
    ack = b.put("containers", "from-b", container("from-b", "v1", "10.7.1.1"))
    harness.poll("B's write reaches A through A's watch", lambda: at_index(a, ack["index"]),
                 DEADLINE)
    check(any(c["id"] == "from-b" for c in a.topology()["topology"]["containers"]),
          "a write through B reached A through its watch over TLS")
    ack = a.put("containers", "from-a", container("from-a", "v1", "10.7.1.2"))
    harness.poll("A's write reaches B", lambda: at_index(b, ack["index"]), DEADLINE)
    check(a.topology() == b.topology(), f"both replicas hold the same topology at {ack['index']}")
    # The figure: one replica each (writes alternating between replicas may wait for the watch).
    tls_median, tls_max, _ = median_write_ms([a], "tls", 3)
    plain = replica(ws, central_bin, "P", [etcd.plain_url],
                    tokens=(a.admin_token, a.agent_token))
    plain_median, plain_max, _ = median_write_ms([plain], "plain", 2)
    plain.stop()
    print(f"figure: acknowledged write, 20 in series through one replica to the same etcd member: "
          f"over TLS median {tls_median:.1f} ms (max {tls_max:.1f}), over plain http median "
          f"{plain_median:.1f} ms (max {plain_max:.1f})", flush=True)
    # Without a heartbeat answer for 1.5 s a replica turns stale: give it that long to show.
    time.sleep(max(0.0, 2.0 - (time.monotonic() - started)))
    for c in (a, b):
        _, _, resp = c.request("GET", "/v1/topology", token=c.agent_token)
        check(resp.getheader("ElasticDNS-Stale") is None and
              "no quorum" not in c.proc.stderr(),
              f"replica {c.name[8:]} is not stale (its heartbeat answers over TLS)")
    etcd_restart(etcd, client, a, b)
    a.stop()
    b.stop()


def etcd_restart(etcd, client, a, b):
    """kill -9 of the member, then a restart: the replicas' watches and heartbeats reconnect
    over TLS."""
    etcd.proc.kill()
    etcd.start()
    harness.poll("etcd answers over TLS again", lambda: etcd.healthy(client), DEADLINE)
    ack = harness.poll("B takes writes again", lambda: b.put(
        "containers", "after-restart", container("after-restart", "v1", "10.7.4.1")), DEADLINE)
    harness.poll("B's write reaches A through A's resumed watch",
                 lambda: a.topology()["index"] >= ack["index"], DEADLINE)
    check(any(c["id"] == "after-restart" for c in a.topology()["topology"]["containers"]),
          "after etcd's kill -9 and restart, a write through B reached A (the watch resumed "
          "over TLS)")
    harness.poll("A is fresh again", lambda: a.request("GET", "/v1/topology",
                 token=a.agent_token)[2].getheader("ElasticDNS-Stale") is None, DEADLINE)
    print("ok: A is fresh again after the restart", flush=True)


def refused(ws, central_bin, etcd, client, cases):
    """Each (what, argv, expected text in stderr): central exits 2 saying so, nothing written."""
    before = etcd.revision(client)
    for what, args, expect in cases:
        p = subprocess.run([central_bin, "--listen", "127.0.0.1:0", "--admin-token-file",
                            ws.path("admin.token"), *args], capture_output=True, text=True,
                           timeout=60)
        err = p.stderr.strip()
        check(p.returncode == 2 and expect in err, f"{what}: exits {p.returncode}: {err[:300]}")
    check(etcd.revision(client) == before,
          f"nothing written by the refused starts (etcd still at revision {before})")


def main():
    build = sys.argv[1]
    central_bin = os.path.join(build, "central", "elasticdns-central")
    etcd_bin = shutil.which("etcd")
    if not etcd_bin or not shutil.which("etcdctl") or not shutil.which("openssl"):
        print("SKIPPED: etcd, etcdctl and openssl are needed (scripts/install-deps.sh installs "
              "etcd-server, etcd-client and openssl)")
        return SKIP
    ws = harness.Workspace(prefix="edns-etcd-tls-")
    try:
        pki = Pki(ws.dir, "good")
        other = Pki(ws.dir, "other")  # trusted by nobody here
        server = pki.issue("etcd", "subjectAltName=IP:127.0.0.1\n"
                                   "extendedKeyUsage=serverAuth,clientAuth")
        client = pki.issue("central", "extendedKeyUsage=clientAuth")
        stranger = other.issue("central", "extendedKeyUsage=clientAuth")
        etcd = TlsEtcd(ws, etcd_bin, pki, server)
        harness.poll("etcd answers over TLS", lambda: etcd.healthy(client), DEADLINE)

        conf = tls_config(ws, "tls.yml", etcd.url, pki.ca, client)
        replication(ws, central_bin, etcd, client, conf)

        plain = f"http://127.0.0.1:{etcd.port}"
        name = f"https://localhost:{etcd.port}"
        refused(ws, central_bin, etcd, client, [
            ("a CA that did not sign etcd's certificate",
             ["--config", tls_config(ws, "other-ca.yml", etcd.url, other.ca, client)],
             "the server's certificate is not trusted"),
            ("no client certificate while etcd requires one",
             ["--config", tls_config(ws, "no-cert.yml", etcd.url, pki.ca)],
             "client certificate"),
            ("a client certificate of a CA etcd does not trust",
             ["--config", tls_config(ws, "stranger.yml", etcd.url, pki.ca, stranger)],
             "client certificate"),
            ("a name etcd's certificate does not carry (it has IP:127.0.0.1 only)",
             ["--config", tls_config(ws, "name.yml", name, pki.ca, client)],
             "hostname mismatch"),
            ("an address etcd's certificate does not carry (127.0.0.2)",
             ["--config", tls_config(ws, "ip.yml", etcd.other_ip_url, pki.ca, client)],
             "IP address mismatch"),
            ("an http:// endpoint on etcd's TLS port",
             ["--store", "etcd", "--etcd-endpoints", plain], "is it an https:// port?"),
            ("a key that is not the certificate's",
             ["--config", tls_config(ws, "wrong-key.yml", etcd.url, pki.ca,
                                     (client[0], stranger[1]))],
             "is not the key of"),
            ("tls settings with http:// endpoints",
             ["--config", tls_config(ws, "mixed.yml", etcd.url, pki.ca, client),
              "--etcd-endpoints", plain], "is for https:// endpoints"),
        ])
        return 0
    except Exception:
        for name, kind, text in ws.logs(tail=2000):
            print(f"--- {name} {kind} (tail)\n{text}", file=sys.stderr)
        raise
    finally:
        ws.close()


if __name__ == "__main__":
    sys.exit(main())
