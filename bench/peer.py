"""Side by side with a Python peer: the relay vs django-outbound-webhooks 0.4.0.

django-outbound-webhooks is a Django app (on django-domain-events) with the
same job as the relay: a durable outbox of events, per-endpoint deliveries
with retries, Standard Webhooks signatures. Both are measured in the same run,
on the same machine, against the same nginx (bench/nginx.py), with the same
1 KiB event (bench.ingest.EVENT), on SQLite or, with --postgres, on PostgreSQL:

- **delivery drain**: a backlog stored while nothing delivers, then timed
  from the moment the deliverer is running until the last delivery is
  recorded as delivered. The backlogs differ: the relay's is 50,000 events
  (5,000 with --quick), the peer's 3,000 (500 with --quick), because the peer
  drains some 50 deliveries/s on SQLite, where 50,000 would take it a quarter
  of an hour. What is compared is deliveries per second, not the time to
  drain, and the report titles give both sizes. On SQLite the relay is
  bench.delivery's run (write_config, fill_backlog, drain: concurrency 64 on
  one event loop, timed from when the relay answers /healthz by
  bench.common.delivery_rate), and the peer is django-domain-events' worker,
  `manage.py deliver_events --once`, in PEER_WORKERS processes. On
  PostgreSQL, see below.
- **enqueue**: events durably stored per second by one caller, one event per
  commit, one at a time. The peer's "ingest" is `fire()` inside
  `transaction.atomic()`, a function call in the application's own process:
  it has no HTTP API of its own, and wrapping it in a web server would
  measure that server. The relay's is POST /v1/events, sent one at a time on
  a keep-alive connection by http.client (the lightest Python client) to an
  endpoint that is paused, as bench.ingest does. So the peer is spared the
  HTTP hop the relay pays: the ratio leans towards the peer. The relay's
  figure with 64 concurrent connections, where its group commit counts, is
  bench.ingest's (bench.replicas' on PostgreSQL); the peer has no
  concurrent-caller equivalent on SQLite, where every fire() commit takes the
  one write lock.

The peer's setup, built afresh in a bench.common.workdir() each repeat:

- its own venv (PEER_VENV, under ~/.cache/relay-bench, created once with
  `python -m venv` and `pip install`, then reused): nothing is installed in
  the project's .venv. It includes the `dacite` extra of django-domain-events,
  the documented codec for nested payloads: EVENT's `customer` is an object;
  --postgres adds psycopg 3 (`psycopg[binary]`) to it.
- a minimal Django project: contenttypes, auth (django-domain-events needs
  it), django_domain_events, django_outbound_webhooks and a one-module app
  declaring the event `license.created`, whose fields are EVENT["data"]'s.
  DEBUG off. One endpoint is registered with `register_endpoint()` at
  nginx's /hooks, subscribed to `license.created`, pinned to the default
  `envelope` v1 body: {"data": EVENT["data"], "id", "timestamp", "type"}.
- the database is a SQLite file, like the relay's default; the peer works on
  any database Django supports. It gets the relay's durability: journal_mode
  WAL, synchronous FULL. With --postgres, see below.
- its request-forgery guard refuses loopback unless
  DJANGO_OUTBOUND_WEBHOOKS["ALLOW_PRIVATE_ADDRESSES"] is true, its documented
  development switch (private and loopback only); the relay's equivalent is
  `delivery.allow_networks: [127.0.0.0/8]`.

Two limits of the peer shape the drain on SQLite, and both are its own:

- the long-running relay, `deliver_events` without `--once`, refuses to start
  on a database without SELECT ... FOR UPDATE SKIP LOCKED, so on SQLite the
  worker is `deliver_events --once`, which claims batches (BATCH_SIZE 50)
  until nothing is owed, then exits.
- a worker delivers one row at a time, synchronously, and its concurrency is
  the number of processes. Several processes on SQLite are safe only when
  Django opens every transaction with BEGIN IMMEDIATE (Django's
  `transaction_mode` option, set here): a claim is then one writer at a time
  and no row is taken twice. But each delivery's POST runs inside the
  transaction that records it, so the processes take turns at the write lock
  for the whole of a delivery; what overlaps is the work around it.

So the peer is built for a database with SKIP LOCKED, and --postgres is the
comparison that is fair to it. Both then use the PostgreSQL server of the
tests (RELAY_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test),
with its durability (synchronous_commit as the server has it; the relay's
claims, by its design, do not wait for the WAL flush, the peer's do):

- the relay is one process on a schema of its own, bench.replicas' drain with
  one replica: the backlog is stored while not yet due, the relay started
  and answering, and the clock runs from the moment the backlog falls due
  until the last delivery is recorded. Its enqueue runs on a schema of its
  own too (bench.replicas' configuration, endpoint paused).
- the peer gets a database of its own, relay_bench_peer_<pid>_<n>, created
  for each project and dropped after it, even on failure; Django's
  postgresql backend on psycopg 3; the package's default wake on PostgreSQL,
  LISTEN/NOTIFY (on SQLite it can only poll). Its worker is the long-running
  `deliver_events`, in PEER_WORKERS processes, claiming with SKIP LOCKED so
  that they deliver in parallel; they are stopped (SIGTERM, which lets the
  delivery in hand finish, then a kill) once the last delivery is recorded.
  The default is 2 processes: here (2 cores) 2, 4 and 8 delivered some 104,
  93 and 77 deliveries/s on 1,000-event backlogs, because each delivery is
  mostly the worker's own CPU (below), so more processes than cores only
  contend. With more cores, set PEER_WORKERS higher.

Every peer worker has Django set up, everything imported and its database
connection open before its clock starts. Each peer delivery builds a fresh
httpx2 client, and so a TLS context that loads the system CA bundle even for
an http:// URL (14-19 ms of CPU with OpenSSL 3.0 here, most of a delivery's
cost), opens a new connection to the address its SSRF check pinned, writes a
delivery-log row per attempt, and signs with the standardwebhooks package;
the relay keeps connections alive and signs with prepared HMAC states. Both
sign to Standard Webhooks.

With --quick a run takes some 20 seconds, in either mode. The full size (three
repeats) should take about five minutes on SQLite, where the peer's 3,000
deliveries take a minute each repeat, and a little less with --postgres.

The peer is installed from PyPI into a venv of its own (PEER_VENV), never the
project's .venv, by a step of its own, so that the benchmark itself talks to
127.0.0.1 only:

    python -m bench.peer --install [--postgres]
    python -m bench.peer [--quick] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from bench import replicas
from bench.common import PYTHON, Figures, free_port, process, report, workdir
from bench.delivery import drain, fill_backlog, write_config
from bench.ingest import EVENT, pause_sink, relay_config
from bench.nginx import nginx

PEER = "django-outbound-webhooks==0.4.0"
PEER_EXTRAS = ["django-domain-events[dacite]"]  # the codec for EVENT's nested customer
PEER_POSTGRES_DRIVER = "psycopg[binary]"  # psycopg 3, the driver the peer's LISTEN wants
PEER_VENV = (Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
             / "relay-bench" / "peer-venv")
# Worker processes draining the peer's backlog; PEER_WORKERS overrides both.
# On SQLite they take turns at the write lock (see above): 1, 2 and 4 measured
# within 7% of each other here. On PostgreSQL they run in parallel, but each
# delivery is mostly CPU: 2 beat 4 and 8 on this 2-core machine (see above).
PEER_WORKERS_SQLITE = 2
PEER_WORKERS_POSTGRES = 2
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
_DATABASES = itertools.count(1)  # numbers the peer's PostgreSQL databases in this process


def peer_workers(postgres: bool) -> int:
    configured = os.environ.get("PEER_WORKERS")
    if configured:
        return int(configured)
    return PEER_WORKERS_POSTGRES if postgres else PEER_WORKERS_SQLITE


SETTINGS = '''
SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = []
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_domain_events",
    "django_outbound_webhooks",
    "benchapp",
]
DATABASES = {{"default": {database}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DJANGO_DOMAIN_EVENTS = {{
    "CODEC": "django_domain_events.codecs.dacite_codec.DaciteCodec",
    "WAKE": {wake!r},
    "RELAY_PRUNE": False,
}}
DJANGO_OUTBOUND_WEBHOOKS = {{"ALLOW_PRIVATE_ADDRESSES": True}}
LOGGING = {{"version": 1, "disable_existing_loggers": False,
           "handlers": {{"err": {{"class": "logging.StreamHandler"}}}},
           "root": {{"handlers": ["err"], "level": "WARNING"}}}}
'''

SQLITE_DATABASE = """{{
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": {name!r},
    "OPTIONS": {{
        "timeout": 60,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
    }},
}}"""

POSTGRES_DATABASE = """{{
    "ENGINE": "django.db.backends.postgresql",
    "NAME": {name!r},
    "USER": {user!r},
    "PASSWORD": {password!r},
    "HOST": {host!r},
    "PORT": {port!r},
}}"""

APPS = '''
from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "benchapp"

    def ready(self):
        from benchapp import events  # noqa: F401  (declares the event)
'''

EVENTS = '''
from dataclasses import dataclass

from django_domain_events import event


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    email: str
    name: str


@event(name={name!r})
@dataclass(frozen=True, slots=True)
class LicenseCreated:
    licenseKey: str
    productId: str
    seats: int
    customer: Customer
    notes: str
'''

# Runs in the peer's venv, in the project folder: `tool.py COMMAND ...`.
TOOL = '''
import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_settings")
import django

django.setup()

from django.core.management import call_command
from django.db import transaction
from django_domain_events import fire

from benchapp.events import Customer, LicenseCreated


def one_event():
    data = json.loads(os.environ["PEER_EVENT_DATA"])
    return LicenseCreated(**{**data, "customer": Customer(**data["customer"])})


def setup(target, event_name, secret):
    from django_outbound_webhooks import register_endpoint

    call_command("migrate", verbosity=0)
    register_endpoint(name="sink", url=target, secret=secret, event_names=[event_name])


def fill(count, per_commit):
    event = one_event()
    for start in range(0, count, per_commit):
        with transaction.atomic():
            for _ in range(min(per_commit, count - start)):
                fire(event)


def enqueue(seconds):
    """fire() one event per transaction for `seconds`; prints events/s."""
    event = one_event()
    for _ in range(200):  # warm-up
        with transaction.atomic():
            fire(event)
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        with transaction.atomic():
            fire(event)
        count += 1
    print(json.dumps({"rate": count / (time.perf_counter() - started)}), flush=True)


def deliver(mode):
    """Connect, say ready, wait for the go line, then deliver.

    `once`: everything owed, then exit. `relay`: the long-running worker, until
    SIGTERM.
    """
    from django.db import connection

    connection.ensure_connection()
    print("ready", flush=True)
    sys.stdin.readline()
    call_command("deliver_events", *(["--once"] if mode == "once" else []))


command, *args = sys.argv[1:]
if command == "setup":
    setup(*args)
elif command == "fill":
    fill(int(args[0]), int(args[1]))
elif command == "enqueue":
    enqueue(float(args[0]))
elif command == "deliver":
    deliver(args[0])
else:
    raise SystemExit(f"unknown command {command}")
'''


def _missing(postgres: bool) -> list[str]:
    """What the peer's venv lacks for this mode (each set of packages has a marker file)."""
    python = PEER_VENV / "bin" / "python"
    marker = PEER_VENV / ("installed-" + "-".join([PEER, *PEER_EXTRAS]).replace("/", "_"))
    driver_marker = PEER_VENV / ("installed-" + PEER_POSTGRES_DRIVER)
    wanted: list[str] = []
    if not (marker.exists() and python.exists()):
        wanted = [PEER, *PEER_EXTRAS]
    if postgres and not (wanted == [] and driver_marker.exists()):
        wanted.append(PEER_POSTGRES_DRIVER)
    return wanted


def peer_python(postgres: bool = False) -> Path:
    """The peer's venv's python; it must have been installed (`--install`) beforehand.

    Installing downloads from PyPI, so it is a step of its own: the benchmark
    itself talks to 127.0.0.1 only.
    """
    wanted = _missing(postgres)
    if wanted:
        flags = " --postgres" if postgres else ""
        raise SystemExit(f"bench.peer: {' '.join(wanted)} not installed in {PEER_VENV}: run "
                         f"`python -m bench.peer --install{flags}` first (downloads from PyPI)")
    return PEER_VENV / "bin" / "python"


def install(postgres: bool = False) -> None:
    """Create the peer's venv (outside the project's .venv) with what this mode needs.

    With `postgres`, psycopg is added to a venv that has the rest; `venv
    --clear` drops every marker when the base is reinstalled.
    """
    python = PEER_VENV / "bin" / "python"
    marker = PEER_VENV / ("installed-" + "-".join([PEER, *PEER_EXTRAS]).replace("/", "_"))
    driver_marker = PEER_VENV / ("installed-" + PEER_POSTGRES_DRIVER)
    wanted = _missing(postgres)
    if not wanted:
        print(f"bench.peer: {PEER_VENV} already has what it needs")
        return
    print(f"(installing {' '.join(wanted)} into {PEER_VENV})")
    if PEER in wanted:
        PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([PYTHON, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", *wanted],
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"pip could not install {' '.join(wanted)}:\n{done.stderr[-3000:]}")
    if PEER in wanted:
        marker.write_text("")
    if PEER_POSTGRES_DRIVER in wanted:
        driver_marker.write_text("")


class Peer:
    """One fresh Django project for the peer, in a workdir, with a database of its own.

    That is a SQLite file in the workdir, or with `postgres` a PostgreSQL
    database on replicas.PG_URL's server, created here and dropped by close().
    Use it as a context manager.
    """

    def __init__(self, python: Path, target: str, postgres: bool = False) -> None:
        self.python = python
        self.folder = workdir()
        self.log = self.folder / "peer.log"
        self.db = self.folder / "peer.db"
        self.pg_name: str | None = None
        self._sqlite: sqlite3.Connection | None = None
        self._pg: asyncpg.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if postgres:
            server = urlsplit(replicas.PG_URL)
            self.pg_name = f"relay_bench_peer_{os.getpid()}_{next(_DATABASES)}"
            self.pg_url = server._replace(path="/" + self.pg_name).geturl()
            database = POSTGRES_DATABASE.format(
                name=self.pg_name, user=unquote(server.username or "postgres"),
                password=unquote(server.password or ""), host=server.hostname or "",
                port=str(server.port or 5432))
            replicas.sql(f'CREATE DATABASE "{self.pg_name}"')
        else:
            database = SQLITE_DATABASE.format(name=str(self.db))
        try:
            # On PostgreSQL the package's default wake, LISTEN/NOTIFY; SQLite has none.
            (self.folder / "peer_settings.py").write_text(
                SETTINGS.format(database=database, wake="notify" if postgres else "poll"))
            app = self.folder / "benchapp"
            app.mkdir()
            (app / "__init__.py").write_text("")
            (app / "apps.py").write_text(APPS)
            (app / "events.py").write_text(EVENTS.format(name=EVENT["type"]))
            (self.folder / "tool.py").write_text(TOOL)
            self.tool("setup", target + "/hooks", str(EVENT["type"]), SECRET)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the bench's connection; drop the PostgreSQL database, if any."""
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        if self._loop is not None:
            if self._pg is not None:
                with contextlib.suppress(Exception):
                    self._loop.run_until_complete(self._pg.close(timeout=10))
                self._pg = None
            self._loop.close()
            self._loop = None
        if self.pg_name is not None:
            # FORCE: a worker that had to be killed may still hold a connection.
            replicas.sql(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
            self.pg_name = None

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        """Rows of `statement` on the peer's database, on one connection kept open."""
        if self.pg_name is None:
            if self._sqlite is None:
                self._sqlite = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
            return self._sqlite.execute(statement).fetchall()
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        if self._pg is None:
            self._pg = self._loop.run_until_complete(asyncpg.connect(self.pg_url, timeout=10))
        return [tuple(row) for row in self._loop.run_until_complete(self._pg.fetch(statement))]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PEER_EVENT_DATA": json.dumps(EVENT["data"]),
                "PYTHONPATH": str(self.folder), "DJANGO_SETTINGS_MODULE": "peer_settings"}

    def tool(self, *args: str) -> str:
        with open(self.log, "ab") as log:
            done = subprocess.run([str(self.python), "tool.py", *args], cwd=self.folder,
                                  env=self.env, stdout=subprocess.PIPE, stderr=log)
        if done.returncode:
            raise RuntimeError(f"peer `tool.py {' '.join(args)}` exited with {done.returncode}"
                               f":\n{self.log.read_text()[-3000:]}")
        return done.stdout.decode()

    def statuses(self) -> dict[str, int]:
        rows = self.query("SELECT status, count(*) FROM django_domain_events_deliveryrecord "
                          "GROUP BY status")
        return {str(status): int(count) for status, count in rows}

    def delivered(self) -> int:
        return int(self.query("SELECT count(*) FROM django_domain_events_deliveryrecord "
                              "WHERE status = 'succeeded'")[0][0])

    def enqueue(self, seconds: float) -> float:
        return float(json.loads(self.tool("enqueue", f"{seconds:g}"))["rate"])

    def drain(self, count: int, workers: int) -> float:
        """Fill a backlog of `count` events, then time `workers` worker processes on it.

        On SQLite each runs `deliver_events --once` and exits when nothing is
        owed; on PostgreSQL each is the long-running `deliver_events`, stopped
        (SIGTERM, then kill) once the last delivery is recorded.
        """
        long_running = self.pg_name is not None
        self.tool("fill", str(count), "500")
        assert self.statuses() == {"pending": count}, self.statuses()
        log = open(self.log, "ab")  # noqa: SIM115
        procs = [subprocess.Popen([str(self.python), "tool.py", "deliver",
                                   "relay" if long_running else "once"],
                                  cwd=self.folder, env=self.env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=log)
                 for _ in range(workers)]
        finished = False
        try:
            for proc in procs:  # each has set Django up, imported everything and connected
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != b"ready":
                    raise RuntimeError(f"a peer worker did not start:\n{self.log.read_text()}")
            started = time.perf_counter()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                proc.stdin.flush()
            while self.delivered() < count:
                # A long-running worker must not stop; --once workers stop when done.
                gone = [proc.poll() is not None for proc in procs]
                if any(gone) if long_running else all(gone):
                    if self.delivered() >= count:
                        break
                    raise RuntimeError(f"the peer's workers stopped with {self.statuses()}:\n"
                                       f"{self.log.read_text()[-3000:]}")
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            finished = True
        finally:
            for proc in procs:
                if not finished:  # they would wait for their go line, or go on delivering
                    proc.kill()
                elif long_running and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)  # finishes the delivery in hand
            for proc in procs:
                try:
                    proc.wait(timeout=10 if long_running else 60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
        sent = int(self.query("SELECT count(*) FROM django_outbound_webhooks_deliveryattempt"
                              )[0][0])
        if sent != count:  # a row taken twice, or retried: the figure would not be N deliveries
            raise RuntimeError(f"the peer made {sent} requests for {count} deliveries")
        return count / elapsed


def relay_enqueue(seconds: float, postgres: bool = False) -> float:
    """POST /v1/events one at a time on one keep-alive connection; events/s.

    The endpoint is paused. On SQLite, bench.ingest's configuration; with
    `postgres`, bench.replicas' in a schema of its own, dropped at the end.
    """
    folder = workdir()
    port = free_port()
    body = json.dumps(EVENT).encode()
    headers = {"Content-Type": "application/json"}
    with contextlib.ExitStack() as stack:
        if postgres:
            schema = stack.enter_context(replicas.fresh_schema())
            config = replicas.config(folder, port, f"{replicas.PG_URL}?search_path={schema}",
                                     "http://127.0.0.1:9", "relay")
            with replicas.relay(config, port, folder / "migrate.log"):
                pass
            replicas.sql("INSERT INTO endpoint_state (name, paused) VALUES ('sink', 1)",
                         schema=schema)
        else:
            config = relay_config(folder, port)
            pause_sink(folder, port, config)
        stack.enter_context(process([PYTHON, "-m", "relay", "run", "-c", str(config)],
                                    ready_url=f"http://127.0.0.1:{port}/healthz",
                                    log=folder / "relay.log"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def post() -> None:
            conn.request("POST", "/v1/events", body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            if not 200 <= answer.status < 300:
                raise RuntimeError(f"POST /v1/events answered {answer.status}")

        for _ in range(200):  # warm-up, as the peer's
            post()
        count = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            post()
            count += 1
        rate = count / (time.perf_counter() - started)
        conn.close()
    return rate


def relay_drain(count: int, target: str, postgres: bool) -> float:
    """Deliveries/s of one relay on a backlog of `count`: bench.delivery's or bench.replicas'."""
    if postgres:
        return replicas.drain(1, count, target)
    folder = workdir()
    port = free_port()
    config = write_config(folder, port, target)
    fill_backlog(folder, config, port, count)
    return drain(folder, config, port, count)


def run(quick: bool = False, postgres: bool = False) -> list[dict[str, object]]:
    relay_count = 5_000 if quick else 50_000
    peer_count = 500 if quick else 3_000
    seconds = 3.0 if quick else 10.0
    repeats = 1 if quick else 3
    workers = peer_workers(postgres)
    store = "PostgreSQL" if postgres else "SQLite"
    python = peer_python(postgres)
    relay_drains, peer_drains, relay_enqueues, peer_enqueues = [], [], [], []
    with nginx() as target:
        for _ in range(repeats):
            relay_drains.append(relay_drain(relay_count, target, postgres))
            with Peer(python, target, postgres) as peer:
                peer_drains.append(peer.drain(peer_count, workers))
            relay_enqueues.append(relay_enqueue(seconds, postgres))
            with Peer(python, target, postgres) as peer:
                peer_enqueues.append(peer.enqueue(seconds))
            time.sleep(0.5)
    return [
        report(
            f"peer: drain a backlog to nginx on {store}, deliveries/s "
            f"(relay {relay_count:,}-event backlog, peer {peer_count:,})",
            Figures("relay (one process, concurrency 64)", "deliv/s", relay_drains),
            Figures(f"django-outbound-webhooks ({workers} workers)", "deliv/s", peer_drains),
        ),
        report(
            f"peer: enqueue 1 KiB events on {store}, one caller, one commit each",
            Figures("relay (POST /v1/events, http.client)", "events/s", relay_enqueues),
            Figures("django-outbound-webhooks (fire() in-process)", "events/s",
                    peer_enqueues),
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run, for CI")
    parser.add_argument("--postgres", action="store_true",
                        help="both on PostgreSQL (RELAY_TEST_POSTGRES), the peer's own ground")
    parser.add_argument("--install", action="store_true",
                        help="create the peer's venv from PyPI, then exit")
    arguments = parser.parse_args()
    if arguments.install:
        install(arguments.postgres)
    else:
        run(arguments.quick, postgres=arguments.postgres)
