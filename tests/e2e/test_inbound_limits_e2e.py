"""What a sender sends cannot stop, slow or fool the connector, against real gunicorn: bodies
over 1 MiB are 413 with or without a Content-Length, a gzip body of many members is refused
at once, JSON nested too deeply or holding numbers no double holds is a 400 naming the path;
every refusal is counted in /metrics and listed in the Live View, whichever web process
answered it; and admin sign-in attempts past the limit write nothing to the store."""

from __future__ import annotations

import gzip
import json
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from connector.outbox.engine import make_engine
from connector.outbox.tables import admin_failures
from connector.testing import example_stack, wait_until
from connector.web.bodies import MAX_GZIP_MEMBERS
from connector.web.refusals import FLUSH_SECONDS
from plugins.extole.testing import referral_event

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
ROUTES = ["/webhooks/extole", "/webhooks/segment-library/v1/batch"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = example_stack(tmp_path_factory.mktemp("limits") / "stack")
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


def refused_counts(stack) -> dict[tuple[str, str], float]:
    text = requests.get(f"{stack.base_url}/metrics", timeout=10).text
    counts = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "connector_inbound_refused_total":
                counts[(sample.labels["source"], sample.labels["reason"])] = sample.value
    return counts


def settled_counts(stack) -> dict[tuple[str, str], float]:
    """The counts once every web process has written what earlier tests had it refuse (each
    writes its own within FLUSH_SECONDS): two reads a flush apart that agree."""
    last: list[dict] = [refused_counts(stack)]

    def settled():
        time.sleep(FLUSH_SECONDS * 1.5)
        now, last[0] = refused_counts(stack), last[0]
        agreed = now == last[0]
        last[0] = now
        return (now,) if agreed else None  # a tuple: no counts at all is an answer too

    (counts,) = wait_until(settled, timeout=30, message="refusal counts that stay the same")
    return counts


def test_refusals_are_counted_and_listed_whichever_web_process_answered(stack):
    before = settled_counts(stack)
    body = json.dumps(referral_event("refused-1", first_name="kept-nowhere-1234")).encode()
    unsigned = {"X-Extole-Signature": "sha256=00", "X-Note": "kept-nowhere-5678"}
    sent = [post(stack, "/webhooks/extole", body, **unsigned) for _ in range(12)]
    sent.append(post(stack, "/webhooks/nowhere", body))
    sent.append(post(stack, "/webhooks/segment-library/v1/other", body))
    assert [answer.status_code for answer in sent] == [401] * 12 + [404, 404]
    expected = {
        ("extole", "unauthorized"): 12,
        ("(unknown)", "unknown source"): 1,
        ("segment-library", "unknown route"): 1,
    }

    def counted() -> bool:  # each process adds its own to the store within a second or so
        after = refused_counts(stack)
        return all(after.get(key, 0) - before.get(key, 0) == more for key, more in expected.items())

    wait_until(counted, timeout=10, message="every process's refusals in /metrics")

    def listed() -> list[dict]:
        answer = stack.admin("GET", "/admin/api/refusals")
        refusals = answer.json()["refusals"]
        return refusals if sum(r["status"] == 401 for r in refusals) >= 12 else []

    refusals = wait_until(listed, timeout=30, message="every refusal listed")
    assert {(r["source"], r["status"]) for r in refusals} >= {("extole", 401), ("(unknown)", 404)}
    page = stack.admin("GET", "/live/refusals").text
    for text in (json.dumps(refusals), page):
        assert "kept-nowhere" not in text


def test_sign_in_attempts_past_the_limit_write_nothing_to_the_store(tmp_path):
    # A stack of its own: past the limit, this address is refused the right token too.
    stack = example_stack(tmp_path / "stack")
    try:
        stack.start(workers=0)
        engine = make_engine(stack.database_url)

        def entries() -> int:
            with engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(admin_failures)).scalar()

        wrong = {"Authorization": "Bearer not-the-admin-token-at-all"}
        url = f"{stack.base_url}/admin/api/summary"
        answers = [requests.get(url, headers=wrong, timeout=10).status_code for _ in range(10)]
        assert (answers, entries()) == ([401] * 10, 10)
        answers = [requests.get(url, headers=wrong, timeout=10).status_code for _ in range(30)]
        assert (answers, entries()) == ([429] * 30, 10)
        engine.dispose()
    finally:
        stack.stop()
