"""A private Dovecot (IMAP) for the tests: an ordinary child process with its own config,
base_dir, state, log and Maildir under a temporary directory, on free ports of 127.0.0.1
(plain IMAP with STARTTLS, and IMAPS). The fixtures are in tests/mailservers.py."""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, cast

from imapclient import IMAPClient

from tests.dovecotconf import config_text, mail_owner
from tests.serverkit import (
    LOCALHOST,
    ServiceUnavailable,
    client_context,
    find_program,
    forget_server,
    free_ports,
    port_open,
    remember_server,
    self_signed_cert,
    wait_until_closed,
)

__all__ = [
    "IMAP_PASSWORD",
    "IMAP_USER",
    "SECOND_PASSWORD",
    "SECOND_USER",
    "STARTUP_TIMEOUT",
    "Dovecot",
    "Security",
]

IMAP_USER = "helpdesk@example.org"
IMAP_PASSWORD = "helpdesk-test-password"
# A second mailbox on the same server, for a desk with a mailbox per organisation.
SECOND_USER = "linde@example.org"
SECOND_PASSWORD = "linde-test-password"
STARTUP_TIMEOUT = 10.0

Security = Literal["plain", "starttls", "ssl"]


class Dovecot:
    """A private Dovecot with one Maildir user, for the test run.

    Folders are Maildir++ as in Debian's default config: the hierarchy delimiter is "."
    ("Archive.2026"). The first `start()` writes the directory, certificate and config and
    picks the ports; `stop()`/`kill()` and `start()` again keep them, and the mail. `close()`
    stops the server and removes everything.
    """

    host = LOCALHOST

    def __init__(
        self,
        *,
        user: str = IMAP_USER,
        password: str = IMAP_PASSWORD,
        binary: str | None = None,
    ) -> None:
        self.user = user
        self.password = password
        self.binary = binary or find_program("dovecot")
        self.port = 0
        self.ssl_port = 0
        self._directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- where things are

    @property
    def directory(self) -> Path:
        if self._directory is None:
            raise RuntimeError("Dovecot has not been started yet")
        return self._directory

    @property
    def config_path(self) -> Path:
        return self.directory / "dovecot.conf"

    @property
    def cafile(self) -> str:
        """The self-signed certificate the server presents; a client verifies against it."""
        return str(self.directory / "server.crt")

    @property
    def log_path(self) -> Path:
        return self.directory / "dovecot.log"

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        for path in (self.directory / "dovecot.out", self.log_path):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _startup_output(self, log_start: int) -> str:
        """What this start wrote, on one line (a skip reason is shown as one line)."""
        text = (self.directory / "dovecot.out").read_text(errors="replace")
        with contextlib.suppress(OSError), self.log_path.open("rb") as log:
            log.seek(log_start)
            text += log.read().decode(errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-5:]) or "(no output)"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Dovecot {self.host} imap={self.port} imaps={self.ssl_port} {state}>"

    # -- life cycle

    @property
    def running(self) -> bool:
        # Not Popen.poll(): that would reap the master, and its pid names the process group.
        return self._process is not None and not _wait_exited(self._process.pid, timeout=0)

    def start(self) -> None:
        if self.running:
            return
        self.kill()  # a master that died on its own: reap it and whatever it left
        if self.binary is None:
            raise ServiceUnavailable(
                "Dovecot is not installed (no `dovecot` binary; Debian: apt-get install "
                "dovecot-imapd)"
            )
        first = self._directory is None
        if first:
            self._prepare()
        attempts = 3 if first else 1
        for attempt in range(attempts):
            try:
                self._launch()
                return
            except ServiceUnavailable as exc:
                # Another program took one of the free ports between our check and the bind.
                if attempt + 1 == attempts or "in use" not in str(exc):
                    raise
                self.port, self.ssl_port = free_ports(2)
                self.config_path.write_text(config_text(self, *mail_owner()))

    def stop(self) -> None:
        """Shut down as the system would (SIGTERM to every process); the mail stays.

        Can take up to a second: Dovecot's master may wait that long for its children.
        """
        process = self._process
        if process is None:
            return
        # SIGTERM to the master alone leaves the imap processes serving their clients.
        _signal_group(process.pid, signal.SIGTERM)
        _wait_exited(process.pid, timeout=5.0)
        # Anything left goes now, while the exited master still holds the group's id.
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        self._process = None
        wait_until_closed(self.host, (self.port, self.ssl_port))

    def kill(self) -> None:
        """Vanish at once: SIGKILL to the master and every child, open sessions included."""
        process = self._process
        if process is None:
            return
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        self._process = None
        wait_until_closed(self.host, (self.port, self.ssl_port))

    def kill_sessions(self) -> list[int]:
        """SIGKILL every `imap` process of this server (one per open session), by pid, as
        a crash of the session would; the server goes on. The pids killed."""
        process = self._process
        if process is None:
            return []
        killed: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            if comm == "imap" and int(fields[2]) == process.pid:  # its process group
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)
                    killed.append(int(entry.name))
        return killed

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """Killed for the block and started again after it, whatever the block did, so a
        failing test leaves the session's server running for the next one."""
        self.kill()
        try:
            yield
        finally:
            self.start()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the directory with the config, the log and the mail."""
        try:
            self.kill()  # nothing to keep, so no need to wait for a clean shutdown
        finally:
            forget_server(self)
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)
                self._directory = None

    def _prepare(self) -> None:
        # Not pytest's tmp_path: that is 0700 root, and the mail processes run as `nobody`.
        directory = Path(tempfile.mkdtemp(prefix="intake-dovecot-"))
        directory.chmod(0o711)
        self._directory = directory
        remember_server(self)
        for name in ("run", "state"):
            (directory / name).mkdir()
        mail = directory / "mail"
        mail.mkdir()
        uid, gid = mail_owner()
        if os.geteuid() == 0:
            os.chown(mail, uid, gid)
        self_signed_cert(directory)
        (directory / "server.key").chmod(0o600)
        users = directory / "users"
        users.write_text(
            f"{self.user}:{{PLAIN}}{self.password}::::::\n"
            f"{SECOND_USER}:{{PLAIN}}{SECOND_PASSWORD}::::::\n"
        )
        users.chmod(0o644)
        self.port, self.ssl_port = free_ports(2)
        self.config_path.write_text(config_text(self, uid, gid))

    def _launch(self) -> None:
        assert self.binary is not None
        # After a kill the master's pid file is left behind; a master we reaped is not
        # running, and a stale file must not make Dovecot think it is.
        (self.directory / "run" / "master.pid").unlink(missing_ok=True)
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with (self.directory / "dovecot.out").open("wb") as out:
            process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, for kill()
            )
        self._process = process
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if _wait_exited(process.pid, timeout=0):
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
                self._process = None
                raise ServiceUnavailable(
                    f"Dovecot exited with status {process.returncode} at start: "
                    + self._startup_output(log_start)
                )
            if _imap_greets(self.host, self.port) and port_open(self.host, self.ssl_port):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceUnavailable(
                    f"Dovecot did not answer on {self.host}:{self.port} within "
                    f"{STARTUP_TIMEOUT:.0f} s: " + self._startup_output(log_start)
                )
            time.sleep(0.01)

    def as_user(self, user: str = SECOND_USER, password: str = SECOND_PASSWORD) -> Dovecot:
        """The same server, its helpers (append, uids, clear, ...) as another user."""
        other = copy.copy(self)
        other.user, other.password = user, password
        return other

    # -- clients

    def ssl_context(self) -> ssl.SSLContext:
        return client_context(self.cafile)

    def connect(
        self, security: Security = "plain", *, login: bool = True, timeout: float = 5.0
    ) -> IMAPClient:
        """A new imapclient connection, logged in unless login=False. The caller logs out."""
        if security == "ssl":
            client = IMAPClient(
                self.host,
                self.ssl_port,
                ssl=True,
                ssl_context=self.ssl_context(),
                timeout=timeout,
            )
        else:
            # imapclient defaults to ssl=True; the plain port needs it off.
            client = IMAPClient(self.host, self.port, ssl=False, timeout=timeout)
            if security == "starttls":
                client.starttls(self.ssl_context())
        if login:
            client.login(self.user, self.password)
        return client

    @contextlib.contextmanager
    def session(self) -> Iterator[IMAPClient]:
        """A logged-in connection on the plain port, logged out afterwards."""
        client = self.connect()
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    # -- mailbox helpers

    def append(self, raw: bytes, folder: str = "INBOX", flags: Iterable[str | bytes] = ()) -> int:
        """Store a message as a mail client would; the UID it got."""
        with self.session() as client:
            response = client.append(folder, raw, flags=tuple(flags))
        match = re.search(rb"\[APPENDUID \d+ (\d+)\]", response)
        if match is None:
            raise RuntimeError(f"no APPENDUID in the answer to APPEND: {response!r}")
        return int(match.group(1))

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.session() as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def flags(self, uid: int, folder: str = "INBOX") -> frozenset[str]:
        """The message's flags, e.g. {"\\Seen", "\\Flagged"}.

        Without \\Recent, which only says which session saw the message first.
        """
        with self.session() as client:
            client.select_folder(folder, readonly=True)
            found = client.fetch([uid], ["FLAGS"])
        if uid not in found:
            raise LookupError(f"no message with UID {uid} in {folder}")
        return frozenset(_text(flag) for flag in found[uid][b"FLAGS"]) - {"\\Recent"}

    def fetch(self, uid: int, folder: str = "INBOX") -> bytes:
        """The raw message, read with BODY.PEEK[] so that it stays unseen."""
        with self.session() as client:
            client.select_folder(folder, readonly=True)
            found = client.fetch([uid], ["BODY.PEEK[]"])
        if uid not in found:
            raise LookupError(f"no message with UID {uid} in {folder}")
        return cast(bytes, found[uid][b"BODY[]"])

    def folders(self) -> list[str]:
        with self.session() as client:
            return sorted(name for _flags, _delimiter, name in client.list_folders())

    def message_count(self, folder: str = "INBOX") -> int:
        with self.session() as client:
            return int(client.folder_status(folder, ["MESSAGES"])[b"MESSAGES"])

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.session() as client:
            return int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def create_folder(self, name: str) -> None:
        with self.session() as client:
            client.create_folder(name)

    def reset_uidvalidity(self, folder: str = "INBOX") -> int:
        """Give the folder a new UIDVALIDITY, keeping its messages, UIDs and flags.

        What a client sees when a server rebuilds or restores a mailbox. Returns the new value.
        """
        before = self.uidvalidity(folder)
        after = before + 1 if before < 0xFFFFFFFF else 1
        doveadm = find_program("doveadm")
        if doveadm is None:
            raise ServiceUnavailable("doveadm (Debian: dovecot-core) is not installed")
        result = subprocess.run(
            [
                doveadm,
                "-c",
                str(self.config_path),
                "mailbox",
                "update",
                "--uid-validity",
                str(after),
                "-u",
                self.user,
                folder,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"doveadm mailbox update failed: {result.stderr.strip()}")
        seen = self.uidvalidity(folder)
        if seen != after:
            raise RuntimeError(f"UIDVALIDITY of {folder} is {seen} after setting it to {after}")
        return after

    def clear(self) -> None:
        """Empty INBOX and remove every other folder and subscription."""
        with self.session() as client:
            listed = client.list_folders()
            # Children before their parents; Dovecot will not delete a folder with children.
            for flags, _delimiter, name in sorted(
                listed, key=lambda item: _depth(item[2], item[1]), reverse=True
            ):
                if name.upper() == "INBOX" or b"\\NonExistent" in flags:
                    continue
                try:
                    client.delete_folder(name)
                except IMAPClient.Error as exc:
                    # A parent that existed only through its children went with them.
                    if "NONEXISTENT" not in str(exc):
                        raise
            for _flags, _delimiter, name in client.list_sub_folders():
                client.unsubscribe_folder(name)
            client.select_folder("INBOX")
            uids = client.search("ALL")
            if uids:
                client.delete_messages(uids)
                client.expunge()
            client.close_folder()


def _depth(name: str, delimiter: bytes | None) -> int:
    return name.count(delimiter.decode()) if delimiter else 0


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _imap_greets(host: str, port: int) -> bool:
    """The login process answers with `* OK` (the master listens before it can)."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


def _wait_exited(pid: int, timeout: float) -> bool:
    """Wait until the child has exited, without reaping it (so its group id stays ours)."""
    deadline = time.monotonic() + timeout
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
