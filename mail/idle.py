"""IMAP IDLE (RFC 2177): a connection per mailbox that waits for new mail and wakes its poll.

The periodic poll finds every message sooner or later; an IDLE connection makes it sooner.
A watcher signs in with the poller's own `connect()` (a password or OAuth2), selects the
folder read-only and waits. When the server says a message arrived (EXISTS, RECENT) the
watcher calls `wake`: that mailbox's ordinary poll, on a connection of its own, under the
same per-mailbox lock as the scheduled poll, so the two never log a message twice. The
watcher itself never fetches, flags or moves anything.

IDLE is re-issued well before the 29 minutes after which a server may drop it, and a
connection that drops, or a sign-in that fails, is tried again after a pause that doubles
up to a cap. A connection that had been watching for STABLE_SECONDS when it dropped starts
the pause again from the first: a drop after hours of IDLE is news, not the next of a run
of failures, and waits a second, not the five minutes an earlier outage grew it to. A
server without IDLE is left to the poll, and asked again by a later `sync()` after a pause
that doubles from NO_IDLE_PAUSE up to NO_IDLE_MAX_PAUSE (a server may gain IDLE, e.g. after
an upgrade, or have refused it for a while). One line is logged per change of state
(watching, dropped, no IDLE), never one per retry.

`IdleWatchers` is the supervised set the worker owns: `sync()` starts a watcher for each
mailbox it is given and stops the others; `stop()` ends every thread within a few seconds
(each waits in `idle_check` with a short timeout and looks at its stop event in between).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from imapclient import IMAPClient

from .accounts import ImapAccount
from .mailboxes import failure_text
from .poller import ImapSettings, connect

__all__ = ["REISSUE_SECONDS", "IdleDropped", "IdleWatcher", "IdleWatchers"]

log = logging.getLogger(__name__)

REISSUE_SECONDS = 25 * 60.0  # RFC 2177: servers may end an IDLE after 29 minutes
CHECK_SECONDS = 2.0  # how long one wait lasts: the longest a stop waits for a watcher
FIRST_PAUSE = 1.0
MAX_PAUSE = 300.0
STABLE_SECONDS = 60.0  # watched this long, a connection's drop starts again at FIRST_PAUSE
NO_IDLE_PAUSE = 15 * 60.0  # a mailbox without IDLE is asked again after this, then twice that
NO_IDLE_MAX_PAUSE = 12 * 3600.0
NEWS = (b"EXISTS", b"RECENT")
# Polls woken at once, in one process. Each poll holds two database connections (its lock
# and its session): twenty mailboxes woken together would empty the pool (5 + 10 overflow)
# and every poll would wait for a connection another holds. The rest wait their turn.
MAX_WAKES = 4


class IdleDropped(ConnectionError):
    """The server ended the IDLE connection (BYE, or the socket closed)."""


@dataclass
class IdleWatcher:
    """Waits on one mailbox; `wake()` polls it and says False when it could not (the
    mailbox was busy with another poll), so the watcher tries again a moment later."""

    name: str
    settings: ImapSettings
    wake: Callable[[], bool]
    stopping: threading.Event = field(default_factory=threading.Event)
    connector: Callable[[ImapSettings], IMAPClient] = connect
    reissue_seconds: float = REISSUE_SECONDS
    check_seconds: float = CHECK_SECONDS
    first_pause: float = FIRST_PAUSE
    max_pause: float = MAX_PAUSE
    stable_seconds: float = STABLE_SECONDS
    clock: Callable[[], float] = time.monotonic
    state: str = "starting"
    connections: int = 0  # IDLE sessions opened so far (a reconnect adds one)
    # `clock()` when this session's IDLE began; None while it signs in (or failed to).
    _watching_since: float | None = field(default=None, init=False, repr=False)

    def run(self) -> None:
        """Watch until stopped: connect, idle, and after a drop wait and connect again."""
        pause = self.first_pause
        while not self.stopping.is_set():
            try:
                supported = self._watch()
            except Exception as exc:
                if self._was_stable():  # it worked for a while: a new run of pauses
                    pause = self.first_pause
                self._now(
                    "dropped",
                    "IDLE on %s %s (%s); connecting again with a growing pause (the poll "
                    "goes on meanwhile)",
                    self.name,
                    "lost" if self.state == "watching" else "cannot connect",
                    failure_text(exc),
                )
                self.stopping.wait(pause)
                pause = min(pause * 2, self.max_pause)
                continue
            if not supported:
                return
            pause = self.first_pause

    def _was_stable(self) -> bool:
        """Whether the session that just ended had watched for `stable_seconds`."""
        since = self._watching_since
        return since is not None and self.clock() - since >= self.stable_seconds

    def _watch(self) -> bool:
        """One IDLE session, until stopped (True) or dropped (raises); False: no IDLE."""
        self._watching_since = None
        client = self.connector(self.settings)
        try:
            if not client.has_capability("IDLE"):
                self._now(
                    "no-idle",
                    "%s offers no IMAP IDLE: its mail waits for the poll",
                    self.name,
                )
                return False
            client.select_folder(self.settings.folder, readonly=True)
            client.idle()
            self.connections += 1
            self._watching_since = started = self.clock()
            self._now("watching", "IDLE on %s: new mail is logged as it arrives", self.name)
            pending = True  # mail that came while we were away is polled at once
            while not self.stopping.is_set():
                if pending:
                    pending = not self._wake()
                waited = self.clock()
                responses = client.idle_check(timeout=self.check_seconds)
                early = not responses and self.clock() - waited < self.check_seconds / 2
                # Back early with nothing: the socket may have closed. Ask the server.
                if early or self.clock() - started >= self.reissue_seconds:
                    responses = [*responses, *self._reissue(client)]
                    started = self.clock()
                if any(r and r[0] == b"BYE" for r in responses):
                    raise IdleDropped(f"the server said goodbye: {responses}")
                if any(len(r) > 1 and r[1] in NEWS for r in responses):
                    pending = True
            return True
        finally:
            _leave(client)

    def _reissue(self, client: IMAPClient) -> list[Any]:
        """DONE and IDLE again: the server sees a live client; a dead one raises here. What
        the server said in between (a new message, say) is returned, not lost."""
        _text, responses = client.idle_done()
        client.idle()
        return list(responses)

    def _wake(self) -> bool:
        try:
            return self.wake()
        except Exception as exc:
            # The scheduled poll reports a mailbox that cannot be read; here it only waits.
            # Said at WARNING all the same: a wake that fails for our own reasons (the
            # database) would otherwise leave the mail to the next poll without a word.
            log.warning("the poll woken by IDLE on %s failed: %s", self.name, exc)
            return True

    def _now(self, state: str, message: str, *args: object) -> None:
        if state == self.state:
            return
        level = logging.WARNING if state == "dropped" else logging.INFO
        if state == "watching" and self.state == "dropped":
            message, args = "IDLE on %s works again", (self.name,)
        self.state = state
        log.log(level, message, *args)


def _leave(client: IMAPClient) -> None:
    """End the IDLE and log out; when the connection is already gone, close the socket."""
    with contextlib.suppress(Exception):
        client.idle_done()
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):
            client.shutdown()


@dataclass
class _Running:
    watcher: IdleWatcher
    thread: threading.Thread
    pause: float = 0.0  # before the next try, once the watcher ended for want of IDLE
    retry_at: float | None = None  # `clock()` from which sync() starts it again


class IdleWatchers:
    """The worker's set of watcher threads, one per mailbox, each stopped and joined."""

    def __init__(
        self,
        wake_for: Callable[[ImapAccount], Callable[[], bool]],
        *,
        connector: Callable[[ImapSettings], IMAPClient] = connect,
        reissue_seconds: float = REISSUE_SECONDS,
        check_seconds: float = CHECK_SECONDS,
        first_pause: float = FIRST_PAUSE,
        max_pause: float = MAX_PAUSE,
        stable_seconds: float = STABLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_wakes: int = MAX_WAKES,
        no_idle_pause: float = NO_IDLE_PAUSE,
        no_idle_max_pause: float = NO_IDLE_MAX_PAUSE,
    ) -> None:
        self.wake_for = wake_for
        self.connector = connector
        self.reissue_seconds = reissue_seconds
        self.check_seconds = check_seconds
        self.first_pause = first_pause
        self.max_pause = max_pause
        self.stable_seconds = stable_seconds
        self.clock = clock
        self.no_idle_pause = no_idle_pause
        self.no_idle_max_pause = no_idle_max_pause
        self._running: dict[str, _Running] = {}
        self._retired: list[_Running] = []  # told to stop by sync(); joined by stop()
        self._lock = threading.Lock()
        self._stopped = False
        self._wakes = threading.BoundedSemaphore(max_wakes)

    @property
    def watchers(self) -> dict[str, IdleWatcher]:
        with self._lock:
            return {key: running.watcher for key, running in self._running.items()}

    def sync(self, accounts: Iterable[ImapAccount]) -> None:
        """Watch exactly these mailboxes: start the new, stop the gone and the changed."""
        wanted = {a.key: a for a in accounts if a.settings is not None}
        with self._lock:
            if self._stopped:
                return
            for key in list(self._running):
                account = wanted.get(key)
                if account is None or account.settings != self._running[key].watcher.settings:
                    self._end(self._running.pop(key))
            for key, account in wanted.items():
                running = self._running.get(key)
                if running is None:
                    self._running[key] = self._start(account)
                elif not running.thread.is_alive():
                    self._running[key] = self._again(running, account)
                elif running.watcher.state == "watching":
                    running.pause = 0.0  # IDLE works: a later refusal starts from the first pause

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every watcher and wait for its thread (each logs out as it ends)."""
        with self._lock:
            self._stopped = True
            running = [*self._running.values(), *self._retired]
            self._running, self._retired = {}, []
        for each in running:
            each.watcher.stopping.set()
        deadline = time.monotonic() + timeout
        for each in running:
            each.thread.join(max(0.0, deadline - time.monotonic()))
            if each.thread.is_alive():
                log.warning("IDLE watcher of %s did not stop in time", each.watcher.name)

    def _again(self, ended: _Running, account: ImapAccount) -> _Running:
        """A watcher that ended (its server offered no IDLE): started again once its pause
        is over, the pause doubling each time; until then it stays as it is."""
        now = self.clock()
        if ended.retry_at is None:
            ended.pause = min(ended.pause * 2 or self.no_idle_pause, self.no_idle_max_pause)
            ended.retry_at = now + ended.pause
        if now < ended.retry_at:
            return ended
        started = self._start(account, state=ended.watcher.state)
        started.pause = ended.pause
        return started

    def _start(self, account: ImapAccount, state: str = "starting") -> _Running:
        assert account.settings is not None
        watcher = IdleWatcher(
            name=account.name,
            settings=account.settings,
            wake=self.in_turn(self.wake_for(account)),
            connector=self.connector,
            reissue_seconds=self.reissue_seconds,
            check_seconds=self.check_seconds,
            first_pause=self.first_pause,
            max_pause=self.max_pause,
            stable_seconds=self.stable_seconds,
            clock=self.clock,
            state=state,  # a watcher started again logs only what changed
        )
        # A daemon, so a server that never answers cannot hold up the worker's exit; it
        # is still stopped and joined by stop().
        thread = threading.Thread(target=watcher.run, name=f"idle:{account.key}", daemon=True)
        thread.start()
        return _Running(watcher, thread)

    def in_turn(self, wake: Callable[[], bool]) -> Callable[[], bool]:
        """`wake`, run when one of the `max_wakes` places is free; False (try again at the
        next check) when none frees within a check, so a watcher still sees its stop."""

        def bounded() -> bool:
            if not self._wakes.acquire(timeout=self.check_seconds):
                return False
            try:
                return wake()
            finally:
                self._wakes.release()

        return bounded

    def _end(self, running: _Running) -> None:
        """Stop one watcher without waiting (sync runs on the scheduler): its thread ends
        within `check_seconds` and is joined by stop(); ended ones are let go here."""
        running.watcher.stopping.set()
        self._retired = [r for r in self._retired if r.thread.is_alive()] + [running]
