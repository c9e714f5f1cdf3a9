"""API tokens (stored hashed), users and project membership, in ``HOME/access.db``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from provenance.access.visibility import Principal
from provenance.errors import AuthError, NotFoundError

TOKEN_PREFIX = "prov_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, admin INTEGER NOT NULL DEFAULT 0, created_ts INTEGER);
CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, user TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
    label TEXT, created_ts INTEGER NOT NULL, last_used_ts INTEGER, revoked_ts INTEGER);
CREATE TABLE IF NOT EXISTS members (project TEXT NOT NULL, user TEXT NOT NULL, PRIMARY KEY (project, user));
"""


class AccessStore:
    """Users, tokens and memberships in ``HOME/access.db``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._touched: dict[str, float] = {}  # token id → when its last use was written

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def create_token(self, user: str, *, admin: bool = False, projects: tuple[str, ...] = (),
                     label: str | None = None) -> tuple[str, str]:
        """A new token for ``user`` (created if new; ``admin`` and ``projects`` are added to it).
        Returns (token id, the token itself: shown once, stored only as its hash)."""
        if not user.strip():
            raise ValueError("a token needs a user name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = secrets.token_hex(6)
        now = int(time.time() * 1000)
        with self._tx() as db:
            db.execute("INSERT INTO users(name, admin, created_ts) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
                       "SET admin = max(admin, excluded.admin)", (user, int(admin), now))
            db.executemany("INSERT OR IGNORE INTO members(project, user) VALUES (?, ?)", [(p, user) for p in projects])
            db.execute("INSERT INTO tokens(id, user, hash, label, created_ts) VALUES (?, ?, ?, ?, ?)",
                       (token_id, user, _hash(token), label, now))
        return token_id, token

    def tokens(self) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT t.id, t.user, t.label, t.created_ts, t.last_used_ts, t.revoked_ts, u.admin, "
            "(SELECT group_concat(project, ',') FROM (SELECT project FROM members m WHERE m.user = t.user "
            "ORDER BY project)) FROM tokens t JOIN users u ON u.name = t.user ORDER BY t.created_ts, t.id").fetchall()
        return [{"id": r[0], "user": r[1], "label": r[2], "created_ts": r[3], "last_used_ts": r[4],
                 "revoked": r[5] is not None, "admin": bool(r[6]), "projects": r[7].split(",") if r[7] else []}
                for r in rows]

    def revoke(self, token_id: str) -> None:
        with self._tx() as db:
            if db.execute("UPDATE tokens SET revoked_ts = ? WHERE id = ? AND revoked_ts IS NULL",
                          (int(time.time() * 1000), token_id)).rowcount == 0:
                raise NotFoundError(f"no active token {token_id!r}")

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthError("missing credentials: send 'Authorization: Bearer <token>'")
        digest = _hash(token)
        row = self._db.execute("SELECT t.id, t.user, t.hash, u.admin FROM tokens t JOIN users u ON u.name = t.user "
                               "WHERE t.hash = ? AND t.revoked_ts IS NULL", (digest,)).fetchone()
        if row is None or not hmac.compare_digest(row[2], digest):
            raise AuthError("invalid or revoked token")
        now = time.monotonic()
        if now - self._touched.get(row[0], -1e9) > 60:  # a write per request would cost more than the query
            self._touched[row[0]] = now
            self._db.execute("UPDATE tokens SET last_used_ts = ? WHERE id = ?", (int(time.time() * 1000), row[0]))
        projects = frozenset(r[0] for r in self._db.execute("SELECT project FROM members WHERE user = ?", (row[1],)))
        return Principal(row[1], bool(row[3]), projects)

    def close(self) -> None:
        self._db.close()
