"""The project's exception types, in one place.

    IntakeError                 something the user can act on; the CLI prints it, exit 1
    ├── ConfigurationError      a setting in the environment is missing or wrong
    ├── NoDeskError             no desk definition loaded yet
    ├── DefinitionError         a desk definition that cannot be used (exit 2)
    ├── SignInError             a mailbox's OAuth2 sign-in refused (provider's own words)
    ├── RecordingRefused        an upload that is not a recording Twilio can play
    └── TransitionNotAllowed    a move in a contact's life its state does not allow

The CLI turns an `IntakeError` into one line on stderr and a non-zero exit; the webhooks
turn any failure into safe TwiML, and a refused transition into the answer that fits the
call as it is. Nothing here is raised for a patient's odd input: that is data to log, not
an error.
"""

from __future__ import annotations

from dataclasses import dataclass


class IntakeError(Exception):
    """Something the user can act on; its message is shown as it is."""

    exit_code = 1


class ConfigurationError(IntakeError):
    """A setting in the environment is missing or wrong."""


class NoDeskError(IntakeError):
    """No desk definition has been loaded into the database yet."""

    def __init__(self) -> None:
        super().__init__("no desk definition loaded yet: run `intake load-config FILE.toml`")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a desk definition, and where it is."""

    where: str  # a path in the definition, e.g. "shift[3].staff"
    message: str
    line: int | None = None  # 1-based line in the source file, when known

    def render(self, source: str) -> str:
        place = f"{source}:{self.line}" if self.line else source
        return (
            f"{place}: {self.where}: {self.message}" if self.where else f"{place}: {self.message}"
        )


class DefinitionError(IntakeError):
    """A desk definition that cannot be used; lists every problem found."""

    exit_code = 2

    def __init__(self, problems: list[Problem], source: str = "<desk definition>") -> None:
        self.problems = problems
        self.source = source
        count = len(problems)
        lines = [f"{source}: {count} problem{'s' if count != 1 else ''}, nothing was loaded:"]
        lines += ["  " + p.render(source) for p in problems]
        super().__init__("\n".join(lines))


class SignInError(IntakeError):
    """A mailbox could not sign in with OAuth2: no token, or a token the server refused.

    An administrator's matter (a revoked secret, a missing permission), so the message names
    the mailbox, the provider and the provider's own error text, and nothing more.
    """

    def __init__(self, provider: str, detail: str, *, mailbox: str = "") -> None:
        self.provider = provider
        self.detail = detail
        self.mailbox = mailbox
        where = f"{mailbox}: " if mailbox else ""
        super().__init__(f"{where}signing in with {provider} failed: {detail}")

    def for_mailbox(self, mailbox: str) -> SignInError:
        """The same error, naming the mailbox (the token providers do not know it)."""
        return SignInError(self.provider, self.detail, mailbox=mailbox)


class RecordingRefused(IntakeError):
    """An uploaded recording that cannot be played to callers, and why.

    `reason` is one word the dashboard turns into the user's language ("not_audio",
    "too_long", ...); the message is the same in English, for the log and the CLI.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class TransitionNotAllowed(IntakeError):
    """A move in a contact's life that its current state does not allow (see `lifecycle`).

    Raised before anything is written: the contact and its timeline are as they were.
    """

    def __init__(self, contact: str, move: str, state: str) -> None:
        self.contact = contact
        self.move = move
        self.state = state
        super().__init__(f"{contact}: cannot {move} {state}")
