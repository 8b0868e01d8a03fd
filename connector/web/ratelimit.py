"""The admin sign-in rate limit (flask-limiter): more than LIMIT failed sign-ins (a wrong token
at the login form or as a Bearer) from one address within a minute are answered 429 with
Retry-After, counted in the store so that every web process (gunicorn runs several) sees the
same count.

Each credential check takes an entry in the window before the token is compared, and gives it
back when the token was right: only failures count, and parallel guesses cannot slip past the
count. Once the window is full every credential check from that address is refused, a right
token too (answering it would tell a guesser which token was right), and refused on a read
alone: what is over the limit writes nothing to the store."""

from __future__ import annotations

import functools
import hashlib
import math
import time
from typing import cast

from flask import Flask, current_app, g, has_request_context, jsonify, render_template, request
from flask_limiter import Limiter, RateLimitExceeded, RequestLimit
from flask_limiter.util import get_remote_address
from limits.storage import MovingWindowSupport, Storage
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from connector.outbox.engine import reading
from connector.outbox.tables import admin_failures

LIMIT = "10 per minute"
SCHEME = "connector-store"


class StoreStorage(Storage, MovingWindowSupport):
    """A `limits` storage in the connector's store (moving window: one row per entry)."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, engine=None, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.engine = engine

    @property
    def base_exceptions(self):
        return SQLAlchemyError

    # -- the moving window ---------------------------------------------------------------------
    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        at = time.time()
        # An address over the limit is refused on a read: its further guesses (free to send,
        # and what a guesser sends most) must not each take the store's writer.
        if self._taken(key, at, expiry) + amount > limit:
            return False
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # one counter at a time per key (SQLite: the write gate)
                lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (lock,))
            conn.execute(delete(admin_failures).where(admin_failures.c.expires_at <= at))
            taken = conn.execute(
                select(func.count()).where(
                    admin_failures.c.limit_key == key, admin_failures.c.at > at - expiry
                )
            ).scalar()
            if taken + amount > limit:
                return False
            ids = [
                conn.execute(
                    insert(admin_failures).values(limit_key=key, at=at, expires_at=at + expiry)
                ).inserted_primary_key[0]
                for _ in range(amount)
            ]
        if has_request_context():  # the request's after_request hook gives them back on success
            g.setdefault("limit_entries", []).extend(ids)
        return True

    def _taken(self, key: str, at: float, expiry: int) -> int:
        with reading(self.engine) as conn:
            return conn.execute(
                select(func.count()).where(
                    admin_failures.c.limit_key == key, admin_failures.c.at > at - expiry
                )
            ).scalar()

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        at = time.time()
        with reading(self.engine) as conn:
            oldest, taken = conn.execute(
                select(func.min(admin_failures.c.at), func.count()).where(
                    admin_failures.c.limit_key == key, admin_failures.c.at > at - expiry
                )
            ).one()
        return (oldest, taken) if taken else (at, 0)

    def give_back(self, ids: list[int]) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(delete(admin_failures).where(admin_failures.c.id.in_(ids)))

    # -- the rest of the Storage interface (fixed windows: a count of the same rows) -----------
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        at = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                insert(admin_failures), [{"limit_key": key, "at": at, "expires_at": at + expiry}] * amount
            )
        return self.get(key)

    def get(self, key: str) -> int:
        with reading(self.engine) as conn:
            return conn.execute(
                select(func.count()).where(
                    admin_failures.c.limit_key == key, admin_failures.c.expires_at > time.time()
                )
            ).scalar()

    def get_expiry(self, key: str) -> float:
        with reading(self.engine) as conn:
            latest = conn.execute(
                select(func.max(admin_failures.c.expires_at)).where(admin_failures.c.limit_key == key)
            ).scalar()
        return latest or time.time()

    def check(self) -> bool:
        with reading(self.engine) as conn:
            conn.execute(select(func.count()).select_from(admin_failures))
        return True

    def reset(self) -> int | None:
        with self.engine.begin() as conn:
            return conn.execute(delete(admin_failures)).rowcount

    def clear(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(admin_failures).where(admin_failures.c.limit_key == key))


def checks_a_credential() -> bool:
    """The requests the limit counts: the login form, and admin routes carrying a Bearer."""
    if request.endpoint == "live.login_post":
        return True
    return request.blueprint in ("live", "admin_api") and "Authorization" in request.headers


def _too_many(limit: RequestLimit):
    retry_after = max(1, math.ceil(limit.window.reset_time - time.time()))
    message = f"too many failed sign-ins from your address: try again in {retry_after} s"
    if request.blueprint == "live":
        template = "live/login.html" if request.endpoint == "live.login_post" else "live/refused.html"
        response = current_app.make_response(
            (render_template(template, message=message, error=message, next="/live", disabled=False), 429)
        )
    else:
        response = jsonify(error="too many requests", message=message)
        response.status_code = 429
    response.headers["Retry-After"] = str(retry_after)
    return response


def install(app: Flask, engine) -> Limiter:
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        storage_uri=f"{SCHEME}://",
        storage_options={"engine": engine},
        strategy="moving-window",
        application_limits=[LIMIT],
        application_limits_exempt_when=lambda: not checks_a_credential(),
        on_breach=_too_many,
    )

    _only_where_credentials_are_checked(app, limiter)

    def _count_only_failures(response):
        entries = g.pop("limit_entries", None)
        if entries and response.status_code != 401:
            cast(StoreStorage, limiter.storage).give_back(entries)
        return response

    for blueprint in GUARDED:
        app.after_request_funcs.setdefault(blueprint, []).append(_count_only_failures)

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(exc: RateLimitExceeded):
        return exc.get_response()

    return limiter


#: The blueprints whose requests can carry a credential (see checks_a_credential).
GUARDED = ("live", "admin_api")


def _only_where_credentials_are_checked(app: Flask, limiter: Limiter) -> None:
    """flask-limiter hooks every request of the app; its hooks move to the blueprints that
    check credentials, ahead of their own guards, and run only for the requests the limit
    counts, so webhooks (the hot path) do not even call them. Runs before the blueprints are
    registered: their own hooks come after these."""

    def gated(hook):
        @functools.wraps(hook)
        def run(*args):
            if checks_a_credential():
                return hook(*args)
            return args[0] if args else None  # after_request hands the response on (teardown: ignored)

        return run

    # Flask types each hook table by its own kind of function; the moves below keep each hook
    # in the table it came from.
    hooks: tuple[dict, ...] = (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    for hook_lists in hooks:
        funcs = hook_lists.get(None, [])
        ours = [
            hook
            for hook in funcs
            if getattr(hook, "__self__", None) is limiter
            or (isinstance(hook, functools.partial) and hook.args[:1] == (limiter,))
        ]
        funcs[:] = [hook for hook in funcs if hook not in ours]
        for blueprint in GUARDED:
            hook_lists.setdefault(blueprint, []).extend(gated(hook) for hook in ours)
