"""Mail intake against bare imapclient and smtplib, on a private Dovecot and an aiosmtpd sink.

    .venv/bin/python bench/mail.py [--messages 2000] [--idle | --idle-only]

One run starts its own Dovecot (tests/mailservers.py) and an SMTP sink (aiosmtpd, in a process
of its own so that its buffers are not counted as ours), prepares a database (PostgreSQL in a
schema of its own when INTAKE_TEST_POSTGRES_URL is set, else SQLite in a temporary folder) and
a desk that is open around the clock with colleagues on shift, so that every mail is forwarded.
It appends the messages to the INBOX over one IMAP session (a few with a 10 MB attachment, the
rest patient mail of a few KB, some with a small attachment), then measures:

    (a) a bare imapclient fetch of all of them (BODY.PEEK[], batched as the poller batches);
    (b) our ingest: `mail.poller.poll(app)`: fetch, parse, log, queue the forwards;
    (c) a bare smtplib send of those forwards: the outbox rows' bytes, one connection;
    (d) our outbox flush of the same rows: `intake.shell.jobs.flush_outbox(app)` until none is due.

They run in the order (b), (d), (a), (c), so that what a baseline leaves in this process's
memory is not counted in ours. (b) and (d) then run a second time on an emptied database
under tracemalloc, which slows Python code too much to be timed. It prints messages per
second, peak memory and the ratios b/a and d/c against the targets; `--profile` adds a pass
under cProfile that shows where the time of (b) and (d) goes. `--idle` then adds the part in
bench/mailidle.py: 20 mailboxes under IMAP IDLE, one mail appended to each at once, the time
until all are contacts (median and max of 5 rounds; `--idle-only` runs that part alone).

It is a measurement, not a test: the exit status is 0 whether or not the targets are met,
and non-zero only when the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import dataclasses
import hashlib
import io
import json
import os
import pstats
import random
import re
import resource
import shutil
import signal
import smtplib
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from benchkit import (
    DESK_ADDRESS,
    DESK_TIMEZONE,
    BenchDatabase,
    BenchError,
    bench_database,
    desk_toml,
    free_port,
    interrupted,
)

REPO = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is sys.path[0], and bench/routing.py would hide the routing package.
sys.path.insert(0, str(REPO))

from flask import Flask  # noqa: E402
from imapclient import IMAPClient  # noqa: E402
from mailidle import measure_idle, print_idle  # noqa: E402  (after REPO is on sys.path)
from sqlalchemy import delete, event, func, select  # noqa: E402
from sqlalchemy.engine import Connection, Engine  # noqa: E402

from intake import create_app  # noqa: E402
from intake.core.db import Base, database  # noqa: E402
from intake.core.definition import parse_definition  # noqa: E402
from intake.core.deskstore import store_desk  # noqa: E402
from intake.core.models import OutboxMessage  # noqa: E402
from intake.core.schema import upgrade  # noqa: E402
from intake.shell.jobs import flush_outbox  # noqa: E402
from mail.outbox import FlushResult, message_bytes  # noqa: E402
from mail.poller import FETCH_BYTES, FETCH_COUNT, PollResult, poll  # noqa: E402
from routing.desk import Desk  # noqa: E402
from routing.mailplan import plan_mail  # noqa: E402
from tests.mailservers import Dovecot, ServiceUnavailable  # noqa: E402

HOST = "127.0.0.1"
MB = 1024 * 1024

# Targets.
MIN_INGEST_RATIO = 0.3  # (b) of (a), messages per second
MIN_FLUSH_RATIO = 0.7  # (d) of (c), messages per second
MAX_PEAK_MB = 200.0


SINK_SIZE_LIMIT = 64 * MB  # a forward carries the original whole: 10 MB base64 and more
SINK_READY_SECONDS = 15.0
IMAP_TIMEOUT = 120.0
SMTP_TIMEOUT = 120.0
FLUSH_ROUNDS = 1000  # flush_outbox sends at most 500 a call; more calls than this is a bug


# --- settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    messages: int
    large: int
    large_mb: float
    memory_pass: bool
    profile: bool
    seed: int
    idle: bool = False
    idle_only: bool = False
    idle_mailboxes: int = 20
    idle_rounds: int = 5


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=2000, help="messages in the mailbox")
    parser.add_argument(
        "--large", type=int, default=5, help="of which this many carry a large attachment"
    )
    parser.add_argument(
        "--large-mb", type=float, default=10.0, help="size of a large attachment, MB (decoded)"
    )
    parser.add_argument(
        "--no-memory-pass",
        dest="memory_pass",
        action="store_false",
        help="skip the second pass of (b) and (d) under tracemalloc",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one more pass of (b) and (d) under cProfile; prints where the time goes",
    )
    parser.add_argument("--seed", type=int, default=2026, help="for the generated mail")
    parser.add_argument(
        "--idle",
        action="store_true",
        help="then: many mailboxes under IMAP IDLE, one mail each at once, time to contacts",
    )
    parser.add_argument(
        "--idle-only", action="store_true", help="only the --idle part, not (a) to (d)"
    )
    parser.add_argument("--idle-mailboxes", type=int, default=20, help="for --idle")
    parser.add_argument("--idle-rounds", type=int, default=5, help="for --idle")
    # Internal: this script is also the SMTP sink and the mailbox loader, as child processes.
    parser.add_argument("--smtp-sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--load-mailbox", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.smtp_sink is not None:
        serve_sink(ns.smtp_sink)
        sys.exit(0)
    if ns.load_mailbox:
        fill_mailbox()
        sys.exit(0)
    if ns.messages < 1 or ns.large < 0 or ns.large > ns.messages or ns.large_mb <= 0:
        parser.error("--messages must be positive, --large between 0 and --messages")
    return Options(
        messages=ns.messages,
        large=ns.large,
        large_mb=ns.large_mb,
        memory_pass=ns.memory_pass,
        profile=ns.profile,
        seed=ns.seed,
        idle=ns.idle or ns.idle_only,
        idle_only=ns.idle_only,
        idle_mailboxes=ns.idle_mailboxes,
        idle_rounds=ns.idle_rounds,
    )


# --- the database and the desk ------------------------------------------------------------


def make_app(db: BenchDatabase, workdir: Path, dovecot: Dovecot, smtp_port: int) -> Flask:
    """The app as `intake serve` would make it from INTAKE_* settings, on the wall clock."""
    instance = workdir / "instance"
    instance.mkdir()
    return create_app(
        {
            "DATABASE_URL": db.url,
            "SECRET_KEY": "bench",
            "INSTANCE_PATH": str(instance),
            "PUBLIC_URL": "",
            "TWILIO_AUTH_TOKEN": "",
            "INSECURE_DEV": False,
            # The same connection as the mail tests: plain port, STARTTLS, our certificate.
            "IMAP_HOST": dovecot.host,
            "IMAP_PORT": dovecot.port,
            "IMAP_SSL": False,
            "IMAP_STARTTLS": True,
            "IMAP_CAFILE": dovecot.cafile,
            "IMAP_USER": dovecot.user,
            "IMAP_PASSWORD": dovecot.password,
            "IMAP_FOLDER": "INBOX",
            "SMTP_HOST": HOST,
            "SMTP_PORT": smtp_port,
            "SMTP_STARTTLS": False,
            "SMTP_FROM": DESK_ADDRESS,
        }
    )


def prepare_database(app: Flask) -> Desk:
    """`intake init` and `intake load-config`, in this process."""
    upgrade(database(app).engine)
    desk = parse_definition(desk_toml(), source="bench/mail.py")
    load_desk(app, desk)
    return desk


def load_desk(app: Flask, desk: Desk) -> None:
    with database(app).session() as session:
        store_desk(session, desk, source="bench/mail.py", at=app.config["CLOCK"]())
        session.commit()


def empty_database(app: Flask, desk: Desk) -> None:
    """Every row gone (contacts, stored mail, outbox, mailbox position), the desk loaded again."""
    with database(app).session() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
        session.commit()
    load_desk(app, desk)


def warn_about_clock(desk: Desk) -> None:
    """The desk is open 00:00-23:59 on the wall clock: mail in its last minute is held."""
    local = datetime.now(ZoneInfo(DESK_TIMEZONE))
    if local.hour == 23 and local.minute >= 40:
        print(
            f"  warning: it is {local:%H:%M} in {DESK_TIMEZONE}; from 23:59 to midnight the desk"
            " is closed, and mail polled then is acknowledged and held instead of forwarded"
        )
    plan = plan_mail(desk, datetime.now(ZoneInfo(DESK_TIMEZONE)))
    if plan.action != "forward":
        print(f"  warning: the desk would not forward a mail now ({plan.reason})")


# --- the messages -------------------------------------------------------------------------

FIRST_NAMES = (
    "Jan", "Maria", "Ahmed", "Fatima", "Pieter", "Sanne", "Willem", "Özlem", "José", "Anouk",
    "Kees", "Ingrid", "Mohamed", "Lotte", "Henk", "Yara", "Gerrit", "Noor", "Thijs", "Émilie",
)  # fmt: skip
LAST_NAMES = (
    "Jansen", "de Vries", "van den Berg", "Bakker", "Yılmaz", "El Amrani", "Visser", "Smit",
    "Meijer", "de Boer", "Mulder", "Bos", "Dekker", "van Dijk", "Koç", "Hendriks",
)  # fmt: skip
DOMAINS = (
    "gmail.com", "hotmail.nl", "outlook.com", "ziggo.nl", "kpnmail.nl", "live.nl",
    "xs4all.nl", "icloud.com", "planet.nl", "home.nl",
)  # fmt: skip
SUBJECTS = (
    "Inloggen lukt niet",
    "Vraag over mijn afspraak van volgende week",
    "DigiD koppelen aan het patiëntportaal",
    "Videoconsult start niet op mijn tablet",
    "Herhaalrecept aanvragen via de app",
    "Wachtwoord vergeten en geen sms ontvangen",
    "Foutmelding bij het uploaden van een foto",
    "Uitslag bloedonderzoek niet zichtbaar",
    "Machtiging voor mijn moeder regelen",
    "App blijft hangen na update",
    "Vragenlijst kan niet worden verzonden",
    "Code via e-mail komt niet aan",
    "Hoe verander ik mijn telefoonnummer?",
    "Brief over verwijzing – ontvangen?",
    "Probleem met inloggen € betaling eigen risico",
)
SENTENCES = (
    "Sinds gisteren kan ik niet meer inloggen op het patiëntportaal.",
    "Ik krijg steeds de melding dat mijn code niet klopt, terwijl ik hem precies overneem.",
    "Mijn dochter heeft het ook geprobeerd op haar telefoon, maar daar lukt het ook niet.",
    "Ik heb morgen om 10.15 uur een videoconsult met de cardioloog en wil zeker weten dat het "
    "werkt.",
    "De app vraagt om een update, maar in de App Store staat dat ik de nieuwste versie heb.",
    "Ik gebruik een iPad van een paar jaar oud, met de laatste versie van iOS die erop kan.",
    "Bij het koppelen van DigiD kom ik na het inloggen weer op de startpagina terecht.",
    "Kunt u mij vertellen wat ik verkeerd doe? Ik ben niet zo handig met computers.",
    "Ik heb de foutmelding als schermafbeelding bijgevoegd.",
    "Mijn huisarts zei dat de uitslag al in het portaal zou moeten staan.",
    "Ik wil graag een machtiging regelen zodat ik de afspraken van mijn moeder kan inzien.",
    "Het telefoonnummer waar de sms-code naartoe gaat is niet meer van mij.",
    "U kunt mij het beste bellen na 14.00 uur, of mailen natuurlijk.",
    "Alvast hartelijk dank voor uw hulp, ik waardeer het zeer.",
    "Ik heb het wachtwoord al drie keer opnieuw ingesteld, zonder resultaat.",
    "Op de computer van de bibliotheek werkte het wel, thuis niet.",
    "De vragenlijst voor de operatie blijft bij de laatste stap staan.",
    "Moet ik hiervoor een nieuw account aanmaken of kan het met mijn oude gegevens?",
)
SIGN_OFFS = ("Met vriendelijke groet,", "Groet,", "Vriendelijke groeten,", "Hartelijke groet,")
MAILERS = (
    "Microsoft Outlook 16.0",
    "Apple Mail (2.3774.300.61.1.2)",
    "iPhone Mail (21F90)",
    "Mozilla Thunderbird 115.10.1",
    None,
)
SMALL_ATTACHMENTS = (
    ("image", "png", "Schermafbeelding 2026-11-23 om 09.14.32.png", 40_000, 260_000),
    ("image", "jpeg", "foutmelding.jpg", 30_000, 180_000),
    ("application", "pdf", "verwijsbrief huisarts.pdf", 20_000, 150_000),
)
LARGE_ATTACHMENTS = (
    ("application", "pdf", "scan ontslagbrief en medicatieoverzicht.pdf"),
    ("video", "mp4", "filmpje van de foutmelding.mp4"),
    ("application", "zip", "foto's wond.zip"),
)


@dataclass
class Patient:
    name: str
    address: str
    domain: str
    earlier: list[tuple[str, str]] = field(default_factory=list)  # (Message-ID, Subject)


def ascii_local(text_: str) -> str:
    folded = unicodedata.normalize("NFKD", text_).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", ".", folded.lower()).strip(".")


def patients(count: int, rng: random.Random) -> list[Patient]:
    found = []
    for n in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        domain = rng.choice(DOMAINS)
        local = f"{ascii_local(first)}.{ascii_local(last)}{n}"
        found.append(Patient(f"{first} {last}", f"{local}@{domain}", domain))
    return found


def b64(rng: random.Random, size: int) -> str:
    return base64.b64encode(rng.randbytes(size)).decode()


def body_text(rng: random.Random, patient: Patient, target: int) -> str:
    paragraphs = ["Beste helpdesk,", ""]
    size = 0
    while size < target:
        paragraph = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(2, 5)))
        paragraphs += [paragraph, ""]
        size += len(paragraph)
    paragraphs += [rng.choice(SIGN_OFFS), patient.name]
    if rng.random() < 0.5:
        paragraphs.append(f"06-{rng.randrange(10**8):08d}")
    if rng.random() < 0.3:
        paragraphs += ["", "Verzonden vanaf mijn iPhone"]
    return "\n".join(paragraphs) + "\n"


def body_html(text_: str) -> str:
    paragraphs = "".join(
        f'<p class="MsoNormal" style="margin:0cm;font-size:11pt;font-family:Calibri,sans-serif">'
        f"{line or '&nbsp;'}</p>\n"
        for line in text_.splitlines()
    )
    return (
        '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>'
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        "<style>p.MsoNormal{margin:0cm;font-size:11.0pt}</style></head>"
        f'<body lang="NL" style="word-wrap:break-word"><div class="WordSection1">\n{paragraphs}'
        "</div></body></html>\n"
    )


def patient_mail(
    n: int, rng: random.Random, patient: Patient, now: datetime, large_bytes: int
) -> bytes:
    """One realistic patient mail, as it lies in the mailbox after delivery (CRLF)."""
    sent = now - timedelta(minutes=rng.randint(1, 600), seconds=rng.randint(0, 59))
    message = EmailMessage()
    message["Return-Path"] = f"<{patient.address}>"
    message["Received"] = (
        f"from mx{rng.randint(1, 9)}.{patient.domain} (mx.{patient.domain} "
        f"[203.0.113.{rng.randint(1, 254)}]) by mail.example.org (Postfix) with ESMTPS id "
        f"{rng.getrandbits(40):010X} for <{DESK_ADDRESS}>; {format_datetime(sent)}"
    )
    message["Received"] = (
        f"by smtp.{patient.domain} with SMTP id {rng.getrandbits(64):016x}; {format_datetime(sent)}"
    )
    message["DKIM-Signature"] = (
        f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={patient.domain}; s=20230601; "
        f"t={int(sent.timestamp())}; h=to:subject:message-id:date:from:mime-version; "
        f"bh={b64(rng, 32)}; b={b64(rng, 256)}"
    )
    message["Authentication-Results"] = (
        f"mail.example.org; dkim=pass header.d={patient.domain}; spf=pass "
        f"smtp.mailfrom={patient.address}; dmarc=pass header.from={patient.domain}"
    )
    message["From"] = f"{patient.name} <{patient.address}>"
    message["To"] = f"Helpdesk Digitale Zorg <{DESK_ADDRESS}>"
    message["Date"] = format_datetime(sent)
    if patient.earlier and rng.random() < 0.5:  # a follow-up to their own earlier mail
        earlier_id, earlier_subject = patient.earlier[-1]
        subject = f"Re: {earlier_subject}"
        message["In-Reply-To"] = earlier_id
        message["References"] = earlier_id
    else:
        subject = rng.choice(SUBJECTS)
    message["Subject"] = subject
    message_id = f"<{rng.getrandbits(64):016x}.{n}@{patient.domain}>"
    if rng.random() < 0.98:  # a few mailers send none: the content hash stands in
        message["Message-ID"] = message_id
        patient.earlier.append((message_id, subject))
    mailer = rng.choice(MAILERS)
    if mailer:
        message["X-Mailer"] = mailer
    text_ = body_text(rng, patient, rng.randint(400, 3500))
    message.set_content(text_)
    if rng.random() < 0.3:
        message.add_alternative(body_html(text_), subtype="html")
    if large_bytes:
        maintype, subtype, filename = rng.choice(LARGE_ATTACHMENTS)
        message.add_attachment(
            rng.randbytes(large_bytes), maintype=maintype, subtype=subtype, filename=filename
        )
    elif rng.random() < 0.08:
        maintype, subtype, filename, low, high = rng.choice(SMALL_ATTACHMENTS)
        message.add_attachment(
            rng.randbytes(rng.randint(low, high)),
            maintype=maintype,
            subtype=subtype,
            filename=filename,
        )
    return message.as_bytes(policy=SMTP_POLICY)


@dataclass
class Loaded:
    messages: int = 0
    bytes: int = 0
    large: int = 0
    seconds: float = 0.0


def load_mailbox(dovecot: Dovecot, options: Options) -> Loaded:
    """Fill the INBOX from a child process (`--load-mailbox`), so that composing the messages
    leaves nothing in this process's memory figures."""
    job = {
        "host": dovecot.host,
        "port": dovecot.port,
        "user": dovecot.user,
        "password": dovecot.password,
        "messages": options.messages,
        "large": options.large,
        "large_mb": options.large_mb,
        "seed": options.seed,
    }
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--load-mailbox"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-10:])
        raise BenchError(f"loading the mailbox failed (exit status {done.returncode}):\n{tail}")
    return Loaded(**json.loads(done.stdout.strip().splitlines()[-1]))


def fill_mailbox() -> None:
    """Run as a child (`--load-mailbox`, the job as JSON on stdin): append the messages to
    INBOX over one IMAP session, each made just before it is sent; the figures on stdout."""
    job = json.loads(sys.stdin.read())
    rng = random.Random(job["seed"])
    n, k = int(job["messages"]), int(job["large"])
    people = patients(max(n // 3, 1), rng)
    large_at = {(2 * i + 1) * n // (2 * k) for i in range(k)}  # spread through the mailbox
    large_bytes = int(float(job["large_mb"]) * MB)
    now = datetime.now(ZoneInfo(DESK_TIMEZONE))
    loaded = Loaded()
    started = time.perf_counter()
    client = IMAPClient(job["host"], port=job["port"], ssl=False, timeout=IMAP_TIMEOUT)
    try:
        client.login(job["user"], job["password"])
        for i in range(n):
            raw = patient_mail(i, rng, rng.choice(people), now, large_bytes if i in large_at else 0)
            client.append("INBOX", raw)
            loaded.messages += 1
            loaded.bytes += len(raw)
            loaded.large += i in large_at
            del raw
        # Dovecot caches what a FETCH asks the first time: ask once here, so that neither
        # (a) nor (b), whichever runs first, pays for filling that cache.
        client.select_folder("INBOX", readonly=True)
        client.fetch(client.search("ALL"), ["RFC822.SIZE"])
    finally:
        with suppress(Exception):
            client.logout()
    loaded.seconds = time.perf_counter() - started
    print(json.dumps(dataclasses.asdict(loaded)))


# --- the SMTP sink, a process of its own ----------------------------------------------------


def serve_sink(port: int) -> None:
    """Run as a child (`--smtp-sink PORT`): an aiosmtpd server that counts what it accepts.

    It keeps, per message, only a digest of envelope and content, so that the parent can check
    that (c) and (d) delivered the same messages. Commands on stdin, one per line: `take`
    answers with a JSON line (messages, bytes, digest of all, CPU seconds so far) and starts
    counting again; end of input stops the server.
    """
    # Lazy for start-up: only the child process serving the sink needs aiosmtpd.
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, Envelope, Session

    lock = threading.Lock()
    digests: list[str] = []
    received = [0]

    class Handler:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            content = envelope.original_content or b""
            digest = hashlib.sha256()
            digest.update(f"{envelope.mail_from}\0{','.join(envelope.rcpt_tos)}\0".encode())
            digest.update(content)
            with lock:
                digests.append(digest.hexdigest())
                received[0] += len(content)
            return "250 OK: queued"

    controller = Controller(
        Handler(),
        hostname=HOST,
        port=port,
        server_hostname="localhost",  # the banner's name, without a DNS lookup
        data_size_limit=SINK_SIZE_LIMIT,
    )
    controller.start()
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            if line.strip() != "take":
                continue
            with lock:
                taken, size = sorted(digests), received[0]
                digests.clear()
                received[0] = 0
            usage = resource.getrusage(resource.RUSAGE_SELF)
            answer = {
                "messages": len(taken),
                "bytes": size,
                "digest": hashlib.sha256("".join(taken).encode()).hexdigest(),
                "cpu": usage.ru_utime + usage.ru_stime,
            }
            print(json.dumps(answer), flush=True)
    finally:
        controller.stop()


@dataclass(frozen=True)
class Delivered:
    messages: int
    bytes: int
    digest: str
    cpu: float  # the sink's CPU seconds since it started


class SinkProcess:
    """The sink (serve_sink) in a child process, so that its buffers are not in our figures."""

    def __init__(self) -> None:
        self.port = free_port(HOST)
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--smtp-sink", str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            start_new_session=True,  # Ctrl-C reaches only us; we stop it
        )
        self._cpu = 0.0
        try:
            if self._read_line(SINK_READY_SECONDS) != "ready":
                raise BenchError("the SMTP sink did not start")
            self.take()  # its CPU time from here on: not its start-up
        except BaseException:
            self.stop()
            raise

    def _read_line(self, timeout: float) -> str:
        """One line from the child, or BenchError when none comes within `timeout`."""
        line: list[str] = []
        reader = threading.Thread(
            target=lambda: line.append(self._stdout().readline()), daemon=True
        )
        reader.start()
        reader.join(timeout)
        if not line or not line[0]:
            code = self.process.poll()
            raise BenchError(f"the SMTP sink stopped answering (exit status {code})")
        return line[0].strip()

    def _stdout(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    def take(self) -> Delivered:
        """What arrived since the last take; the sink's CPU time spent in between."""
        assert self.process.stdin is not None
        self.process.stdin.write("take\n")
        self.process.stdin.flush()
        answer = json.loads(self._read_line(30.0))
        cpu = float(answer["cpu"])
        delivered = Delivered(
            int(answer["messages"]), int(answer["bytes"]), str(answer["digest"]), cpu - self._cpu
        )
        self._cpu = cpu
        return delivered

    def stop(self) -> None:
        process = self.process
        with suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()  # end of input: the child stops its server
        if process.poll() is None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


# --- measuring ----------------------------------------------------------------------------


class PeakRss:
    """The peak resident memory of this process during a stage (Linux: VmHWM, reset before).

    Without a writable /proc/self/clear_refs the peak cannot be reset; each stage then shows
    ru_maxrss since the process started.
    """

    def __init__(self) -> None:
        self.overall = 0.0
        self.resettable = True

    @staticmethod
    def now_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    def reset(self) -> None:
        self.overall = max(self.overall, self.now_mb())
        if not self.resettable:
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS
        except OSError:
            self.resettable = False

    def read(self) -> float:
        peak = self.now_mb()
        self.overall = max(self.overall, peak)
        return peak

    @staticmethod
    def current_mb() -> float | None:
        """Resident memory now (VmRSS), or None where /proc does not say."""
        try:
            status = Path("/proc/self/status").read_text()
        except OSError:
            return None
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(found.group(1)) / 1024 if found else None


def server_cpu(pid: int) -> float | None:
    """CPU seconds used so far by `pid` and its children, live or reaped (Linux /proc), or None.

    Dovecot's master forks an imap process per session and reaps it at logout: its time is
    then in the master's cutime and cstime.
    """
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
        # After the name: state, ppid, ...; utime, stime, cutime, cstime are fields 14-17.
        if int(entry) == pid:
            total += sum(int(f) for f in fields[11:15]) / tick
            found = True
        elif int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total if found else None


@dataclass
class Stage:
    name: str
    messages: int = 0
    bytes: int = 0
    seconds: float = 0.0
    cpu: float = 0.0  # this process
    server_cpu: float | None = None  # Dovecot for (a) and (b), the sink for (c) and (d)
    start_rss: float | None = None  # MB, this process when the stage began
    peak_rss: float = 0.0  # MB, this process during the stage
    traced_peak: float | None = None  # MB, tracemalloc, from the second pass
    note: str = ""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def mb_rate(self) -> float:
        return self.bytes / MB / self.seconds if self.seconds else 0.0


@contextmanager
def measured(stage: Stage, rss: PeakRss, dovecot_pid: int | None = None) -> Iterator[Stage]:
    stage.start_rss = rss.current_mb()
    rss.reset()
    before_server = server_cpu(dovecot_pid) if dovecot_pid is not None else None
    cpu = time.process_time()
    started = time.perf_counter()
    yield stage
    stage.seconds = time.perf_counter() - started
    stage.cpu = time.process_time() - cpu
    stage.peak_rss = max(rss.read(), stage.start_rss or 0.0)
    if dovecot_pid is not None:
        after_server = server_cpu(dovecot_pid)
        if before_server is not None and after_server is not None:
            stage.server_cpu = after_server - before_server
    print(f"  {stage.name}: {stage.messages} messages in {stage.seconds:.1f} s")


def imap_client(app: Flask) -> IMAPClient:
    """A bare imapclient connection, made as the poller makes its own (STARTTLS, login)."""
    config = app.config
    client = IMAPClient(config["IMAP_HOST"], port=config["IMAP_PORT"], ssl=False, timeout=60)
    client.starttls(ssl.create_default_context(cafile=config["IMAP_CAFILE"]))
    client.login(config["IMAP_USER"], config["IMAP_PASSWORD"])
    return client


def bare_fetch(app: Flask, stage: Stage) -> None:
    """(a): every message with BODY.PEEK[], in the poller's batches, read and dropped.

    The batching is the poller's: sizes fetched per 500 UIDs, then batches of at most
    FETCH_COUNT messages or about FETCH_BYTES.
    """
    client = imap_client(app)
    try:
        client.select_folder(app.config["IMAP_FOLDER"])
        uids = sorted(client.search(["UID", "1:*"]))

        def fetch(batch: list[int]) -> None:
            bodies = client.fetch(batch, ["BODY.PEEK[]"])
            for uid in batch:
                stage.messages += 1
                stage.bytes += len(bodies[uid][b"BODY[]"])
            del bodies

        for start in range(0, len(uids), 500):
            window = uids[start : start + 500]
            sizes = client.fetch(window, ["RFC822.SIZE"])
            batch: list[int] = []
            total = 0
            for uid in window:
                size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
                if batch and (total + size > FETCH_BYTES or len(batch) >= FETCH_COUNT):
                    fetch(batch)
                    batch, total = [], 0
                batch.append(uid)
                total += size
            if batch:
                fetch(batch)
    finally:
        with suppress(Exception):
            client.logout()


@contextmanager
def transactions(engine: Engine) -> Iterator[list[float]]:
    """How long each transaction on `engine` lasted, begin to commit or rollback (seconds).

    On SQLite a fetch batch holds the database's one write lock from its first statement to
    its commit: the longest of these is how long a call's webhook may wait behind a poll.
    """
    lasted: list[float] = []

    def began(connection: Connection) -> None:
        connection.info["bench_began"] = time.perf_counter()

    def ended(connection: Connection) -> None:
        at = connection.info.pop("bench_began", None)
        if at is not None:
            lasted.append(time.perf_counter() - at)

    hooks = (("begin", began), ("commit", ended), ("rollback", ended))
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        yield lasted
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)


def ingest(app: Flask, stage: Stage, expected: int) -> PollResult:
    """(b): one poll of the whole mailbox, as the worker's job runs it.

    On SQLite the stage ends once what the poll wrote is in the database file: SQLite copies
    its write-ahead log into the file a few MB at a time, at a commit, and whatever the last
    commits left in the log would otherwise be copied by a later stage.
    """
    result = poll(app)
    if result.locked or result.disabled:
        raise BenchError(f"the poll did not run: {result}")
    engine = database(app).engine
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
    stage.messages = result.fetched
    if result.fetched != expected:
        raise BenchError(f"the poll fetched {result.fetched} of {expected} messages")
    return result


@dataclass(frozen=True)
class Spooled:
    mail_from: str
    recipients: list[str]
    offset: int
    length: int


def outbox_counts(app: Flask) -> Counter[str]:
    with database(app).session() as session:
        rows = session.execute(
            select(OutboxMessage.kind, func.count())
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
            .group_by(OutboxMessage.kind)
        )
        return Counter({kind: int(count) for kind, count in rows})


def spool_outbox(app: Flask, path: Path) -> list[Spooled]:
    """Every outbox row's envelope and bytes, written to a file (not held in memory)."""
    spooled: list[Spooled] = []
    query = select(OutboxMessage.id, OutboxMessage.mail_from, OutboxMessage.recipients).order_by(
        OutboxMessage.id
    )
    with database(app).session() as session, path.open("wb") as out:
        for row_id, mail_from, recipients in session.execute(query).all():
            raw = message_bytes(session, row_id)  # a forward's original joined in
            spooled.append(Spooled(mail_from, list(recipients), out.tell(), len(raw)))
            out.write(raw)
            del raw
    return spooled


def bare_send(app: Flask, stage: Stage, spooled: Sequence[Spooled], path: Path) -> None:
    """(c): the same bytes with smtplib.sendmail, over one connection."""
    with path.open("rb") as spool:
        smtp = smtplib.SMTP(app.config["SMTP_HOST"], app.config["SMTP_PORT"], timeout=SMTP_TIMEOUT)
        try:
            for entry in spooled:
                spool.seek(entry.offset)
                raw = spool.read(entry.length)
                refused = smtp.sendmail(entry.mail_from, entry.recipients, raw)
                if refused:
                    raise BenchError(f"the sink refused recipients: {refused}")
                stage.messages += 1
                stage.bytes += len(raw)
                del raw
            smtp.quit()
        finally:
            smtp.close()


def outbox_flush(app: Flask, stage: Stage) -> FlushResult:
    """(d): the outbox job, called until nothing is due (it sends at most 500 a call)."""
    sent = postponed = failed = 0
    for _ in range(FLUSH_ROUNDS):
        result = flush_outbox(app)
        if result is None:
            raise BenchError("no SMTP host configured for the outbox")
        sent, postponed, failed = (
            sent + result.sent,
            postponed + result.postponed,
            failed + result.failed,
        )
        if result.sent == 0 or result.postponed or result.failed:
            break
    stage.messages = sent
    return FlushResult(sent, postponed, failed)


# --- the report ---------------------------------------------------------------------------


def print_table(stages: Sequence[Stage]) -> None:
    print(
        f"  {'stage':<30}{'msgs':>6}{'MB':>7}{'s':>7}{'msg/s':>8}{'MB/s':>7}"
        f"{'our CPU':>9}{'srv CPU':>9}{'RSS at start':>14}{'peak RSS':>10}{'traced':>8}"
    )
    for s in stages:
        server = f"{s.server_cpu:.1f} s" if s.server_cpu is not None else "-"
        start = f"{s.start_rss:.0f} MB" if s.start_rss is not None else "-"
        traced = f"{s.traced_peak:.0f} MB" if s.traced_peak is not None else "-"
        print(
            f"  {s.name:<30}{s.messages:>6}{s.bytes / MB:>7.1f}{s.seconds:>7.2f}{s.rate:>8.1f}"
            f"{s.mb_rate:>7.1f}{s.cpu:>7.1f} s{server:>9}{start:>14}{s.peak_rss:>7.0f} MB"
            f"{traced:>8}"
        )
    print(
        "  measured in the order (b), (d), (a), (c): what the baselines leave in memory does not"
        " count in ours.\n  'our CPU' is this process; 'srv CPU' Dovecot for (a)/(b), the SMTP"
        " sink (a process of its own)\n  for (c)/(d). 'RSS at start' and 'peak RSS' are this"
        " process's resident memory; 'traced' is the\n  tracemalloc peak of a second pass"
        " (Python allocations only; tracing is too slow to time)."
    )
    for s in stages:
        if s.note:
            print(f"  {s.name}: {s.note}")


def verdict(fetch: Stage, ingested: Stage, send: Stage, flushed: Stage, rss: PeakRss) -> None:
    ingest_ratio = ingested.rate / fetch.rate if fetch.rate else float("nan")
    flush_ratio = flushed.rate / send.rate if send.rate else float("nan")
    memory = [ingested.peak_rss, flushed.peak_rss]
    memory += [s.traced_peak for s in (ingested, flushed) if s.traced_peak is not None]
    peak = max(memory)
    how = (
        "the larger of peak RSS and tracemalloc peak during (b) and (d)"
        if rss.resettable
        else "ru_maxrss since the start (the peak could not be reset per stage)"
    )
    checks = [
        (
            f"ingest / bare fetch (b/a): {ingest_ratio:.2f}x (target >= {MIN_INGEST_RATIO}x)",
            ingest_ratio >= MIN_INGEST_RATIO,
        ),
        (
            f"outbox flush / bare send (d/c): {flush_ratio:.2f}x (target >= {MIN_FLUSH_RATIO}x)",
            flush_ratio >= MIN_FLUSH_RATIO,
        ),
        (f"peak memory: {peak:.0f} MB (target < {MAX_PEAK_MB:.0f} MB; {how})", peak < MAX_PEAK_MB),
    ]
    print()
    print(f"  ru_maxrss of this process over the whole run: {rss.overall:.0f} MB")
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    missed = sum(not ok for _, ok in checks)
    print()
    if missed:
        print(f"RESULT: {missed} of {len(checks)} targets MISSED (a measurement: exit status 0)")
    else:
        print(f"RESULT: all {len(checks)} targets met")


def print_profile(title: str, profile: cProfile.Profile, seconds: float) -> None:
    """Our own functions by cumulative time, then every function by its own time."""
    stats = pstats.Stats(profile)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = max(seconds, 1e-9)
    ours = [
        (cumulative, own, calls, f"{Path(file).relative_to(REPO)}:{name}")
        for (file, _line, name), (_prim, calls, own, cumulative, _callers) in raw.items()
        if file.startswith(str(REPO))
        and "/.venv/" not in file
        and not file.startswith(str(REPO / "bench"))
    ]
    print(f"\n  {title}: {seconds:.2f} s under cProfile")
    print(f"    {'our function (file:function)':<58}{'calls':>8}{'cumul':>9}{'share':>7}{'own':>8}")
    for cumulative, own, calls, label in sorted(ours, reverse=True)[:18]:
        print(
            f"    {label:<58}{calls:>8}{cumulative:>8.2f}s{100 * cumulative / total:>6.0f}%"
            f"{own:>7.2f}s"
        )
    print(f"    {'any function, by own time':<58}{'calls':>8}{'own':>9}{'share':>7}")
    everything = sorted(
        (
            (own, calls, file, line, name)
            for (file, line, name), (_p, calls, own, _c, _x) in raw.items()
        ),
        reverse=True,
    )
    for own, calls, file, line, name in everything[:14]:
        where = file
        with suppress(ValueError):
            where = str(Path(file).relative_to(REPO))
        where = re.sub(r"^.*/(site-packages|python3\.\d+)/", "", where)
        label = f"{where}:{line}:{name}"[-58:]
        print(f"    {label:<58}{calls:>8}{own:>8.2f}s{100 * own / total:>6.0f}%")


# --- the run ------------------------------------------------------------------------------


def run(options: Options) -> None:
    print("helpdesk-intake: mail intake against bare imapclient and smtplib")
    print(
        f"  machine: {os.cpu_count()} CPU(s), shared by Dovecot, the SMTP sink, the database and"
        " this process: absolute figures vary between runs; the ratios are the measure"
    )
    with suppress(OSError):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"  load average at the start: {load} (other work on the machine skews the figures)")
    if options.idle_only:
        print("  only the IDLE part (--idle-only): no (a) to (d)")
    else:
        print(
            f"  mail: {options.messages} messages, {options.large} of them with a "
            f"{options.large_mb:g} MB attachment; IMAP over STARTTLS, SMTP plain, both 127.0.0.1"
        )
    workdir = Path(tempfile.mkdtemp(prefix="bench-mail-"))
    dovecot: Dovecot | None = None
    sink: SinkProcess | None = None
    try:
        with bench_database(workdir, "mail") as db:
            print(f"  database: {db.label}")
            dovecot = Dovecot()
            try:
                dovecot.start()
            except ServiceUnavailable as exc:
                raise BenchError(f"Dovecot: {exc}") from exc
            sink = SinkProcess()
            app = make_app(db, workdir, dovecot, sink.port)
            try:
                if not options.idle_only:
                    measure(options, app, dovecot, sink, workdir)
            finally:
                database(app).engine.dispose()
            if options.idle:
                print(
                    f"\n  IDLE: {options.idle_mailboxes} mailboxes (a Dovecot user each), one"
                    " mail appended to each at once (a thread each, released by a barrier)"
                )
                idle = measure_idle(dovecot, workdir, options.idle_mailboxes, options.idle_rounds)
                print_idle(idle, options.idle_rounds)
    finally:
        if sink is not None:
            sink.stop()
        if dovecot is not None:
            dovecot.close()
        shutil.rmtree(workdir, ignore_errors=True)


def dovecot_pid(dovecot: Dovecot) -> int | None:
    """The master's pid (its children serve the sessions), from the pid file it writes."""
    try:
        return int((dovecot.directory / "run" / "master.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def measure(
    options: Options, app: Flask, dovecot: Dovecot, sink: SinkProcess, workdir: Path
) -> None:
    desk = prepare_database(app)
    warn_about_clock(desk)
    print(f"  Dovecot {dovecot.host}:{dovecot.port}, SMTP sink {HOST}:{sink.port} (pid "
          f"{sink.process.pid})")  # fmt: skip
    loaded = load_mailbox(dovecot, options)
    print(
        f"  loaded {loaded.messages} messages ({loaded.bytes / MB:.1f} MB, {loaded.large} large)"
        f" over one IMAP session in {loaded.seconds:.1f} s"
    )
    rss = PeakRss()
    pid = dovecot_pid(dovecot)
    n = loaded.messages

    # Ours first, then the baselines: memory a baseline leaves behind (freed, but kept by the
    # allocator) would otherwise be counted in our figures.
    ingested = Stage("(b) ingest: poll(app)")
    engine = database(app).engine
    with measured(ingested, rss, pid), transactions(engine) as lasted:
        polled = ingest(app, ingested, n)
    queued = outbox_counts(app)
    ingested.note = (
        f"{polled.logged} logged, {polled.duplicates} seen before, "
        f"{len(polled.attention)} left for a person; outbox: "
        + ", ".join(f"{count} {kind}" for kind, count in sorted(queued.items()))
        + f"; {len(lasted)} transactions, the longest {1000 * max(lasted, default=0):.0f} ms"
        f" (median {1000 * statistics.median(lasted or [0]):.0f} ms)"
    )
    if engine.dialect.name == "sqlite":
        ingested.note += "; on SQLite a batch holds the write lock that long: a webhook may wait"
    if queued["forward"] != n:
        ingested.note += f" (expected {n} forwards)"

    flushed = Stage("(d) outbox flush: flush_outbox")
    with measured(flushed, rss):
        result = outbox_flush(app, flushed)
    ours = sink.take()
    flushed.server_cpu = ours.cpu
    flushed.note = f"{result.sent} sent, {result.postponed} postponed, {result.failed} failed"

    fetch = Stage("(a) bare imapclient fetch")
    with measured(fetch, rss, pid):
        bare_fetch(app, fetch)
    if fetch.messages != n:
        raise BenchError(f"the bare fetch read {fetch.messages} of {n} messages")
    ingested.bytes = fetch.bytes  # the same messages

    spool = workdir / "outbox.spool"
    spooled = spool_outbox(app, spool)
    send = Stage("(c) bare smtplib send")
    with measured(send, rss):
        bare_send(app, send, spooled, spool)
    bare = sink.take()
    send.server_cpu = bare.cpu
    spool.unlink()
    del spooled
    flushed.bytes = send.bytes  # the same rows
    if (ours.messages, ours.bytes, ours.digest) != (bare.messages, bare.bytes, bare.digest):
        flushed.note += (
            f"; the sink got {ours.messages} messages ({ours.bytes} bytes) from (d) and "
            f"{bare.messages} ({bare.bytes} bytes) from (c): NOT the same"
        )
    else:
        flushed.note += f"; the sink got the same {ours.messages} messages from (c) and (d)"

    if options.memory_pass:
        second_pass(app, desk, sink, n, ingested, flushed)
    print()
    print_table([fetch, ingested, send, flushed])
    verdict(fetch, ingested, send, flushed, rss)
    if options.profile:
        profile_pass(app, desk, sink, n)


def second_pass(
    app: Flask, desk: Desk, sink: SinkProcess, n: int, ingested: Stage, flushed: Stage
) -> None:
    """(b) and (d) again on an emptied database, under tracemalloc: their peaks."""
    print("  (b) and (d) again under tracemalloc ...")
    empty_database(app, desk)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        ingest(app, Stage("(b) traced"), n)
        ingested.traced_peak = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.reset_peak()
        outbox_flush(app, Stage("(d) traced"))
        flushed.traced_peak = tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()
    sink.take()


def profile_pass(app: Flask, desk: Desk, sink: SinkProcess, n: int) -> None:
    """(b) and (d) once more on an emptied database, under cProfile."""
    print("\n  (b) and (d) again under cProfile ...")
    empty_database(app, desk)
    for title, job in (
        ("(b) ingest", lambda: ingest(app, Stage("(b) profiled"), n)),
        ("(d) outbox flush", lambda: outbox_flush(app, Stage("(d) profiled"))),
    ):
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.runcall(job)
        print_profile(title, profile, time.perf_counter() - started)
    sink.take()


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):  # progress shows as it happens, also in a file
        sys.stdout.reconfigure(line_buffering=True)
    for number in (signal.SIGINT, signal.SIGTERM):  # clean up on `kill` as on Ctrl-C
        signal.signal(number, interrupted)
    try:
        run(options)
    except BenchError as exc:
        print(f"bench/mail.py could not run: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; Dovecot and the SMTP sink stopped, temporary files removed",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
