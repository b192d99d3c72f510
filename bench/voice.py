"""Throughput and latency of `/voice/incoming` against two baselines, all under gunicorn.

    .venv/bin/python bench/voice.py        (or `make bench`)

One run prepares a database (PostgreSQL in a schema of its own when INTAKE_TEST_POSTGRES_URL
is set, else SQLite in a temporary folder) and a desk that is open around the clock with
colleagues on shift, so every call takes the real "ring the colleagues" path. It then serves
three targets side by side under the same gunicorn settings on 127.0.0.1: the app, and two
baselines, bench/static_twiml.py (a fixed answer: what Flask under gunicorn costs) and
bench/durable_twiml.py (one INSERT and a commit on the same database, through the app's own
engine settings, then a fixed answer: what a call minimally must do). It drives each with
the same concurrent callers sending signed POSTs exactly as Twilio does, in turns, checks
every answer, and prints the figures, both ratios and the targets met or missed.

It is a measurement, not a test: the exit status is 0 whether or not the targets are met,
and non-zero only when the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from benchkit import (
    DESK_LINE,
    DESK_TIMEZONE,
    BenchDatabase,
    BenchError,
    bench_database,
    desk_toml,
    free_port,
    interrupted,
)

REPO = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is sys.path[0], and bench/voice.py would hide the voice package.
sys.path.insert(0, str(REPO))

from twilio.request_validator import RequestValidator  # noqa: E402

from bench.durable_twiml import create_table  # noqa: E402

BIN = Path(sys.executable).parent  # the venv's bin: gunicorn and intake live next to python
HOST = "127.0.0.1"
PATH = "/voice/incoming"

# Targets for /voice/incoming.
MIN_STATIC_RATIO = 0.5  # of the static endpoint's requests per second
MIN_DURABLE_RATIO = 0.8  # of the durable endpoint's (one INSERT and a commit) requests per second
MAX_P99_MS = 50.0

STATIC = "static TwiML"
DURABLE = "durable insert"
INCOMING = "/voice/incoming"


READY_SECONDS = 30.0
REQUEST_TIMEOUT = 10.0


# --- settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    callers: int
    warmup: int
    requests: int
    seconds: float
    rounds: int
    worker_class: str
    workers: int
    threads: int

    @property
    def server_args(self) -> list[str]:
        args = ["--workers", str(self.workers), "--worker-class", self.worker_class]
        if self.worker_class == "gthread":
            args += ["--threads", str(self.threads)]
        return args

    def describe_servers(self) -> str:
        if self.worker_class == "gthread":
            return (
                f"{self.workers} gthread workers x {self.threads} threads "
                "(HTTP keep-alive: one connection per caller)"
            )
        return (
            f"{self.workers} sync workers (no keep-alive there: a new connection per request "
            "for every target)"
        )


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--callers", type=int, default=8, help="concurrent callers (threads)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests per target")
    parser.add_argument("--requests", type=int, default=4000, help="measured requests per target")
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per target")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="measure the targets in turn, this many times each (evens out background load)",
    )
    # sync, gunicorn's default and what DESIGN.md deploys: on 2 shared cores it gave
    # /voice/incoming the lowest p99 on both databases (gthread's extra threads add lock and
    # GIL contention, badly so on SQLite) at about the same throughput. It has no keep-alive,
    # so every target pays a new connection per request; gthread measures with keep-alive.
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--threads", type=int, default=2, help="threads per gthread worker")
    ns = parser.parse_args(argv)
    if min(ns.callers, ns.requests, ns.rounds, ns.workers, ns.threads) < 1 or ns.warmup < 0:
        parser.error("counts must be positive")
    if ns.seconds <= 0:
        parser.error("--seconds must be positive")
    return Options(
        callers=ns.callers,
        warmup=ns.warmup,
        requests=ns.requests,
        seconds=ns.seconds,
        rounds=min(ns.rounds, ns.requests),
        worker_class=ns.worker_class,
        workers=ns.workers,
        threads=ns.threads,
    )


# --- the database and the desk ------------------------------------------------------------


def app_environment(
    database_url: str, public_url: str, token: str, instance: Path
) -> dict[str, str]:
    """This process's environment without any intake or Twilio settings, plus the bench's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "TWILIO_"))}
    env.update(
        INTAKE_DATABASE_URL=database_url,
        INTAKE_PUBLIC_URL=public_url,
        INTAKE_INSTANCE_PATH=str(instance),
        TWILIO_AUTH_TOKEN=token,
    )
    return env


def run_cli(args: Sequence[str], env: Mapping[str, str]) -> None:
    done = subprocess.run(
        [str(BIN / "intake"), *args], env=dict(env), cwd=REPO, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BenchError(f"intake {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    print(f"  intake {args[0]}: {done.stdout.strip().splitlines()[-1]}")


# --- the servers --------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        with suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_server(
    name: str, app: str, port: int, options: Options, env: Mapping[str, str], workdir: Path
) -> Server:
    log = workdir / f"gunicorn-{port}.log"
    command = [
        str(BIN / "gunicorn"),
        "--bind", f"{HOST}:{port}",
        *options.server_args,
        "--log-level", "warning",
        "--error-logfile", str(log),
        "--graceful-timeout", "5",
        "--no-control-socket",
        app,
    ]  # fmt: skip
    with log.open("wb") as out:
        # A session of its own: Ctrl-C reaches only this script, which then stops the server,
        # and the server's workers can be ended as one group should the master not stop them.
        process = subprocess.Popen(
            command, env=dict(env), cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    return Server(name, port, log, process)


def wait_ready(server: Server, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} server exited at start:\n{server.log_tail()}")
        connection = http.client.HTTPConnection(HOST, server.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.1)
    raise BenchError(
        f"{server.name} server not ready in {READY_SECONDS:.0f} s:\n{server.log_tail()}"
    )


def stop_server(server: Server) -> None:
    """SIGTERM to the master, which stops its workers; the whole group if it does not."""
    process = server.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            pass
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def process_tree_cpu(pid: int) -> float | None:
    """CPU seconds used so far by `pid` and its children (Linux /proc), or None."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    found = False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # After the name: state, ppid, ..., utime and stime are fields 14 and 15 of stat.
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
            found = True
    return total if found else None


# --- the callers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    body: bytes
    headers: dict[str, str]


def signed_calls(public_url: str, token: str, count: int, rng: random.Random) -> list[Call]:
    """`count` distinct incoming-call webhooks, signed as Twilio signs them."""
    validator = RequestValidator(token)
    url = public_url + PATH
    account = "AC" + secrets.token_hex(16)
    calls = []
    for _ in range(count):
        params = {
            "CallSid": "CA" + secrets.token_hex(16),
            "AccountSid": account,
            "From": f"+316{rng.randrange(10**8):08d}",
            "To": DESK_LINE,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, params),
            "User-Agent": "TwilioProxy/1.1",
        }
        calls.append(Call(urllib.parse.urlencode(params).encode(), headers))
    return calls


def problem_with(status: int, content_type: str, body: bytes) -> str | None:
    """Why an answer is not a good `<Dial>` TwiML answer, or None when it is."""
    if status != 200:
        return f"HTTP {status}"
    if content_type.split(";")[0].strip().lower() != "text/xml":
        return f"Content-Type {content_type or '(none)'}"
    try:
        # Our own server's answer on 127.0.0.1, not untrusted input.
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError:
        return "not XML"
    if root.tag != "Response":
        return f"<{root.tag}> instead of <Response>"
    if root.find("Dial") is None:
        verbs = ",".join(child.tag for child in root) or "nothing"
        return f"no <Dial> (got {verbs})"
    return None


class CountingConnection(http.client.HTTPConnection):
    """Counts the TCP connections it opens (a closed connection reopens on the next request)."""

    opened = 0

    def connect(self) -> None:
        super().connect()
        self.opened += 1


@dataclass
class Result:
    name: str
    requests: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, of good answers
    problems: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    elapsed: float = 0.0
    server_cpu: float | None = 0.0  # seconds; None when it cannot be read
    client_cpu: float = 0.0  # seconds, this whole process

    @property
    def errors(self) -> int:
        return sum(self.problems.values())

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def add(self, other: Result) -> None:
        self.requests += other.requests
        self.latencies += other.latencies
        self.problems.update(other.problems)
        self.connections += other.connections
        self.elapsed += other.elapsed
        self.client_cpu += other.client_cpu
        if self.server_cpu is not None and other.server_cpu is not None:
            self.server_cpu += other.server_cpu
        else:
            self.server_cpu = None

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the good answers' latencies, in milliseconds."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def drive(server: Server, calls: Sequence[Call], callers: int, seconds: float) -> Result:
    """Send `calls` from `callers` threads until all are answered or `seconds` have passed."""
    result = Result(server.name)
    lock = threading.Lock()
    next_index = 0
    deadline = time.monotonic() + seconds

    def caller() -> None:
        nonlocal next_index
        connection = CountingConnection(HOST, server.port, timeout=REQUEST_TIMEOUT)
        latencies: list[float] = []
        problems: Counter[str] = Counter()
        sent = 0
        try:
            while time.monotonic() < deadline:
                with lock:
                    index = next_index
                    next_index += 1
                if index >= len(calls):
                    break
                call = calls[index]
                sent += 1
                started = time.perf_counter()
                try:
                    connection.request("POST", PATH, call.body, call.headers)
                    response = connection.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    connection.close()
                    problems[type(exc).__name__] += 1
                    continue
                latency = time.perf_counter() - started
                problem = problem_with(
                    response.status, response.getheader("Content-Type", ""), body
                )
                if problem is None:
                    latencies.append(latency)
                else:
                    problems[problem] += 1
        finally:
            connection.close()
            with lock:
                result.requests += sent
                result.latencies += latencies
                result.problems.update(problems)
                result.connections += connection.opened

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(callers)]
    cpu_before = process_tree_cpu(server.process.pid)
    client_before = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - started
    result.client_cpu = time.process_time() - client_before
    cpu_after = process_tree_cpu(server.process.pid)
    if cpu_before is None or cpu_after is None:
        result.server_cpu = None
    else:
        result.server_cpu = cpu_after - cpu_before
    return result


# --- the report ---------------------------------------------------------------------------


def print_table(results: Sequence[Result]) -> None:
    print(
        f"  {'target':<18}{'requests':>9}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'conns':>7}{'server CPU':>12}{'bench CPU':>11}"
    )
    for r in results:
        server = (
            f"{1000 * r.server_cpu / r.requests:.2f} ms" if r.server_cpu and r.requests else "-"
        )
        client = f"{1000 * r.client_cpu / r.requests:.2f} ms" if r.requests else "-"
        print(
            f"  {r.name:<18}{r.requests:>9}{r.errors:>8}{r.rps:>9.1f}{r.percentile_ms(0.50):>9.1f}"
            f"{r.percentile_ms(0.99):>9.1f}{r.connections:>7}{server:>12}{client:>11}"
        )
    print(
        "  CPU per request: 'server' is the gunicorn master and workers (a database server's"
        " own\n  processes not counted), 'bench' this load generator; p50/p99 over good answers"
    )
    for r in results:
        for problem, count in r.problems.most_common(5):
            print(f"  {r.name}: {count} x {problem}")


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def verdict(results: Mapping[str, Result], planned: int) -> None:
    static, durable, incoming = results[STATIC], results[DURABLE], results[INCOMING]
    to_static = ratio(incoming.rps, static.rps)
    to_durable = ratio(incoming.rps, durable.rps)
    p99 = incoming.percentile_ms(0.99)
    checks = [
        (
            f"throughput /voice/incoming / durable insert: {to_durable:.2f}x"
            f" (target >= {MIN_DURABLE_RATIO}x)",
            to_durable >= MIN_DURABLE_RATIO,
        ),
        (
            f"throughput /voice/incoming / static: {to_static:.2f}x"
            f" (target >= {MIN_STATIC_RATIO}x)",
            to_static >= MIN_STATIC_RATIO,
        ),
        (f"p99 /voice/incoming: {p99:.1f} ms (target < {MAX_P99_MS:.0f} ms)", p99 < MAX_P99_MS),
        (
            f"errors /voice/incoming: {incoming.errors} (target 0)",
            incoming.errors == 0 and incoming.requests > 0,
        ),
    ]
    print()
    print(
        f"  for information: durable insert / static {ratio(durable.rps, static.rps):.2f}x;"
        f" p99 /voice/incoming / static {ratio(p99, static.percentile_ms(0.99)):.2f}x,"
        f" / durable insert {ratio(p99, durable.percentile_ms(0.99)):.2f}x"
    )
    if durable.errors:
        print(f"  warning: the durable baseline had {durable.errors} errors: its figure is off")
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    for r in results.values():
        if r.requests < planned:
            print(f"  note: {r.name} sent {r.requests} of {planned} requests (time limit)")
    missed = sum(not ok for _, ok in checks)
    print()
    if missed:
        print(f"RESULT: {missed} of {len(checks)} targets MISSED (a measurement: exit status 0)")
    else:
        print(f"RESULT: all {len(checks)} targets met")


def warn_about_clock() -> None:
    """The desk is open 00:00-23:59: calls in the last local minute of a day get voicemail."""
    local = datetime.now(ZoneInfo(DESK_TIMEZONE))
    if local.hour == 23 and local.minute >= 55:
        print(
            f"  warning: it is {local:%H:%M} in {DESK_TIMEZONE}; from 23:59 the desk is closed "
            "for a minute and those calls (voicemail, no <Dial>) count as errors"
        )


# --- the run ------------------------------------------------------------------------------


def run(options: Options) -> None:
    print("helpdesk-intake: /voice/incoming against a static and a durable-insert endpoint")
    print(
        f"  machine: {os.cpu_count()} CPU(s), shared by the servers and this load generator: "
        "absolute figures are modest and vary between runs; the ratio is the measure"
    )
    print(f"  servers: gunicorn, {options.describe_servers()}, each server")
    print(
        f"  load: {options.callers} callers (threads), {options.warmup} warm-up and "
        f"{options.requests} measured requests per target (in {options.rounds} turns), "
        f"at most {options.seconds:.0f} s each"
    )
    warn_about_clock()
    workdir = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    servers: list[Server] = []
    try:
        with bench_database(workdir, "voice") as db:
            print(f"  database: {db.label}")
            try:
                measure(options, db, workdir, servers)
            finally:
                for server in servers:
                    stop_server(server)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(HOST)
        if port not in ports:
            ports.append(port)
    return ports


def measure(options: Options, db: BenchDatabase, workdir: Path, servers: list[Server]) -> None:
    token = secrets.token_hex(16)
    app_port, static_port, durable_port = distinct_ports(3)
    app_url = f"http://{HOST}:{app_port}"
    env = app_environment(db.url, app_url, token, workdir / "instance")
    desk = workdir / "desk.toml"
    desk.write_text(desk_toml())
    run_cli(["init"], env)
    run_cli(["load-config", str(desk)], env)
    create_table(db.url)

    static_env = {k: v for k, v in env.items() if not k.startswith(("INTAKE_", "TWILIO_"))}
    durable_env = {**static_env, "INTAKE_DATABASE_URL": db.url}
    for name, app, port, server_env in (
        (STATIC, "bench.static_twiml:create_app()", static_port, static_env),
        (DURABLE, "bench.durable_twiml:create_app()", durable_port, durable_env),
        (INCOMING, "intake:create_app()", app_port, env),
    ):
        servers.append(start_server(name, app, port, options, server_env, workdir))
    deadline = time.monotonic() + READY_SECONDS
    for server in servers:
        wait_ready(server, deadline)

    rng = random.Random(2010)
    total = options.warmup + options.requests
    calls = {server.name: signed_calls(server.url, token, total, rng) for server in servers}
    if options.warmup:
        for server in servers:
            warm = drive(
                server, calls[server.name][: options.warmup], options.callers, options.seconds
            )
            if warm.errors:
                print(f"  warm-up {server.name}: {warm.errors} of {warm.requests} failed")
                for problem, count in warm.problems.most_common(3):
                    print(f"    {count} x {problem}")
    # In turns, so that whatever else the machine does weighs on every target alike.
    results = {server.name: Result(server.name) for server in servers}
    for round_number in range(options.rounds):
        start = options.warmup + round_number * options.requests // options.rounds
        stop = options.warmup + (round_number + 1) * options.requests // options.rounds
        for server in servers:
            result = results[server.name]
            budget = options.seconds - result.elapsed
            if budget > 0:
                result.add(drive(server, calls[server.name][start:stop], options.callers, budget))
    for server in servers:
        if server.process.poll() is not None:
            print(
                f"  warning: the {server.name} server exited during the run:\n{server.log_tail()}"
            )
    print()
    print_table(list(results.values()))
    verdict(results, options.requests)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    for number in (signal.SIGINT, signal.SIGTERM):  # clean up on `kill` as on Ctrl-C
        signal.signal(number, interrupted)
    try:
        run(options)
    except BenchError as exc:
        print(f"bench/voice.py could not run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; servers stopped and temporary files removed", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
