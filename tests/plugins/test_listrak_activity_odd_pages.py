"""Odd pages from Listrak's reporting routes (an object where a list is expected, HTML, a 200
that is not JSON, a huge answer, error fields of any shape) fail the poll with a clear,
bounded reason, kept in the poll history and shown in the Live View; nothing crashes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from connector.app import create_app
from connector.contract import PollFailed
from connector.delivery.scheduler import Scheduler
from connector.outbox.tables import poll_runs
from connector.runtime import Runtime
from connector.storable import MAX_REASON

MESSAGES = "GET /List/<listId>/Message"
BEARER = {"Authorization": "Bearer test-admin-token"}


def answer(status: int = 200, **body) -> dict:
    return {"status": status, **(body or {"json": None})}


ODD_PAGES = [
    (
        answer(json={"data": {"messageId": 1}}),
        "GET /List/12345/Message: `data` is an object, not a list of rows",
    ),
    (answer(json={"data": [1, {}]}), "GET /List/12345/Message: `data[0]` is a number, not an object"),
    (answer(json={"data": [{}], "nextPageCursor": {}}), "`nextPageCursor` is an object, not a string"),
    (answer(json=[{"data": []}]), "Listrak answered HTTP 200 with JSON list, not an object"),
    (answer(json=None), "Listrak answered HTTP 200 with JSON null, not an object"),
    (answer(body="", content_type="application/json"), "Listrak answered HTTP 200 with an empty body"),
    (
        answer(body="<html>" + "<p>maintenance</p>" * 150_000, content_type="text/html"),
        "Listrak answered HTTP 200 with 2,700,006 characters that are not JSON ('<html><p>maintenance",
    ),
    (answer(body_base64="/wD+"), "Listrak answered HTTP 200 with 3 characters that are not JSON"),
    (
        answer(400, json={"error": {"code": "ERROR_X"}, "message": ["bad", {"message": "worse"}]}),
        "GET /List/12345/Message: HTTP 400 ERROR_X: bad; worse",
    ),
    (answer(403, body="<h1>Forbidden</h1>", content_type="text/html"), "HTTP 403 <h1>Forbidden</h1> (the"),
    (
        answer(400, json={"error": "E" * 500, "message": "m" * 5000}),
        "HTTP 400 " + "E" * 127 + "…: " + "m" * 999,
    ),
]


@pytest.mark.parametrize(("odd", "reason"), ODD_PAGES, ids=range(len(ODD_PAGES)))
def test_an_odd_page_fails_the_poll_naming_what_is_odd(listrak, poll, odd, reason):
    listrak.fault(mode="answer", route=MESSAGES, answer=odd)
    with pytest.raises(PollFailed) as failed:
        poll()
    assert reason in str(failed.value)
    assert len(str(failed.value)) < MAX_REASON


def test_an_odd_page_is_kept_in_the_poll_history_and_shown(store_url, activity_config, listrak, clock):
    runtime = Runtime.build(str(activity_config), store_url)
    odd = {"error": "ERR\u0000", "message": ["x\ud800", "<b>" + "y" * 5000]}
    listrak.fault(mode="answer", route=MESSAGES, answer=answer(400, json=odd))

    report = Scheduler(runtime, "w1").poll("listrak-activity")

    assert not report.ok
    with runtime.engine.connect() as conn:
        (error,) = conn.execute(select(poll_runs.c.error)).scalars()
    assert error.startswith("GET /List/12345/Message: HTTP 400 ERR\ufffd: x\ufffd; <b>yyy")
    assert len(error) < MAX_REASON
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    (source,) = client.get("/admin/api/summary", headers=BEARER).json["pull_sources"]
    assert source["last_error"] == error
    page = client.get("/live", headers=BEARER)
    assert page.status_code == 200
    assert "ERR\ufffd: x\ufffd; &lt;b&gt;yyy" in page.get_data(as_text=True)
