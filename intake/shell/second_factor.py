"""A second factor for local logins: an authenticator app (TOTP, RFC 6238, with `pyotp`)
and recovery codes, and the coordinator's rule that every login needs one.

Every use is decided by the database, never by a read followed by a write:
- a code opens one login only: the step it belongs to must be later than the last step
  used (`UPDATE ... WHERE last_step < :step`), so two logins with one code give one login;
- a recovery code is used once (`UPDATE ... WHERE used_at IS NULL`);
- enrolment is confirmed once (`UPDATE ... WHERE confirmed_at IS NULL`).

The secret is shown once, as a QR code (`segno`, an inline SVG: nothing is fetched) and as
text, while the enrolment is pending; once confirmed it is never shown again. In the
database it is sealed (`cryptography`'s Fernet, under a key derived from the app's
SECRET_KEY with HKDF), so a copy of the database or a backup holds no second factor.
INTAKE_SECRET_KEY_FALLBACKS lets a new SECRET_KEY come in: a secret sealed under an old
key still opens, and is sealed again under the new one at its next use. A secret stored
before sealing came in is read as it is and sealed at its next use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from datetime import datetime

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from intake.core.models import LoginPolicy, RecoveryCode, SecondFactor, User
from intake.shell.access import Action, Actor, actor_of, record
from intake.shell.sessions import end_all_sessions

ISSUER = "Helpdesk intake"
RECOVERY_CODES = 10
# Codes of the step before and after this one count too: a phone's clock may be a little
# off, and typing a code takes a few seconds.
DRIFT_STEPS = 1
_POLICY_ID = 1
SEALED = "fernet:"

log = logging.getLogger(__name__)


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _code_hash(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


def normalise(code: str) -> str:
    """What a colleague types, as compared: no spaces or dashes, lower case."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


# --- the secret, sealed -----------------------------------------------------------------


def _fernet(key: str | bytes) -> Fernet:
    raw = key.encode() if isinstance(key, str) else key
    derived = HKDF(
        algorithm=SHA256(), length=32, salt=None, info=b"helpdesk-intake second factor"
    ).derive(raw)
    return Fernet(base64.urlsafe_b64encode(derived))


def _keys() -> list[Fernet]:
    """The current key first, then the fallbacks, newest first."""
    config = current_app.config
    fallbacks = config.get("SECRET_KEY_FALLBACKS") or ()
    return [_fernet(k) for k in (config["SECRET_KEY"], *fallbacks)]


def seal(secret: str) -> str:
    return SEALED + _keys()[0].encrypt(secret.encode()).decode()


def _unsealed(row: SecondFactor) -> str | None:
    """The row's secret; sealed again under the current key when it was not. None when no
    key opens it (SECRET_KEY changed without the old one among the fallbacks)."""
    stored = row.secret
    if not stored.startswith(SEALED):
        row.secret = seal(stored)  # stored before sealing came in
        return stored
    token = stored[len(SEALED) :].encode()
    keys = _keys()
    try:
        return keys[0].decrypt(token).decode()
    except InvalidToken:
        pass
    try:
        secret = MultiFernet(keys).decrypt(token).decode()
    except InvalidToken:
        log.error(
            "the second factor of login %s cannot be opened: INTAKE_SECRET_KEY changed and"
            " the old key is not in INTAKE_SECRET_KEY_FALLBACKS; the colleague can log in"
            " with a recovery code, or `intake users reset-second-factor` lets them enrol"
            " again",
            row.user_id,
        )
        return None
    row.secret = seal(secret)
    return secret


# --- enrolment --------------------------------------------------------------------------


def has_second_factor(session: Session, user_id: int) -> bool:
    row = session.get(SecondFactor, user_id)
    return row is not None and row.confirmed_at is not None


def pending_secret(session: Session, user: User, now: datetime) -> str | None:
    """The secret to show while enrolling (made the first time); None once confirmed."""
    row = session.get(SecondFactor, user.id)
    if row is None:
        try:  # the page opened twice at once: the first secret made stands
            with session.begin_nested():
                secret = seal(pyotp.random_base32())
                row = SecondFactor(user_id=user.id, secret=secret, created_at=now)
                session.add(row)
        except IntegrityError:
            row = session.get(SecondFactor, user.id, populate_existing=True)
            assert row is not None  # the other request's row, which made ours fail
    return _unsealed(row) if row.confirmed_at is None else None


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of `uri` as inline SVG markup (no script, no external reference)."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, border=2, title=ISSUER))


def _matching_step(row: SecondFactor, code: str, now: datetime) -> int | None:
    secret = _unsealed(row)
    if secret is None:
        return None
    totp = pyotp.TOTP(secret)
    typed = normalise(code)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), typed):
            return step
    return None


def confirm(session: Session, user_id: int, code: str, now: datetime) -> list[str] | None:
    """Confirm a pending enrolment with a code from the app: the recovery codes, to be
    shown once; None when the code is wrong or the enrolment was confirmed already."""
    row = session.get(SecondFactor, user_id)
    if row is None or row.confirmed_at is not None:
        return None
    step = _matching_step(row, code, now)
    if step is None:
        return None
    result = session.execute(
        update(SecondFactor)
        .where(SecondFactor.user_id == user_id, SecondFactor.confirmed_at.is_(None))
        .values(confirmed_at=now, last_step=step)
    )
    if _rowcount(result) != 1:
        return None
    user = session.get(User, user_id)
    if user is not None:
        record(session, Action.SECOND_FACTOR_SET, actor=actor_of(user), subject=user, now=now)
    return new_recovery_codes(session, user_id)


def new_recovery_codes(session: Session, user_id: int) -> list[str]:
    """Ten fresh recovery codes ("k7m2-9xqp-..."), replacing any earlier ones."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(6)
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    session.add_all(RecoveryCode(code_hash=_code_hash(c), user_id=user_id) for c in codes)
    return codes


def remove(session: Session, user: User, *, actor: Actor, now: datetime) -> bool:
    """Forget a login's app and recovery codes (a lost phone): it enrols again, and its
    open sessions end (whoever has the phone is logged in no longer)."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    result = session.execute(delete(SecondFactor).where(SecondFactor.user_id == user.id))
    if _rowcount(result) == 0:
        return False
    ended = end_all_sessions(session, user.id, now)
    record(
        session, Action.SECOND_FACTOR_REMOVED, actor=actor, subject=user, now=now,
        sessions_ended=ended,
    )  # fmt: skip
    return True


# --- logging in -------------------------------------------------------------------------


def verify(session: Session, user_id: int, code: str, now: datetime) -> bool:
    """A code from the app (once per step) or an unused recovery code (once ever)."""
    row = session.get(SecondFactor, user_id)
    if row is None or row.confirmed_at is None:
        return False
    step = _matching_step(row, code, now)
    if step is not None:
        result = session.execute(
            update(SecondFactor)
            .where(
                SecondFactor.user_id == user_id,
                SecondFactor.confirmed_at.is_not(None),
                or_(SecondFactor.last_step.is_(None), SecondFactor.last_step < step),
            )
            .values(last_step=step)
        )
        return _rowcount(result) == 1
    result = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _code_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return _rowcount(result) == 1


def recovery_codes_left(session: Session, user_id: int) -> int:
    rows = session.scalars(
        select(RecoveryCode.code_hash).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
        )
    ).all()
    return len(rows)


# --- the coordinator's rule -------------------------------------------------------------


def required(session: Session) -> bool:
    policy = session.get(LoginPolicy, _POLICY_ID)
    return policy is not None and policy.second_factor_required


def set_required(session: Session, value: bool, by: User, now: datetime) -> int:
    """Require a second factor for every login (or not). Switching it on ends the open
    sessions of every login without one, so nobody stays in on a password alone; the
    number of sessions ended."""
    policy = session.get(LoginPolicy, _POLICY_ID)
    if policy is None:
        try:  # two coordinators setting it for the first time at once: one row
            with session.begin_nested():
                session.add(LoginPolicy(id=_POLICY_ID, changed_at=now, changed_by=by.email))
        except IntegrityError:
            pass
        policy = session.get(LoginPolicy, _POLICY_ID, populate_existing=True)
        assert policy is not None
    policy.second_factor_required = value
    policy.changed_at = now
    policy.changed_by = by.email
    session.flush()
    ended = 0
    if value:
        confirmed = select(SecondFactor.user_id).where(SecondFactor.confirmed_at.is_not(None))
        without = session.scalars(select(User.id).where(User.id.not_in(confirmed))).all()
        ended = sum(end_all_sessions(session, user_id, now) for user_id in without)
    record(
        session, Action.SECOND_FACTOR_RULE, actor=actor_of(by), subject=by, now=now,
        required="yes" if value else "no", sessions_ended=ended,
    )  # fmt: skip
    return ended
