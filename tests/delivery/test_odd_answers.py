"""A table of odd partner answers, tried on each partner flow (Listrak contact subscription,
Listrak bulk profile fields, Segment batch) on SQLite and PostgreSQL: each answer gives its
outcome, the partner's error code and message are stored as bounded text (an object's code, a
list joined, JSON text otherwise), and the admin API and the Live View show it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from connector.delivery.worker import Worker
from tests.delivery.partner_flows import FLOWS, assert_pages_answer, assert_storable, connector, rows_of

HTML = b"<html><body><h1>Bad Gateway</h1>" + b"<p>proxy says no</p>" * 15_000 + b"</body></html>"


@dataclass(frozen=True)
class Odd:
    name: str
    status: int
    outcome: str
    code: object = None  # the partner's error code field, None: left out of the body
    message: object = None
    raw: bytes | None = None  # the body as bytes instead of {code_field: code, "message": message}
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    stored_code: str | None = None  # expected error_code (None: only bounded)
    stored_message: str | None = None  # expected start of error_message

    def body(self, code_field: str) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps({code_field: self.code, "message": self.message}).encode()


ANSWERS = [
    Odd(
        "object code, list message",
        400,
        "dead",
        {"code": "ERROR_X"},
        ["bad"],
        stored_code="ERROR_X",
        stored_message="bad",
    ),
    Odd(
        "list code, object message",
        400,
        "dead",
        ["A", "B"],
        {"text": "t"},
        stored_code="A; B",
        stored_message='{"text": "t"}',
    ),
    Odd("numbers", 400, "dead", 42, 3.5, stored_code="42", stored_message="3.5"),
    Odd("nulls", 400, "dead", None, None),
    Odd("huge code and message", 400, "dead", "E" * 300, "m" * 5000, stored_code="E" * 127 + "…"),
    Odd("NUL bytes", 400, "dead", "ERR\x00X", "a\x00b", stored_code="ERR X", stored_message="a\ufffdb"),
    Odd(
        "lone surrogates",
        400,
        "dead",
        raw=b'{"error": "\xed\xa0\x80", "code": "\\udfff", "message": "x\\ud800"}',
        stored_message="x\ufffd",
    ),
    Odd(
        "not UTF-8", 400, "dead", raw=b"\xff\xfe bad \xc3", content_type="text/plain", stored_message="\ufffd"
    ),
    Odd("300 KB HTML", 400, "dead", raw=HTML, content_type="text/html", stored_message="<html><body>"),
    Odd("JSON array", 400, "dead", raw=b'[1, "two", null]', stored_message="1; two"),
    Odd("JSON nested too deep", 400, "dead", raw=b"[" * 5000 + b"]" * 5000),
    Odd("many long headers", 400, "dead", "E", "m", headers={f"X-H{i}": "v" * 5000 for i in range(60)}),
    Odd("HTML 503", 503, "retrying", raw=HTML, content_type="text/html"),
    Odd("empty 500", 500, "retrying", raw=b""),
    Odd("429 with an object", 429, "retrying", {"code": 1}, {"message": None}),
    Odd("2xx not JSON", 200, "delivered", raw=b"OK", content_type="text/plain"),
    Odd("2xx 300 KB HTML", 200, "delivered", raw=HTML, content_type="text/html"),
    Odd("2xx JSON null", 202, "delivered", raw=b"null"),
    Odd("2xx NUL and not UTF-8", 201, "delivered", raw=b'{"status": "\x00\xff"}'),
]


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_each_odd_answer_has_its_outcome_and_bounded_stored_text(
    flow, store_url, config_dir, requests_mock, listrak_token, clock
):
    """One runtime per flow and store (building one costs more than an answer): each answer
    of the table in turn, on deliveries of their own (the clock stands still: none retried)."""
    runtime, client = connector(flow, config_dir, store_url, requests_mock)
    for odd in ANSWERS:
        headers = {"Content-Type": odd.content_type, **odd.headers}
        requests_mock.post(
            flow.url, status_code=odd.status, content=odd.body(flow.code_field), headers=headers
        )
        before = {d["id"] for d in rows_of(runtime, flow.action)[0]}
        flow.send(client)
        Worker(runtime).run_once()
        check(odd, runtime, client, flow.action, before)


def check(odd: Odd, runtime, client, action: str, before: set[int]) -> None:
    found, logged = rows_of(runtime, action)
    found = [d for d in found if d["id"] not in before]
    assert found, odd.name
    assert [d["state"] for d in found] == [odd.outcome] * len(found), odd.name
    for delivery in found:
        assert_storable(delivery, [a for a in logged if a["delivery_id"] == delivery["id"]])
    first = next(a for a in logged if a["delivery_id"] == found[0]["id"])
    if odd.stored_code is not None:
        assert first["error_code"] == odd.stored_code, odd.name
    if odd.stored_message is not None:
        assert first["error_message"].startswith(odd.stored_message), (odd.name, first["error_message"][:100])
    shown = assert_pages_answer(client, found[0]["event_pk"])
    (delivery,) = [d for d in shown["deliveries"] if d["id"] == found[0]["id"]]
    (attempt,) = delivery["attempt_log"]
    assert (attempt["status"], attempt["outcome"]) == (odd.status, odd.outcome), odd.name
    assert len((attempt["response"] or {}).get("headers") or {}) <= 50, odd.name
