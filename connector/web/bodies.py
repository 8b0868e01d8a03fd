"""Request bodies as a source reads them: `Content-Encoding: gzip` decoded under the same size
limit as a plain body, so a small compressed body cannot expand past it (a "gzip bomb")."""

from __future__ import annotations

import zlib

GZIP = ("gzip", "x-gzip")


class BodyRefused(Exception):
    """The body cannot be read: `status` is 413 (too large decoded), 415 (an encoding we do not
    speak) or 400 (a corrupt or cut-off gzip stream)."""

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
    rest = body
    while True:  # a gzip file may hold several members, one after the other
        stream = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            # limit + 1 - len(out) >= 1 here: 0 would mean "no limit" to zlib.
            out += stream.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise BodyRefused(400, "bad encoding", f"the gzip body is corrupt: {exc}") from exc
        if len(out) > limit:
            raise BodyRefused(
                413, "request entity too large", f"the body is larger than {limit} bytes once decompressed"
            )
        if not stream.eof:
            raise BodyRefused(400, "bad encoding", "the gzip body is cut off")
        rest = stream.unused_data
        if not rest:
            return bytes(out)
