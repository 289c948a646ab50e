"""What the failure drills share: throwaway servers on free 127.0.0.1 ports, always stopped.

- ``PrivatePostgres``: a PostgreSQL cluster of its own (``initdb`` into a temporary directory, run
  as the ``postgres`` user when we are root), so a drill may restart it without touching anyone's
  server. Needs the PostgreSQL server binaries (``pg_config --bindir`` or /usr/lib/postgresql/*/bin).
- ``RedisServer``: a ``redis-server`` of its own with an append-only file, so it can be stopped and
  started again with its queues intact (as a production Redis with persistence would be).
- ``Gunicorn``: the product's WSGI app; ``SmtpSinkProcess``: a real SMTP server (aiosmtpd) in its
  own process that appends every accepted message to a JSON-lines file.
- ``manage()``, ``django_env()``, ``write_result()``; ``free_port()``, ``ensure_database()`` and the
  bench shop (``reset_bench_shop()``, ``insert_bench_catalogue()``), which the other benchmarks use too.

Run ``python bench/drill_common.py smtp-sink --port N --log FILE`` to start a sink by hand.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_database(url: str) -> None:
    """Create the database of ``url`` if it does not exist (connecting to the server's ``postgres`` db)."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def write_result(name: str, result: dict) -> Path:
    """Print the JSON summary and save it as bench/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    text = json.dumps(result, indent=2, sort_keys=False)
    path.write_text(text + "\n")
    print(text)
    return path


BENCH_TABLES = ("campaigns_click, campaigns_recipient, campaigns_campaign, recommendations_recommendation, "
                "recommendations_modelversion, crm_interaction, crm_feedback, crm_segment, crm_item, crm_customer")


def reset_bench_shop(cur, *, n_customers: int, n_items: int, recs_per_customer: int,
                     domains: tuple[str, ...] = ("example.com",), attributes_first: tuple[int, str] = (0, "{}"),
                     opt_out_every: int = 0, out_of_stock_every: int = 0) -> int:
    """Empty the CRM, campaign and recommendation tables, then insert customers ``c1..n`` (e-mail
    ``c<g>@<domain>``, the domains in turn; the first ``attributes_first[0]`` get the JSON
    ``attributes_first[1]``, the others ``{}``; every ``opt_out_every``-th not opted in, 0: none) and
    :func:`insert_bench_catalogue`'s items, active version and lists; ANALYZE. The version's id."""
    flagged, attributes = attributes_first
    cur.execute(f"TRUNCATE {BENCH_TABLES} RESTART IDENTITY CASCADE")
    cur.execute(
        """INSERT INTO crm_customer (external_id, email, first_name, last_name, country, attributes, email_opt_in,
               created_at, updated_at)
           SELECT 'c' || g, 'c' || g || '@' || (%s::text[])[1 + g %% %s], 'Name' || g, 'Bench', 'DE',
                  CASE WHEN g <= %s THEN %s::jsonb ELSE '{}'::jsonb END, g %% %s <> 0, now(), now()
           FROM generate_series(1, %s) g""",
        [list(domains), len(domains), flagged, attributes, opt_out_every or n_customers + 1, n_customers],
    )
    version_id = insert_bench_catalogue(cur, n_items=n_items, recs_per_customer=recs_per_customer,
                                        out_of_stock_every=out_of_stock_every)
    cur.execute("ANALYZE")
    return version_id


def insert_bench_catalogue(cur, *, n_items: int, recs_per_customer: int, out_of_stock_every: int = 0) -> int:
    """Items ``SKU1..n``, an active 'bench' model version and every existing customer's discover list
    of ``recs_per_customer`` hash-chosen items (first occurrence kept), with set-based SQL; the
    version's id. ``out_of_stock_every``: every n-th item is out of stock (0: none)."""
    in_stock = f"g %% {int(out_of_stock_every)} <> 0" if out_of_stock_every else "true"
    cur.execute(
        f"""INSERT INTO crm_item (sku, title, description, category, tags, price, currency, url, image_url,
               active, in_stock, attributes, created_at, updated_at)
           SELECT 'SKU' || g, 'Product ' || g, '', 'cat' || (g %% 20), '[]'::jsonb, 5 + (g %% 100), 'EUR',
                  'https://shop.example.com/p/' || g, 'https://cdn.example.com/' || g || '.jpg',
                  true, {in_stock}, '{{}}'::jsonb, now(), now()
           FROM generate_series(1, %s) g""",
        [n_items],
    )
    cur.execute(
        """INSERT INTO recommendations_modelversion (algorithm, params, data_stats, metrics, artifact_path, device,
               timings, status, is_active, notes, created_at)
           VALUES ('bench', '{}', '{}', '{}', '', 'cpu', '{}', 'ready', true, '', now()) RETURNING id"""
    )
    version_id = cur.fetchone()[0]
    cur.execute(
        """INSERT INTO recommendations_recommendation (model_version_id, customer_id, list, rank, item_id,
               score, probability, reason)
           SELECT %s, c.id, 'discover', r, 1 + ((c.id * 7919 + r * 104729) %% %s), 1.0 / r, 0.5 / r,
                  'because you viewed'
           FROM crm_customer c CROSS JOIN generate_series(1, %s) r""",
        [version_id, n_items, recs_per_customer],
    )
    # Hash-chosen items may repeat within a customer's list: keep the first occurrence only.
    cur.execute(
        """DELETE FROM recommendations_recommendation a USING recommendations_recommendation b
           WHERE a.customer_id = b.customer_id AND a.item_id = b.item_id AND a.rank > b.rank"""
    )
    return version_id


def django_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of every product process a drill starts (no broker unless ``extra`` sets one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PYTEST_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="crm.settings",
        TAILORED_ENV="development",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL="",
        LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([PYTHON, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def run_django(env: dict[str, str], code: str, timeout: float = 600) -> str:
    """Run ``code`` in a fresh Django process with ``env``; returns its stdout."""
    script = "import django\ndjango.setup()\n" + code
    done = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"django code failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def stop_process(process: subprocess.Popen | None, timeout: float = 15, group: bool = False) -> None:
    """SIGTERM, then SIGKILL when it does not exit in ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM) if group else process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL) if group else process.kill()
        process.wait(timeout=timeout)


# --- PostgreSQL -----------------------------------------------------------------------------------


def _pg_bindir() -> Path:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        bindir = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                     check=True).stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql")


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port: ``with PrivatePostgres() as pg: pg.url("db")``."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.bindir = _pg_bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="tailored-drill-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self._as_postgres = os.geteuid() == 0  # initdb refuses to run as root
        self.restarts = 0

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def _options(self) -> str:
        return (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c max_connections=200 -c shared_buffers=64MB")

    def __enter__(self) -> PrivatePostgres:
        try:
            if self._as_postgres:
                shutil.chown(self.dir, user="postgres")
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
            self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l", str(self.log), "-w", "start")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def restart(self, mode: str = "fast") -> float:
        """``pg_ctl restart``: every open connection is cut; returns the seconds it took."""
        started = time.monotonic()
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-o", self._options(), "-l", str(self.log), "-w",
                  "restart")
        self.restarts += 1
        return time.monotonic() - started


# --- Redis ----------------------------------------------------------------------------------------


class RedisServer:
    """A redis-server of our own (append-only file, fsync always) that can be stopped and started."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tailored-drill-redis-"))
        self.process: subprocess.Popen | None = None
        self.stops = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server not found; install redis")
        log = (self.dir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_port(self.port)

    def stop(self) -> None:
        """SIGTERM: Redis closes every client connection and exits (the AOF keeps its data)."""
        stop_process(self.process, timeout=20)
        self.process = None
        self.stops += 1

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        stop_process(self.process, timeout=20)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- gunicorn -------------------------------------------------------------------------------------


class Gunicorn:
    """``gunicorn crm.wsgi`` on 127.0.0.1 (an access log with the status of every request)."""

    def __init__(self, env: dict[str, str], workers: int = 2, port: int | None = None, access_log: Path | None = None,
                 error_log: Path | None = None, timeout: int = 60):
        self.env, self.workers, self.port = env, workers, port or free_port()
        self.access_log, self.error_log, self.timeout = access_log, error_log, timeout
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Gunicorn:
        command = [PYTHON, "-m", "gunicorn", "crm.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers),
                   "--timeout", str(self.timeout), "--log-level", "warning"]
        if self.access_log:
            command += ["--access-logfile", str(self.access_log), "--access-logformat", '%(m)s %(U)s %(s)s']
        output = self.error_log.open("ab") if self.error_log else None  # the server's stderr (tracebacks)
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, start_new_session=True, stdout=output,
                                        stderr=subprocess.STDOUT if output else None)
        if output:
            output.close()
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(self.base + "/api/v1/", timeout=10).read()
                    break
                except urllib.error.HTTPError:  # any HTTP answer (401, 404) means it serves
                    break
                except OSError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("gunicorn did not start") from None
                    time.sleep(0.3)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        stop_process(self.process, timeout=30, group=True)

    def logged_exceptions(self) -> Counter:
        """The last line of each traceback in the error log, counted (e.g. ``OperationalError: ...``)."""
        found: Counter = Counter()
        if not self.error_log or not self.error_log.exists():
            return found
        lines = self.error_log.read_text(errors="replace").splitlines()
        for n, line in enumerate(lines):
            if line.startswith("Traceback"):
                end = n + 1
                while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
                    end += 1
                if end < len(lines):
                    found[lines[end].split(":")[0][:120]] += 1
        return found


# --- SMTP sink ------------------------------------------------------------------------------------


class SmtpSinkProcess:
    """``python bench/drill_common.py smtp-sink`` in its own process; ``messages()`` reads what it accepted.

    The message is appended to the log BEFORE the 250 reply (after an optional ``delay``): a client
    killed while waiting for the reply has still had its message delivered, the risky case.
    """

    def __init__(self, directory: Path, delay: float = 0.0, fsync: bool = True):
        self.port = free_port()
        self.log = directory / f"smtp-sink-{self.port}.jsonl"
        self.delay = delay
        self.fsync = fsync  # off for throughput benchmarks: the drills need it, a sink at 1,000/s does not
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> SmtpSinkProcess:
        self.log.touch()
        self.process = subprocess.Popen(
            [PYTHON, str(Path(__file__).resolve()), "smtp-sink", "--port", str(self.port), "--log", str(self.log),
             "--delay", str(self.delay), *([] if self.fsync else ["--no-fsync"])], cwd=ROOT)
        try:
            wait_port(self.port)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        stop_process(self.process)

    def messages(self) -> list[dict]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


_MESSAGE_ID = rb"^Message-ID:[ \t]*(.*(?:\r\n[ \t].*)*)"  # the header's value, folded lines and all


def _smtp_sink_main(port: int, log: str, delay: float, fsync: bool = True) -> None:
    """aiosmtpd's SMTP server on 127.0.0.1:``port``, appending one JSON line per accepted recipient
    to ``log`` (written, and fsynced unless ``fsync`` is off, before the 250 reply).

    It is the benchmarks' instrument, so it does as little as it can per message: no parsing of the
    message beyond finding its Message-ID in the header block, the log kept open, the event loop in
    the main thread. It advertises PIPELINING as production MTAs do (aiosmtpd reads commands from
    one buffered stream, so pipelined commands are answered in order). uvloop was tried: no gain,
    the CPU goes to aiosmtpd's own per-line Python, not to the loop.
    """
    import asyncio
    import re
    from email._header_value_parser import get_addr_spec, get_angle_addr
    from email.errors import HeaderParseError

    from aiosmtpd.smtp import SMTP

    message_id = re.compile(_MESSAGE_ID, re.IGNORECASE | re.MULTILINE)
    out = open(log, "ab", buffering=0)  # noqa: SIM115 - open for the server's whole life

    class Handler:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            return [*responses[:-1], "250-PIPELINING", responses[-1]]

        async def handle_DATA(self, server, session, envelope):
            content = envelope.content
            head = content[:content.find(b"\r\n\r\n")]
            found = message_id.search(head)
            mid = found.group(1).replace(b"\r\n", b"").decode("ascii", "replace").strip() if found else ""
            now = time.time()
            out.write("".join(json.dumps({"to": rcpt, "message_id": mid, "at": now}) + "\n"
                              for rcpt in envelope.rcpt_tos).encode())
            if fsync:
                os.fsync(out.fileno())
            if delay:
                await asyncio.sleep(delay)
            return "250 Message accepted for delivery"

    class SinkSMTP(SMTP):
        async def push(self, status) -> None:
            """Replies to pipelined commands leave in one write once no whole command is waiting
            (as Postfix does), not one write (and one wake-up of the client) each."""
            self._replies = getattr(self, "_replies", b"") + status.encode() + b"\r\n"
            if b"\n" not in self._reader._buffer:
                replies, self._replies = self._replies, b""
                self._writer.write(replies)
                await self._writer.drain()

        def _getaddr(self, arg):
            """aiosmtpd 1.4's, without the ``typing.Protocol`` class it defines on every call (a
            tenth of the server's CPU per message)."""
            if not arg:
                return "", ""
            try:
                address, rest = (get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec)(arg)
            except HeaderParseError:
                return None, None
            addr = address.addr_spec
            if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
                return None, None
            return addr, rest

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        handler = Handler()
        server = await loop.create_server(lambda: SinkSMTP(handler, hostname="localhost"), "127.0.0.1", port)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        server.close()

    try:
        asyncio.run(serve())
    finally:
        out.close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sink = sub.add_parser("smtp-sink")
    sink.add_argument("--port", type=int, required=True)
    sink.add_argument("--log", required=True)
    sink.add_argument("--delay", type=float, default=0.0)
    sink.add_argument("--no-fsync", action="store_true")
    args = parser.parse_args()
    _smtp_sink_main(args.port, args.log, args.delay, fsync=not args.no_fsync)
