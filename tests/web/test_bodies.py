"""Decoding request bodies: gzip under the same limit as a plain body."""

from __future__ import annotations

import gzip

import pytest

from connector.web.bodies import BodyRefused, decoded


def test_plain_and_identity_bodies_are_kept_as_sent():
    assert decoded(b"abc", None, 3) == b"abc"
    assert decoded(b"abc", " Identity ", 3) == b"abc"


def test_gzip_members_are_joined_up_to_the_limit():
    body = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert decoded(body, "gzip", 4) == b"abcd"
    assert decoded(gzip.compress(b"abcd"), "x-gzip", 4) == b"abcd"


# mtime=0: the same bytes, so the same test ids, in every process that collects them (pytest-xdist).
@pytest.mark.parametrize(
    ("body", "limit", "status", "message"),
    [
        (gzip.compress(b"abcde", mtime=0), 4, 413, "the body is larger than 4 bytes once decompressed"),
        (
            gzip.compress(b"ab", mtime=0) + gzip.compress(b"cde", mtime=0),
            4,
            413,
            "the body is larger than 4 bytes once decompressed",
        ),
        (
            gzip.compress(b"abc", mtime=0) + b"junk",
            10,
            400,
            "the gzip body is corrupt: Error -3 while decompressing data: incorrect header check",
        ),
        (b"", 10, 400, "the gzip body is cut off"),
    ],
)
def test_bodies_that_cannot_be_read(body, limit, status, message):
    with pytest.raises(BodyRefused) as refused:
        decoded(body, "gzip", limit)
    assert (refused.value.status, refused.value.message) == (status, message)
