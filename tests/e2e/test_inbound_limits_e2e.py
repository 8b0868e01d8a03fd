"""What a sender sends cannot stop, slow or fool the connector, against real gunicorn: bodies
over 1 MiB are 413 with or without a Content-Length, a gzip body of many members is refused
at once, JSON nested too deeply or holding numbers no double holds is a 400 naming the path."""

from __future__ import annotations

import gzip
import json

import pytest
import requests

from connector.web.bodies import MAX_GZIP_MEMBERS
from plugins.extole.testing import referral_event
from plugins.listrak.testing import Stack

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
ROUTES = ["/webhooks/extole", "/webhooks/segment-library/v1/batch"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("limits") / "stack")
    try:
        yield stack.start(workers=0)
    finally:
        stack.stop()


def chunked(body: bytes, size: int = 64 * 1024):
    """The body as a generator: `requests` sends it with Transfer-Encoding: chunked."""
    return (body[at : at + size] for at in range(0, len(body), size))


def post(stack, route: str, body, **headers) -> requests.Response:
    sent = {"Content-Type": "application/json", **headers}
    return requests.post(f"{stack.base_url}{route}", data=body, headers=sent, timeout=30)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("size", [MIB + 1, 4 * MIB])
def test_a_chunked_body_over_one_mebibyte_is_413(stack, route, size):
    answer = post(stack, route, chunked(b" " * size))
    assert answer.status_code == 413
    assert answer.json()["message"] == f"the body is larger than {MIB} bytes"


@pytest.mark.parametrize("route", ROUTES)
def test_a_chunked_body_of_one_mebibyte_is_read_whole(stack, route):
    answer = post(stack, route, chunked(b" " * MIB))
    assert answer.status_code == 401  # read whole, then refused for its missing credentials


@pytest.mark.parametrize("route", ROUTES)
def test_a_gzip_body_of_many_members_is_refused_before_authentication(stack, route):
    empty = gzip.compress(b"", mtime=0)
    answer = post(stack, route, empty * (MIB // len(empty)), **{"Content-Encoding": "gzip"})
    assert answer.status_code == 400
    assert answer.json()["message"] == f"the gzip body holds more than {MAX_GZIP_MEMBERS} members"


def signed(stack, body: bytes) -> requests.Response:
    return post(stack, "/webhooks/extole", body, **stack.signers["extole"](body))


@pytest.mark.parametrize("levels", [65, 971, 5000])
def test_json_nested_too_deeply_is_400_naming_the_path_at_any_depth(stack, levels):
    answer = signed(stack, b'{"person": ' * levels + b"1" + b"}" * levels)
    assert answer.status_code == 400
    assert answer.json()["problems"] == {"person." * 63 + "person": ["nested deeper than 64 levels"]}


def test_a_number_no_double_holds_is_400_and_nothing_infinite_is_stored(stack):
    body = json.dumps(referral_event("inf-1")).replace('"1890234"', "1e400").encode()
    answer = signed(stack, body)
    assert (answer.status_code, answer.json()["problems"]) == (
        400,
        {"client_id": ["a number outside the range of a double (about ±1.8e308)"]},
    )
    assert stack.waiting_to_plan() == 0
