"""Generated partner answers (hypothesis) on the worker's side: random statuses, headers and
bodies (bytes, JSON of any shape with odd strings, large pages) answered to each partner flow,
through the real boundary and recorder into a real store. Whatever the answer, nothing
escapes the boundary, every delivery is recorded (never left leased), a 2xx is delivered and
anything else is not, every stored string is within the bounds, and the admin API's JSON about
it is valid."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.delivery.worker import Worker
from connector.outbox.tables import breakers
from tests import fuzzing
from tests.delivery.partner_flows import FLOWS, assert_pages_answer, assert_storable, connector, rows_of

#: Examples per flow; all of them together stay well under 30 s.
EXAMPLES = {"sqlite": fuzzing.examples(50), "postgresql": fuzzing.examples(12)}
RUN = settings(
    max_examples=1,  # replaced per test
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

ODD_TEXT = st.sampled_from(["", "\x00", "\ud800", "x\udfff", "\n\r\t", "é", "😀", "9" * 400, "E" * 200])
TEXT = st.text(st.characters(exclude_categories=()), max_size=20) | ODD_TEXT
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=10,
)
ERROR_OBJECTS = st.fixed_dictionaries(
    {},
    optional={name: JSON_VALUES for name in ("error", "code", "message", "status", "description")},
)
STATUSES = st.sampled_from([200, 201, 202, 204, 301, 400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503])
STATUSES = STATUSES | st.integers(200, 599)
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)
HEADERS = st.dictionaries(
    st.sampled_from(["Retry-After", "Location", "X-Request-Id", "Set-Cookie", "Content-Type", "X-Odd"]),
    HEADER_TEXT | st.sampled_from(["1", "9" * 400, "Wed, 21 Oct 2015 07:28:00 GMT", "http://other.test/x"]),
    max_size=3,
)


def json_bytes(value) -> st.SearchStrategy[bytes]:
    return st.booleans().map(
        lambda ascii: json.dumps(value, ensure_ascii=ascii).encode("utf-8", "surrogatepass")
    )


BODIES = st.one_of(
    ERROR_OBJECTS.flatmap(json_bytes),
    JSON_VALUES.flatmap(json_bytes),
    st.binary(max_size=200),
    st.integers(1, 40_000).map(lambda n: b"<html><p>down</p>" * n),  # up to 680 KB
)


@st.composite
def answers(draw) -> dict:
    return {"status_code": draw(STATUSES), "content": draw(BODIES), "headers": draw(HEADERS)}


def fuzz(flow, runtime, client, requests_mock, examples: int) -> None:
    @settings(RUN, max_examples=examples)
    @given(answers())
    def one(answer):
        with runtime.engine.begin() as conn:  # a circuit opened (or a key paused) by the last example
            conn.execute(breakers.delete())
        requests_mock.post(flow.url, **answer)
        before = {d["id"] for d in rows_of(runtime, flow.action)[0]}
        flow.send(client)

        Worker(runtime).run_once()  # nothing may escape the boundary

        found, logged = rows_of(runtime, flow.action)
        found = [d for d in found if d["id"] not in before]
        ok = 200 <= answer["status_code"] < 300
        for delivery in found:
            own = [a for a in logged if a["delivery_id"] == delivery["id"]]
            assert delivery["lease_owner"] is None
            assert delivery["state"] != "queued"
            assert own
            assert (delivery["state"] == "delivered") == ok, (delivery["state"], delivery["reason"])
            assert_storable(delivery, own)
        assert_pages_answer(client, found[0]["event_pk"])

    one()


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_any_answer_is_recorded_within_the_bounds(
    flow, config_dir, store_url, requests_mock, listrak_token, clock
):
    runtime, client = connector(flow, config_dir, store_url, requests_mock)
    fuzz(flow, runtime, client, requests_mock, EXAMPLES[runtime.engine.dialect.name])
