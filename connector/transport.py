"""The transport under every outbound session (partner calls and token calls alike): one
deadline bounds a whole request (connecting, the answer's headers and its body), bodies over
1 MiB are cut off, redirects are never followed and proxy environment variables never read.

A timeout given to `requests` bounds each socket read, so a server sending a byte now and
then could hold a request for ever. Here every read of the answer waits at most for what is
left of the deadline, and the body is read in chunks against it."""

from __future__ import annotations

import http.client
import io
import threading
import time
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_RESPONSE_BYTES = 1024 * 1024
_CHUNK = 64 * 1024


class ResponseTooLarge(requests.RequestException):
    """The answer's body is over MAX_RESPONSE_BYTES: not read further."""


class _Deadline(threading.local):
    at: float | None = None  # time.monotonic() by which this thread's request must end


_deadline = _Deadline()


class _BodyLimit(threading.local):
    size: int = MAX_RESPONSE_BYTES


_body_limit = _BodyLimit()


@contextmanager
def body_limit(size: int):
    """Answers to requests this thread sends inside the block may be up to `size` bytes (a
    pull source reading pages of reports); everything else keeps MAX_RESPONSE_BYTES."""
    before = _body_limit.size
    _body_limit.size = size
    try:
        yield
    finally:
        _body_limit.size = before


def _too_large(size: int) -> str:
    limit = _body_limit.size
    shown = f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"
    return f"response body over {shown}"


@contextmanager
def deadline(seconds: float):
    """Every request this thread sends inside the block ends within `seconds`; nested
    blocks keep the earlier end (a token call inside a delivery's attempt shares its time)."""
    previous = _deadline.at
    at = time.monotonic() + seconds
    _deadline.at = at if previous is None else min(at, previous)
    try:
        yield _deadline.at
    finally:
        _deadline.at = previous


def time_left(seconds: float) -> float:
    """`seconds`, or less when this thread is inside a deadline that ends sooner."""
    at = _deadline.at
    return seconds if at is None else min(seconds, at - time.monotonic())


class _DeadlineReader(io.RawIOBase):
    """The socket, read with what is left of the deadline as each read's timeout. `holder` is
    the file http.client opened on the socket: held until this closes, it keeps the socket open
    when the connection is closed before its answer is read (an answer with Connection: close)."""

    def __init__(self, sock, at: float, holder):
        super().__init__()
        self._sock, self._at, self._holder = sock, at, holder

    def close(self) -> None:
        if not self.closed:
            self._holder.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's deadline passed")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _Response(http.client.HTTPResponse):
    """Reads status line, headers and body through a _DeadlineReader when a deadline is set."""

    def __init__(self, sock, *args, **kwargs):
        super().__init__(sock, *args, **kwargs)
        at = _deadline.at
        if at is not None:
            self.fp = io.BufferedReader(_DeadlineReader(sock, at, self.fp))


class _DeadlineConnection:
    """Sends the request with what is left of the deadline as its timeout, then reads the
    answer through _Response."""

    response_class = _Response
    sock: Any  # the socket of the urllib3 connection this is mixed into

    def send(self, data):
        at = _deadline.at
        if at is not None and self.sock is not None:
            left = at - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request's deadline passed")
            self.sock.settimeout(left)
        return super().send(data)  # type: ignore[misc]  # HTTPConnection's, after this mixin


# urllib3 types response_class as its own HTTPResponse; ours reads the same socket with a deadline.
class _HTTPConnection(_DeadlineConnection, HTTPConnection):  # type: ignore[misc]
    pass


class _HTTPSConnection(_DeadlineConnection, HTTPSConnection):  # type: ignore[misc]
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class BoundedAdapter(HTTPAdapter):
    """Sends with a total deadline (the `timeout` given, or `default_timeout`) and reads the
    whole body under it, at most MAX_RESPONSE_BYTES. Raises requests.Timeout past the
    deadline and ResponseTooLarge past the size; either way the connection is dropped."""

    def __init__(self, default_timeout: float = 10.0, **kwargs):
        self.default_timeout = default_timeout
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def send(self, request, stream=False, timeout=None, **kwargs):  # type: ignore[override]
        # requests' stubs name more parameters than it passes; this takes them as kwargs.
        if timeout is None:
            timeout = self.default_timeout
        elif isinstance(timeout, tuple):
            timeout = sum(part for part in timeout if part is not None)
        with deadline(timeout) as at:
            left = at - time.monotonic()
            if left <= 0:
                raise requests.ConnectTimeout(
                    "the request's deadline passed before it was sent", request=request
                )
            try:
                response = super().send(request, stream=True, timeout=(left, left), **kwargs)
            except requests.ConnectionError as exc:
                _raise_timeout_past(at, exc, request)
                raise
            try:
                body = _read_body(response, at)
            except BaseException:
                response.close()
                raise
        return _holding(response, body)


def _raise_timeout_past(at: float, exc: Exception, request) -> None:
    """Whatever broke a request once its deadline passed is a timeout (the socket was read
    or written with no time left)."""
    if time.monotonic() >= at and not isinstance(exc, requests.Timeout):
        raise requests.ReadTimeout("the request's deadline passed", request=request) from exc


def _read_body(response: requests.Response, at: float) -> bytes:
    limit = _body_limit.size
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(_too_large(limit), response=response)
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(_too_large(limit), response=response)
            chunks.append(chunk)
    except ResponseTooLarge:
        raise
    except requests.RequestException as exc:
        _raise_timeout_past(at, exc, response.request)
        raise
    response.raw.release_conn()
    return b"".join(chunks)


#: What a Response says besides its body, copied to the one that holds the body read.
_RESPONSE_FIELDS = (
    "status_code",
    "headers",
    "url",
    "encoding",
    "history",
    "reason",
    "cookies",
    "elapsed",
    "request",
    "connection",
)


def _holding(response: requests.Response, body: bytes) -> requests.Response:
    """`response` with `body`, read already against the limit and the deadline. requests gives
    a Response its body only by reading its `raw` file (the socket's is read to the end), so
    the answer is a copy reading `body` from memory; read at once, `content`, `text` and
    `json()` then cost what they cost on any Response."""
    held = requests.Response()
    for name in _RESPONSE_FIELDS:
        if hasattr(response, name):  # `connection` is the adapter's, set when it built one
            setattr(held, name, getattr(response, name))
    held.raw = io.BytesIO(body)
    held.content  # noqa: B018 - read now, from memory
    return held


def _no_redirect_target(_response) -> None:
    return None


def bounded(session: requests.Session, default_timeout: float = 10.0, pool_maxsize: int = 4):
    """Make `session` send through BoundedAdapter, follow no redirect and read no proxy
    variables, .netrc or CA bundle path from the environment."""
    session.trust_env = False
    # Session.resolve_redirects follows what this names: nothing, so a 3xx comes back as it
    # is, whether or not a caller (authlib) passes allow_redirects=False.
    session.get_redirect_target = _no_redirect_target  # type: ignore[method-assign,assignment]
    adapter = BoundedAdapter(default_timeout, pool_connections=4, pool_maxsize=pool_maxsize)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def redirect_refused(response: requests.Response) -> str:
    """Why a 3xx fails: "answered a redirect (HTTP 302 to host); not followed"."""
    location = response.headers.get("Location") or ""
    try:
        target = urlsplit(urljoin(response.url or "", location))
        host = f"{target.hostname}:{target.port}" if target.port else target.hostname
    except ValueError:
        host = None
    where = f" to {host}" if location and host else ""
    return f"answered a redirect (HTTP {response.status_code}{where}); not followed"
