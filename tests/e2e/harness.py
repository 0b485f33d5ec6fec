"""harness.py - a throwaway stack for end-to-end tests: its own PostgreSQL
(initdb in a temp folder), its own nats-server, the services and the gateway,
all on free loopback ports. Every wait is bounded."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.environ.get("BIN_DIR", os.path.join(ROOT, "build", "bin"))
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
SERVICES = ["tracker", "library", "inventory", "notifier"]
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def as_pg_user():
    """PostgreSQL refuses root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:200])


class Stack:
    def __init__(self, env=None, services=None):
        self.tmp = tempfile.mkdtemp(prefix="e2e-")
        os.chmod(self.tmp, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.tmp, "postgres")
        self.env_extra = env or {}
        self.services = services if services is not None else SERVICES
        self.procs = {}
        self.pg_port, self.nats_port, self.http_port = free_port(), free_port(), free_port()
        self.pgdata = os.path.join(self.tmp, "pg")
        self.logs = []

    # --- PostgreSQL ---------------------------------------------------------
    def pg_init(self):
        subprocess.run(as_pg_user() + [PGBIN + "/initdb", "-D", self.pgdata, "-A", "trust",
                       "-U", "postgres", "--no-sync"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=120)

    def pg_start(self):
        log = os.path.join(self.tmp, "postgres.log")
        self.logs.append(log)
        opts = ("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s "
                "-c fsync=off -c max_connections=100" % (self.pg_port, self.tmp))
        subprocess.run(as_pg_user() + [PGBIN + "/pg_ctl", "-D", self.pgdata, "-o", opts,
                       "-l", log, "-w", "-t", "30", "start"], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)

    @property
    def pg_pid(self):
        with open(os.path.join(self.pgdata, "postmaster.pid")) as f:
            return int(f.readline())

    def pg_stop(self):
        subprocess.run(as_pg_user() + [PGBIN + "/pg_ctl", "-D", self.pgdata, "-m", "fast",
                       "-w", "-t", "30", "stop"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def psql(self, sql, db="app"):
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                              "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
                              "-d", db, "-c", sql], check=True, capture_output=True,
                             text=True, timeout=60)
        return out.stdout.strip()

    def psql_session(self, db="app"):
        """An interactive psql whose stdin the test controls (to hold locks)."""
        return subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
                                 "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
                                 "-d", db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def migrate(self):
        env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(self.pg_port),
                   PGUSER="postgres", PGDATABASE="app")
        subprocess.run([os.path.join(ROOT, "scripts", "migrate.sh")], check=True, env=env,
                       stdout=subprocess.DEVNULL, timeout=60)

    # --- processes ------------------------------------------------------------
    def env(self):
        e = dict(os.environ)
        e.update(NATS_URL="nats://127.0.0.1:%d" % self.nats_port, PGHOST="127.0.0.1",
                 PGPORT=str(self.pg_port), PGUSER="postgres", PGDATABASE="app",
                 GATEWAY_PORT=str(self.http_port), LOG_LEVEL="debug")
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        e.update(MAIL_DIR=os.path.join(self.tmp, "mail"), SMTP_URL="")  # notifier: .eml files
        e.update(self.env_extra)
        return e

    def start(self, name, env=None):
        """Starts 'name' (or nats-server), with 'env' added to its
        environment only (e.g. a HEALTH_PORT no other process may take)."""
        log = os.path.join(self.tmp, name + ".log")
        self.logs.append(log)
        if name == "nats":
            cmd = ["nats-server", "-c", os.path.join(ROOT, "deploy", "local", "nats.conf"),
                   "-a", "127.0.0.1", "-p", str(self.nats_port), "-js",
                   "-sd", os.path.join(self.tmp, "nats")]
        else:
            cmd = [os.path.join(BIN_DIR, name)]
        env = dict(self.env(), **(env or {}))
        if name == "nats":  # as ./dev starts it
            env.setdefault("GOMAXPROCS", os.environ.get("NATS_GOMAXPROCS", "1"))
        with open(log, "ab") as f:
            self.procs[name] = subprocess.Popen(cmd, env=env, stdout=f,
                                                stderr=subprocess.STDOUT)
        if name == "nats":
            wait_until(lambda: self._port_open(self.nats_port), 10, "nats-server")
        return self.procs[name]

    def stop(self, name, sig=signal.SIGTERM, timeout=15):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return p.returncode if p else None
        p.send_signal(sig)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
            raise AssertionError("%s did not stop within %ds" % (name, timeout))

    def pid(self, name):
        return self.procs[name].pid

    def alive(self, name):
        return self.procs[name].poll() is None

    @staticmethod
    def _port_open(port):
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return True
        except OSError:
            return False

    # --- lifecycle -------------------------------------------------------------
    def up(self):
        self.pg_init()
        self.pg_start()
        self.psql("CREATE DATABASE app", db="postgres")
        self.migrate()
        self.start("nats")
        for s in self.services:
            self.start(s)
        self.start("gateway")
        self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        wait_until(lambda: self._ready(), timeout, "gateway /readyz")
        if "tracker" in self.services:
            wait_until(lambda: self._get_ok("/api/items?archived=true"), timeout,
                       "tracker answering")
        if "library" in self.services:
            wait_until(lambda: self._get_ok("/api/books?limit=1"), timeout, "library answering")

    def _ready(self):
        try:
            return self.request("GET", "/readyz", timeout=1).status == 200
        except OSError:
            return False

    def _get_ok(self, path):
        try:
            return self.request("GET", path, timeout=2).status == 200
        except OSError:
            return False

    def down(self):
        for name in list(self.procs):
            try:
                self.stop(name, timeout=10)
            except AssertionError:
                pass
        self.pg_stop()

    def sanitizer_reports(self):
        found = []
        for log in self.logs:
            try:
                with open(log, errors="replace") as f:
                    for line in f:
                        if any(m in line for m in SANITIZER_MARKS):
                            found.append("%s: %s" % (os.path.basename(log), line.strip()))
            except FileNotFoundError:
                pass
        return found

    def tail_logs(self, n=15):
        out = []
        for log in self.logs:
            try:
                with open(log, errors="replace") as f:
                    lines = f.readlines()[-n:]
                out.append("--- %s\n%s" % (os.path.basename(log), "".join(lines)))
            except FileNotFoundError:
                pass
        return "\n".join(out)

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- events -----------------------------------------------------------------
    def events(self, *args, timeout=30):
        """Runs the events subscriber (build/bin/events --meta ARGS) to its end
        and returns the events it printed, parsed."""
        out = subprocess.run([os.path.join(BIN_DIR, "events"), "--url",
                              "nats://127.0.0.1:%d" % self.nats_port, "--meta"] + list(args),
                             capture_output=True, text=True, timeout=timeout, env=self.env())
        if out.returncode != 0:
            raise AssertionError("events %s: exit %d: %s" % (args, out.returncode, out.stderr))
        return [json.loads(line) for line in out.stdout.splitlines()]

    def wait_outbox_empty(self, source, timeout=10):
        wait_until(lambda: self.psql("SELECT count(*) FROM outbox WHERE source = '%s'" % source)
                   == "0", timeout, "%s outbox published" % source)

    def nats_gather(self, subject, wait=0.5, payload=b""):
        """Publishes 'subject' with a reply inbox over NATS's text protocol and
        returns every reply (parsed JSON) that arrives within 'wait' seconds."""
        replies = []
        with socket.create_connection(("127.0.0.1", self.nats_port), 5) as s:
            f = s.makefile("rb")
            f.readline()  # INFO
            s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\nSUB _INBOX.t 1\r\n'
                      b"PUB %s _INBOX.t %d\r\n%s\r\nPING\r\n"
                      % (subject.encode(), len(payload), payload))
            deadline = time.monotonic() + wait
            s.settimeout(0.05)
            while time.monotonic() < deadline:
                try:
                    line = f.readline()
                except (socket.timeout, OSError):
                    continue
                if line.startswith(b"MSG "):
                    size = int(line.split()[-1])
                    replies.append(json.loads(f.read(size + 2)[:size]))
        return replies

    # --- HTTP -------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            h = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                h.setdefault("Content-Type", "application/json")
            if isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()},
                            data.decode("utf-8", "replace"))
        finally:
            conn.close()

    def raw(self, data, timeout=5):
        with socket.create_connection(("127.0.0.1", self.http_port), timeout) as s:
            s.sendall(data)
            chunks = []
            try:
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    chunks.append(c)
            except socket.timeout:
                pass
            return b"".join(chunks)
