"""The one test harness for ElasticDNS daemons: starts elasticdns-central and elasticdns-agent
(optionally inside a network namespace, through a command prefix), reads their `listening on`
lines, talks HTTP to them, reads their metrics, and stops them by PID.

Everything a test starts lives in a Workspace: a temp dir holding configs, token files, data and
state dirs and every process's stdout/stderr; Workspace.close() stops the processes (SIGTERM,
then SIGKILL) and removes the dir. Waiting is polling with a deadline, never a fixed sleep.

Used by tests/integration/*.py, tests/integration/dc/ and tests/bench/ (import by path:
sys.path gets tests/integration). Python 3 standard library only.
"""

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

DEFAULT_DEADLINE = 10.0  # seconds: bound for every wait in the harness
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
LISTENING = "listening on "
ADMIN = object()  # Central.request's default: the admin token


def poll(what, fn, deadline=DEFAULT_DEADLINE, interval=0.02):
    """Calls fn until it returns a truthy value, which it returns; an exception fn raises counts
    as "not yet". Raises TimeoutError after `deadline` seconds, naming `what` and the last
    result or error."""
    end = time.monotonic() + deadline
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling; report the last error
            last = e
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {deadline}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def parse_listening(line):
    """(kind, host, port) of a `listening on [KIND] HOST:PORT` line; kind is None for central's
    line, "udp", "tcp" or "metrics" for the agent's. IPv6 hosts keep their brackets."""
    words = line[len(LISTENING):].split()
    kind = words[0] if len(words) == 2 else None
    host, port = words[-1].rsplit(":", 1)
    return kind, host, int(port)


def metric_value(text, name):
    """The value of the sample `name` (with its labels, if any) in Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def token_file(path, token):
    """Writes a token file (the token and a newline, mode 0600); returns its path."""
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return path


def to_yaml(config, indent=0):
    """YAML text of a config dict: nested dicts as blocks, every other value in flow style
    (JSON is YAML)."""
    pad = " " * indent
    lines = []
    for key, value in config.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.append(to_yaml(value, indent + 2).rstrip("\n"))
        else:
            lines.append(f"{pad}{key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


class Process:
    """One long-running process, stdout and stderr to files, stopped by its PID."""

    def __init__(self, name, argv, log_dir, prefix=(), env=None):
        self.name = name
        self.out_path = os.path.join(log_dir, f"{name}.out")
        self.err_path = os.path.join(log_dir, f"{name}.err")
        # Line-buffered stdout, so each line reaches the file at once even from a program that
        # does not flush (stdio buffers fully when stdout is not a terminal).
        full = list(prefix) + ["stdbuf", "-oL"] + list(argv)
        e = dict(os.environ)
        e.update(env or {})
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.popen = subprocess.Popen(full, stdout=out, stderr=err,
                                          stdin=subprocess.DEVNULL, env=e)

    @property
    def pid(self):
        return self.popen.pid

    def running(self):
        return self.popen.poll() is None

    def stdout(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def _alive_or_raise(self):
        if not self.running():
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}): "
                               f"{self.stderr()[-2000:]}")

    def wait_line(self, prefix, deadline=DEFAULT_DEADLINE):
        """Waits for a stdout line starting with `prefix`; returns the rest of it, stripped.
        Raises at once if the process exits first."""

        def find():
            self._alive_or_raise()
            for line in self.stdout().splitlines():
                if line.startswith(prefix):
                    return (line[len(prefix):].strip(),)
            return None

        return poll(f"{self.name}: '{prefix}'", find, deadline)[0]

    def wait_listening(self, count, deadline=DEFAULT_DEADLINE):
        """Waits for `count` `listening on` lines; returns them parsed (parse_listening)."""

        def find():
            self._alive_or_raise()
            lines = [l for l in self.stdout().splitlines() if l.startswith(LISTENING)]
            return lines if len(lines) >= count else None

        return [parse_listening(l) for l in poll(f"{self.name}: {count} '{LISTENING}' lines",
                                                 find, deadline)]

    def send_signal(self, sig):
        if self.running():
            os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, grace=STOP_GRACE):
        """Sends `sig`, waits up to `grace` seconds, then SIGKILLs; returns the exit status."""
        if self.running():
            os.kill(self.pid, sig)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(grace)
        return self.popen.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)


class Workspace:
    """A temp dir and the processes started in it. close() (or leaving a `with` block) stops
    every process and removes the dir."""

    def __init__(self, prefix="elasticdns-test-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, text):
        """Writes a file in the workspace; returns its path."""
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def spawn(self, name, argv, prefix=(), env=None):
        """Starts a process logging to NAME.out / NAME.err in the workspace."""
        proc = Process(name, argv, self.dir, prefix, env)
        self.procs.append(proc)
        return proc

    def stop_all(self):
        """Stops every process, the newest first; returns the errors met (a list of str)."""
        errors = []
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # noqa: BLE001 - stop the rest, report this one
                errors.append(f"stop {p.name}: {e}")
        return errors

    def logs(self, tail=4000):
        """[(process name, "stdout"/"stderr", the last `tail` characters, or all when None)]
        of the non-empty logs."""
        out = []
        for p in self.procs:
            for kind, read in (("stdout", p.stdout), ("stderr", p.stderr)):
                try:
                    text = read()
                except OSError:
                    continue
                if text.strip():
                    out.append((p.name, kind, text if tail is None else text[-tail:]))
        return out

    def close(self):
        errors = self.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)
        return errors


class Http:
    """HTTP/1.1 requests to one daemon. With keep_alive, one connection is reused (and opened
    again once when the server has closed it); otherwise each request has its own connection.
    new_socket, if given, makes the unconnected TCP socket (e.g. inside a network namespace)."""

    def __init__(self, host, port, keep_alive=False, new_socket=None, timeout=10):
        self.host, self.port = host, port
        self.keep_alive = keep_alive
        self.new_socket = new_socket
        self.timeout = timeout
        self.conn = None

    def _connect(self):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        if self.new_socket:
            sock = self.new_socket()
            sock.settimeout(self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect((self.host.strip("[]"), self.port))
            conn.sock = sock
        return conn

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None):
        """Sends one request (a dict or list body as JSON); returns (status, body bytes,
        response)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        for attempt in (1, 2):
            conn = self.conn or self._connect()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self.conn = None
                if not self.keep_alive or attempt == 2:
                    raise
                continue
            if self.keep_alive:
                self.conn = conn
            else:
                conn.close()
            return resp.status, data, resp

    def metric(self, name):
        """The value of one sample of GET /metrics, or None."""
        _, data, _ = self.request("GET", "/metrics")
        return metric_value(data.decode(), name)


class Central:
    """elasticdns-central in a Workspace: its token files, data dir and optional config file.
    keep_port: a restart listens on the port the first start got (agents keep their URL)."""

    def __init__(self, ws, binary, host="127.0.0.1", admin_token=None, agent_token=None,
                 config_text=None, prefix=(), new_socket=None, keep_alive=False,
                 keep_port=False, extra_args=(), name="central"):
        self.ws = ws
        self.name = name
        self.binary = binary
        self.host = host
        self.prefix = list(prefix)
        self.new_socket = new_socket
        self.keep_alive = keep_alive
        self.keep_port = keep_port
        self.extra_args = list(extra_args)
        self.admin_token = admin_token or "admin-" + secrets.token_hex(8)
        self.agent_token = agent_token or "agent-" + secrets.token_hex(8)
        self.admin_token_file = token_file(ws.path("admin.token"), self.admin_token)
        self.agent_token_file = token_file(ws.path("agent.token"), self.agent_token)
        self.data_dir = ws.path("central-data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.config_path = ws.write("central.yaml", config_text) if config_text else None
        self.proc = None
        self.port = 0
        self.starts = 0
        self.http = None

    def argv(self):
        """The command line of central with this workspace's files."""
        port = self.port if self.keep_port else 0
        args = [self.binary, "--listen", f"{self.host}:{port}", "--data-dir", self.data_dir,
                "--admin-token-file", self.admin_token_file,
                "--agent-token-file", self.agent_token_file]
        if self.config_path:
            args += ["--config", self.config_path]
        return args + self.extra_args

    def start(self, deadline=DEFAULT_DEADLINE):
        """Starts central and waits for its `listening on` line."""
        self.starts += 1
        self.proc = self.ws.spawn(f"{self.name}-{self.starts}", self.argv(), self.prefix)
        _, host, self.port = self.proc.wait_listening(1, deadline)[0]
        if host != self.host:
            raise RuntimeError(f"central listens on {host}, not {self.host}")
        self.url = f"http://{self.host}:{self.port}"
        if self.http:
            self.http.close()
        self.http = Http(self.host, self.port, self.keep_alive, self.new_socket)
        return self

    def stop(self, sig=signal.SIGTERM):
        """Stops central (SIGKILL after a grace period); returns its exit status."""
        if self.http:
            self.http.close()
        return self.proc.stop(sig)

    def kill(self):
        return self.stop(signal.SIGKILL)

    def request(self, method, path, body=None, token=ADMIN, headers=None):
        """One request as (status, body bytes, response). token: the bearer token to send
        (the admin token by default), None for no Authorization header."""
        h = dict(headers or {})
        if token is ADMIN:
            token = self.admin_token
        if token is not None:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            h["Content-Type"] = "application/json"
        return self.http.request(method, path, body, h)

    def json(self, method, path, body=None, token=ADMIN):
        """(status, the JSON body parsed, or None when empty)."""
        status, data, _ = self.request(method, path, body, token)
        return status, (json.loads(data) if data else None)

    def put(self, kind, key, value):
        """PUT /v1/KIND/KEY; raises unless central answers 2xx; returns the parsed body."""
        return self._write("PUT", f"/v1/{kind}/{key}", value)

    def delete(self, kind, key):
        """DELETE /v1/KIND/KEY; raises unless central answers 2xx; returns the parsed body."""
        return self._write("DELETE", f"/v1/{kind}/{key}")

    def _write(self, method, path, value=None):
        status, body = self.json(method, path, value)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path} -> {status} {body}")
        return body

    def topology(self):
        status, body = self.json("GET", "/v1/topology", token=self.agent_token)
        assert status == 200, status
        return body

    def metric(self, name):
        return self.http.metric(name)


class Agent:
    """elasticdns-agent in a Workspace, its config written from a dict. After start(): udp and
    tcp, the (host, port) it listens on, in order; metrics, the metrics (host, port) or None."""

    def __init__(self, ws, binary, config, name="agent", prefix=(), env=None):
        self.ws = ws
        self.binary = binary
        self.name = name
        self.config = dict(config)
        self.prefix = list(prefix)
        self.env = env
        self.config_path = ws.path(f"{name}.yaml")
        if "state_dir" in self.config:
            os.makedirs(self.config["state_dir"], exist_ok=True)
        self.write_config()
        self.proc = None
        self.starts = 0

    def write_config(self, extra_text=""):
        """Writes the config file from self.config (and `extra_text` after it, verbatim)."""
        with open(self.config_path, "w") as f:
            f.write(to_yaml(self.config) + extra_text)

    def expected_lines(self):
        """How many `listening on` lines the agent prints: udp and tcp per listen address,
        one for metrics."""
        return 2 * len(self.config.get("listen", ["127.0.0.1:53"])) + (
            1 if self.config.get("metrics_listen") else 0)

    def start(self, deadline=DEFAULT_DEADLINE):
        """Starts the agent and waits until it listens on every configured address."""
        self.starts += 1
        name = self.name if self.starts == 1 else f"{self.name}-{self.starts}"
        self.proc = self.ws.spawn(name, [self.binary, "--config", self.config_path],
                                  self.prefix, self.env)
        lines = self.proc.wait_listening(self.expected_lines(), deadline)
        self.udp = [(h, p) for k, h, p in lines if k == "udp"]
        self.tcp = [(h, p) for k, h, p in lines if k == "tcp"]
        self.metrics = next(((h, p) for k, h, p in lines if k == "metrics"), None)
        return self

    @property
    def port(self):
        """The UDP port of the first listen address."""
        return self.udp[0][1]

    def metrics_text(self):
        host, port = self.metrics
        status, data, _ = Http(host, port).request("GET", "/metrics")
        assert status == 200, status
        return data.decode()

    def metric(self, name):
        return metric_value(self.metrics_text(), name)

    def log(self):
        return self.proc.stderr()

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        """Stops the agent (SIGKILL after a grace period); returns its exit status."""
        return self.proc.stop(sig)
