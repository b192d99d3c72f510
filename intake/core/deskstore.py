"""The desk definition in the database: stored as versions, read through a cache.

Every request asks only for the newest version's id (one small query); the parsed `Desk`
is rebuilt when that id changes, so an edit from another process counts for the next call.
The last desk seen is also kept in memory for the paths that must work without a
database (the Fallback URL, and the safe answer when the database fails).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from routing.desk import Desk

from .definition import desk_from_document, desk_to_document
from .errors import NoDeskError
from .models import DeskDefinition

EXTENSION = "intake.desk"


@dataclass(frozen=True)
class _Version:
    id: int
    desk: Desk


class DeskCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version: _Version | None = None

    def desk(self, session: Session) -> Desk:
        latest = session.scalar(
            select(DeskDefinition.id).order_by(DeskDefinition.id.desc()).limit(1)
        )
        return self.desk_at(session, latest)

    def desk_at(self, session: Session, latest: int | None) -> Desk:
        """The desk of version `latest` (the newest id, read by the caller)."""
        if latest is None:
            raise NoDeskError()
        version = self.version
        if version is not None and version.id == latest:
            return version.desk
        with self._lock:
            row = session.get(DeskDefinition, latest)
            if row is None:  # removed between the two queries
                raise NoDeskError()
            desk = desk_from_document(json.loads(row.document), source="the stored desk")
            self.version = _Version(latest, desk)
            return desk


def _cache(app: Flask | None = None) -> DeskCache:
    cache: DeskCache = (app or current_app).extensions[EXTENSION]
    return cache


def current_desk(session: Session, app: Flask | None = None) -> Desk:
    """The desk in force now; raises NoDeskError when none was ever loaded."""
    return _cache(app).desk(session)


def desk_version(session: Session, version: int | None, app: Flask | None = None) -> Desk:
    """The desk of a version id the caller already read (see `contactlog.call_snapshot`)."""
    return _cache(app).desk_at(session, version)


def last_known_desk(app: Flask | None = None) -> Desk | None:
    """The desk seen last by this process, without touching the database."""
    version = _cache(app).version
    return version.desk if version else None


def canonical_document(desk: Desk) -> tuple[str, str]:
    """The stored form of a desk and its SHA-256: the same desk always gives the same text."""
    text = json.dumps(desk_to_document(desk), sort_keys=True, ensure_ascii=False)
    return text, hashlib.sha256(text.encode()).hexdigest()


def store_desk(session: Session, desk: Desk, *, source: str, at: datetime) -> bool:
    """Add `desk` as the newest version unless it equals the one in force. True if added."""
    document, digest = canonical_document(desk)
    newest = session.scalars(
        select(DeskDefinition).order_by(DeskDefinition.id.desc()).limit(1)
    ).first()
    if newest is not None and newest.sha256 == digest:
        return False
    session.add(DeskDefinition(sha256=digest, document=document, loaded_at=at, source=source))
    return True


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = DeskCache()
