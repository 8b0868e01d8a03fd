"""Reading Listrak's Email API (Bearer token from OAUTH_LISTRAK) for the activity source: GETs
through the core's HTTP client, cursor paging, and what each failure means for a poll.

A 429 is waited out inside the poll when Listrak asks for a short pause (Retry-After, or a
doubling backoff without one), a few times and for a bounded total; a longer pause, 5xx,
timeouts and connection errors end the poll with `PollFailed` (the next poll resumes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

from connector.plugin_api import (
    CODE_KEYS,
    MAX_CODE,
    MAX_MESSAGE,
    MESSAGE_KEYS,
    HttpResult,
    OutboundRequest,
    PollFailed,
    cut,
    readable,
)

PAGE = 5000  # Listrak's largest `count`
SMALLEST_PAGE = 100
#: How the core's HTTP client reports an answer cut off at its size limit.
#: A page of 5,000 activity rows is about 1.6 MB and 5,000 contacts about 2.4 MB: reads may
#: be larger than the 1 MiB the core allows a delivery's answer, still bounded.
READ_LIMIT = 16 * 1024 * 1024
TOO_LARGE = "response body over"
#: 429 handling inside one poll: longest single wait, total waited, tries per request.
LONGEST_WAIT, TOTAL_WAIT, TRIES = 30.0, 60.0, 4
FIRST_BACKOFF = 2.0  # without Retry-After: 2 s, then 4 s, then 8 s
PERMISSION_HINT = "the integration may lack the Message or Reporting permission"


def failure(result: HttpResult) -> str:
    """`HTTP 403 ERROR_…: message`, or why no answer came; any shape of answer, bounded."""
    if result.status is None:
        return result.error or "no response"
    body = result.body
    if isinstance(body, dict):
        code, message = readable(body.get("error"), CODE_KEYS), readable(body.get("message"), MESSAGE_KEYS)
    else:  # not JSON (a proxy's page): its start says what answered
        code, message = None, readable(body.strip() if isinstance(body, str) else body, MESSAGE_KEYS)
    code, message = code and cut(code, MAX_CODE), message and cut(message, MAX_MESSAGE)
    return " ".join(p for p in (f"HTTP {result.status}", code and f"{code}:", message) if p)


def unreadable(result: HttpResult) -> str:
    """What a 2xx answer that is not a JSON object holds, in a few words and its start."""
    body = result.body
    if isinstance(body, str):
        kind = "an empty body" if not body.strip() else f"{len(body):,} characters that are not JSON"
        start = cut(body.strip(), 120)
        return f"{kind}" + (f" ({start!r})" if start else "")
    return f"JSON {type(body).__name__ if body is not None else 'null'}, not an object"


def listed(body: dict, path: str) -> tuple[list[dict], str | None]:
    """A page's rows (`data`, objects) and `nextPageCursor`, or PollFailed naming what is odd."""
    rows = body.get("data")
    if rows is None:
        rows = []
    if not isinstance(rows, list):
        raise PollFailed(f"GET {path}: `data` is {_shape(rows)}, not a list of rows")
    odd = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
    if odd is not None:
        raise PollFailed(f"GET {path}: `data[{odd}]` is {_shape(rows[odd])}, not an object")
    cursor = body.get("nextPageCursor")
    if cursor is not None and not isinstance(cursor, str):
        raise PollFailed(f"GET {path}: `nextPageCursor` is {_shape(cursor)}, not a string")
    return rows, cursor


def single(body: dict, path: str) -> dict:
    """The one record (`data`, an object) of a read by id, or PollFailed naming what is odd."""
    data = body.get("data")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PollFailed(f"GET {path}: `data` is {_shape(data)}, not an object")
    return data


def _shape(value) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number"}
    return names.get(type(value), "a number" if isinstance(value, float) else type(value).__name__)


class NotFound(PollFailed):
    """Listrak answered 404 (an unknown list, message or contact): the poll fails, naming it,
    unless the caller expects it (a contact not on the list)."""


class TooLarge(PollFailed):
    """The answer was over the core's response size limit: ask for smaller pages."""


class Refused(PollFailed):
    """Listrak refused the request itself (a 4xx other than 401, 403, 404 and 429)."""


class Reader:
    """GETs for one poll with one key's credentials; counts requests; waits out short 429s."""

    def __init__(self, http, creds, api_url: str, sleep=time.sleep, page_sizes: dict | None = None):
        self.http, self.creds, self.api = http, creds, api_url
        self.sleep = sleep
        self.requests = 0
        self.waited = 0.0
        #: Page sizes that fit the core's response limit, by the collection's last path segment
        #: (pass the same dict to every poll's Reader so only the first pays for finding them).
        self.page_sizes: dict[str, int] = {} if page_sizes is None else page_sizes

    def get(self, path: str, params: dict | None = None) -> dict:
        """The JSON body of `GET {api_url}{path}`; PollFailed (NotFound for a 404) otherwise."""
        backoff = FIRST_BACKOFF
        for attempt in range(1, TRIES + 1):
            self.requests += 1
            result = self.http.send(
                OutboundRequest(
                    "GET", f"{self.api}{path}", params=params or {}, max_response_bytes=READ_LIMIT
                ),
                self.creds,
            )
            if result.ok:
                if not isinstance(result.body, dict):
                    answered = f"HTTP {result.status} with {unreadable(result)}"
                    raise PollFailed(f"GET {path}: Listrak answered {answered}")
                return result.body
            if result.status == 429:
                wait = result.retry_after if result.retry_after is not None else backoff
                backoff *= 2
                if attempt < TRIES and wait <= LONGEST_WAIT and self.waited + wait <= TOTAL_WAIT:
                    self.waited += wait
                    self.sleep(wait)
                    continue
                raise PollFailed(
                    f"GET {path}: Listrak asked to slow down ({failure(result)})", retry_after=wait
                )
            raise self._failed(path, result)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _failed(self, path: str, result: HttpResult) -> Exception:
        if result.status is None and TOO_LARGE in (result.error or ""):
            return TooLarge(f"GET {path}: {failure(result)}")
        if result.status == 404:
            return NotFound(f"GET {path}: {failure(result)}")
        if result.status == 401:
            return PollFailed(f"GET {path}: Listrak refused a fresh token ({failure(result)})")
        if result.status == 403:
            return PollFailed(f"GET {path}: {failure(result)} ({PERMISSION_HINT})")
        if result.status is not None and 400 <= result.status < 500:
            return Refused(f"GET {path}: {failure(result)}")
        return PollFailed(f"GET {path}: {failure(result)}")

    def pages(self, path: str, params: dict | None = None, start: str = "Start") -> Iterator[tuple]:
        """(rows, next page's cursor or None) for each page of a collection from `start`,
        following `nextPageCursor` until it runs out (or comes back unchanged)."""
        kind = path.rsplit("/", 1)[-1]
        cursor: str | None = start
        seen: set[str | None] = set()
        while cursor and cursor not in seen:
            size = self.page_sizes.get(kind, PAGE)
            try:
                body = self.get(path, {**(params or {}), "cursor": cursor, "count": str(size)})
            except TooLarge:
                if size <= SMALLEST_PAGE:
                    raise
                # A page over READ_LIMIT (rows with huge fields): halve the page size and go on.
                self.page_sizes[kind] = max(SMALLEST_PAGE, size // 2)
                continue
            seen.add(cursor)
            rows, following = listed(body, path)
            cursor = following if rows else None
            if cursor in seen:
                cursor = None
            yield rows, cursor


def contact_path(list_id: int, email: str) -> str:
    return f"/List/{list_id}/Contact/{quote(email, safe='@')}"
