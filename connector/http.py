"""The one place outbound HTTP happens: pooled keep-alive sessions, the 401 retry, and
redaction of secrets in everything that is logged or stored. Under it, connector.transport:
one deadline per attempt (a token call inside it included), a 1 MiB answer, no redirects."""

from __future__ import annotations

import re
import threading
import time
from email.utils import parsedate_to_datetime

import requests

from connector import jsontext, transport
from connector.contract import Credentials, HttpResult, InvalidCredentials, OutboundRequest
from connector.redaction import Redactor

MAX_RECORDED_BODY = 4096
#: Headers of an answer kept in its record (the first ones; a server may send a hundred).
MAX_RECORDED_HEADERS = 50
MAX_HEADER_VALUE = 1000
_SECONDS = re.compile(r"[0-9]+", re.ASCII)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def recorded_headers(headers: dict[str, str]) -> dict[str, str]:
    """The first MAX_RECORDED_HEADERS headers, each value cut at MAX_HEADER_VALUE characters."""
    kept = list(headers.items())[:MAX_RECORDED_HEADERS]
    return {name[:MAX_HEADER_VALUE]: value[:MAX_HEADER_VALUE] for name, value in kept}


def body_text(response: requests.Response, limit: int | None = None) -> str:
    """The answer's body as text (its first `limit` characters), decoded in the charset its
    Content-Type names or else as UTF-8, undecodable bytes replaced: never guessed from the
    bytes (seconds on a large body), nor ISO-8859-1 for any text/* (HTTP/1.1 no longer says so)."""
    content = response.content if limit is None else response.content[: limit * 4]
    named = "charset" in response.headers.get("Content-Type", "").lower()
    try:
        decoded = content.decode(response.encoding if named and response.encoding else "utf-8", "replace")
    except LookupError:  # a charset no codec knows
        decoded = content.decode("utf-8", "replace")
    return decoded if limit is None else decoded[:limit]


def answer_body(response: requests.Response):
    """The answer's JSON (in the UTF the bytes are in, as RFC 8259 reads it), or its text when
    it is not JSON (an HTML page, an empty body, JSON nested too deep to read)."""
    try:
        return jsontext.loads(response.content)
    except (ValueError, RecursionError):
        return body_text(response)


#: A body the client encodes itself is JSON, as requests' `json=` would say.
JSON_CONTENT = {"Content-Type": "application/json"}


class HttpClient:
    def __init__(self, timeout: float = 10.0, redactor: Redactor | None = None, pool_size: int = 4):
        self.timeout = timeout
        self.redactor = redactor or Redactor()
        self.pool_size = pool_size
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        # One keep-alive session per thread: requests.Session is not documented thread-safe.
        session = getattr(self._local, "session", None)
        if session is None:
            session = transport.bounded(requests.Session(), self.timeout, self.pool_size)
            self._local.session = session
        return session

    def send(self, request: OutboundRequest, credentials: Credentials | None = None) -> HttpResult:
        """Send once; on a 401 refresh the credentials and retry at once, a single time.
        InvalidCredentials (the key itself refused) propagates to the caller."""
        result = self._send_once(request, credentials)
        if result.status == 401 and credentials is not None:
            credentials.refresh()
            result = self._send_once(request, credentials)
        return result

    def _send_once(self, request: OutboundRequest, credentials: Credentials | None) -> HttpResult:
        """One attempt: the token call (when one is due) and the request share one deadline."""
        with transport.deadline(self.timeout):
            return self._attempt(request, credentials)

    def _attempt(self, request: OutboundRequest, credentials: Credentials | None) -> HttpResult:
        headers = {"Accept": "application/json", **request.headers}
        outbound = OutboundRequest(request.method, request.url, dict(request.params), request.json, headers)
        started = time.monotonic()
        try:
            if credentials is not None:
                credentials.apply(outbound)
                self.redactor.add(*credentials.secrets())
        except InvalidCredentials:
            raise
        except Exception as exc:  # token endpoint down or unreadable: transient
            return self._failure(outbound, started, f"token endpoint: {exc}")
        # Encoded once: the same bytes are sent and (redacted, cut) recorded.
        content = None if outbound.json is None else jsontext.body(outbound.json)
        record = self.request_record(outbound, content)
        try:
            session = self.session
            # Prepared here and sent as it is: Session.request's merging of session settings
            # (headers, params, cookies, hooks), each through a runtime-checked protocol, was
            # about a fifth of a request's CPU, and so were requests.Request's empty params
            # and data (None here skips them). The session's headers are the only settings it
            # has; its cookie jar is not sent (a partner's cookie never goes back to anyone).
            prepared = requests.PreparedRequest()
            prepared.prepare(
                method=outbound.method,
                url=outbound.url,
                headers={**session.headers, **JSON_CONTENT, **outbound.headers}
                if content is not None
                else {**session.headers, **outbound.headers},
                params=outbound.params or None,
                data=content,
            )
            with transport.body_limit(request.max_response_bytes):
                response = session.send(
                    prepared, timeout=transport.time_left(self.timeout), allow_redirects=False
                )
        except transport.ResponseTooLarge as exc:
            return self._failure(outbound, started, str(exc), record)
        except requests.Timeout as exc:
            return self._failure(outbound, started, f"timeout: {type(exc).__name__}", record)
        except requests.RequestException as exc:
            return self._failure(outbound, started, f"connection: {type(exc).__name__}", record)
        latency_ms = (time.monotonic() - started) * 1000
        body = answer_body(response)
        text = self.redactor.head(body_text(response), MAX_RECORDED_BODY)
        return HttpResult(
            status=response.status_code,
            latency_ms=latency_ms,
            body=body,
            error=self.redactor.text(f"partner {transport.redirect_refused(response)}")
            if 300 <= response.status_code < 400
            else None,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            request_record=record,
            response_record={
                "status": response.status_code,
                "headers": recorded_headers(self.redactor.headers(dict(response.headers))),
                "body": text,
            },
        )

    def _failure(self, request, started, error, record=None) -> HttpResult:
        return HttpResult(
            status=None,
            latency_ms=(time.monotonic() - started) * 1000,
            error=self.redactor.text(error),
            request_record=record or self.request_record(request),
        )

    def request_record(self, request: OutboundRequest, content: bytes | None = None) -> dict:
        """What is kept of a request: its URL, parameters and headers redacted, and the head of
        its body (`content`, the bytes sent, when they were encoded already)."""
        body = None
        if request.json is not None:
            if content is None:
                content = jsontext.body(request.json)
            body = self.redactor.head(content.decode(), MAX_RECORDED_BODY * 4)
        return {
            "method": request.method,
            "url": self.redactor.text(request.url),
            "params": {k: self.redactor.text(str(v)) for k, v in request.params.items()},
            "headers": self.redactor.headers(request.headers),
            "body": body,
        }
