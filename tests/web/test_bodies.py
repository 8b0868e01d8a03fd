"""Decoding request bodies: gzip under the same limit as a plain body."""

from __future__ import annotations

import gzip

import pytest

from connector.web.bodies import MAX_GZIP_MEMBERS, BodyRefused, decoded


def test_plain_and_identity_bodies_are_kept_as_sent():
    assert decoded(b"abc", None, 3) == b"abc"
    assert decoded(b"abc", " Identity ", 3) == b"abc"


def test_gzip_members_are_joined_up_to_the_limit():
    body = gzip.compress(b"ab") + gzip.compress(b"cd")
    assert decoded(body, "gzip", 4) == b"abcd"
    assert decoded(gzip.compress(b"abcd"), "x-gzip", 4) == b"abcd"


def test_members_of_any_size_are_read_across_windows():
    big = bytes(range(256)) * 4000  # incompressible enough to span many windows
    members = [b"", b"x", big, b"", b"tail"]
    body = b"".join(gzip.compress(member, mtime=0) for member in members)
    assert decoded(body, "gzip", len(big) + 5) == b"".join(members)


def test_as_many_members_as_the_cap_are_read_and_one_more_is_refused():
    empty = gzip.compress(b"", mtime=0)
    assert decoded(empty * MAX_GZIP_MEMBERS, "gzip", 10) == b""
    with pytest.raises(BodyRefused) as refused:
        decoded(empty * 52_000, "gzip", 1024 * 1024)
    assert (refused.value.status, refused.value.message) == (
        400,
        f"the gzip body holds more than {MAX_GZIP_MEMBERS} members",
    )


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
        (gzip.compress(b"abc" * 1000, mtime=0)[:-3], 10_000, 400, "the gzip body is cut off"),
    ],
)
def test_bodies_that_cannot_be_read(body, limit, status, message):
    with pytest.raises(BodyRefused) as refused:
        decoded(body, "gzip", limit)
    assert (refused.value.status, refused.value.message) == (status, message)
