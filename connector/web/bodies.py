"""Request bodies as a source reads them: `Content-Encoding: gzip` decoded under the same size
limit as a plain body, so a small compressed body cannot expand past it (a "gzip bomb").

This runs before authentication, so its cost must follow the body's size alone: a gzip file
may hold several members one after the other, but no sender needs many (tracking libraries
send one), so past MAX_GZIP_MEMBERS the body is refused; and each member is read through a
window that starts small and doubles, so what zlib copies aside after a member ends
(`unused_data`) is never more than twice the member itself (copying the rest of the body after
every member made 52,000 empty members of a 1 MiB body take a second to refuse)."""

from __future__ import annotations

import zlib

GZIP = ("gzip", "x-gzip")
#: More members than this in one gzip body is a 400.
MAX_GZIP_MEMBERS = 16
#: The first window read of each member: an empty member is 20 bytes.
_FIRST_WINDOW = 256


class BodyRefused(Exception):
    """The body cannot be read: `status` is 413 (too large decoded), 415 (an encoding we do not
    speak) or 400 (a corrupt or cut-off gzip stream, or too many members)."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def decoded(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body with its content encoding undone; never more than `limit` bytes."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in GZIP:
        raise BodyRefused(415, "unsupported content encoding", "send the body plain or gzip-encoded")
    out = bytearray()
    view = memoryview(body)
    at = 0
    members = 0
    while True:
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise BodyRefused(
                400, "bad encoding", f"the gzip body holds more than {MAX_GZIP_MEMBERS} members"
            )
        at = _member(view, at, out, limit)
        if at == len(body):
            return bytes(out)


def _member(view: memoryview, at: int, out: bytearray, limit: int) -> int:
    """Decode the member starting at `at` into `out`; returns where the next one starts."""
    stream = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    window = _FIRST_WINDOW
    while not stream.eof:
        chunk = view[at : at + window]
        if not chunk:
            raise BodyRefused(400, "bad encoding", "the gzip body is cut off")
        try:
            # limit + 1 - len(out) >= 1 here: 0 would mean "no limit" to zlib.
            out += stream.decompress(chunk, limit + 1 - len(out))
        except zlib.error as exc:
            raise BodyRefused(400, "bad encoding", f"the gzip body is corrupt: {exc}") from exc
        if len(out) > limit:
            raise BodyRefused(
                413, "request entity too large", f"the body is larger than {limit} bytes once decompressed"
            )
        # Below the limit zlib took the whole chunk (nothing in unconsumed_tail); past the
        # member's end it set the rest aside.
        at += len(chunk) - len(stream.unused_data)
        window *= 2
    return at
