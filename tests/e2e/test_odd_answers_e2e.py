"""Issue 20 under real processes (gunicorn, `connector worker`, the Listrak sandbox serving odd
answers), on SQLite and PostgreSQL: one contact's opt-in is answered an error body of the wrong
shape, another's an error code far over 128 characters with a NUL; the flood after them is
delivered and recorded exactly once, the admin API's JSON is valid for every event, the Live
View shows the odd deliveries, and SIGTERM ends the worker promptly."""

import json
import signal

import pytest

from connector.testing import example_stack, wait_until
from plugins.extole.testing import referral_event

pytestmark = pytest.mark.e2e

SETTINGS = {
    "retry_schedule": ["300ms", "300ms"],
    "worker": {"threads": 8, "http_timeout": "2s", "lease": "6s", "poll_interval": "50ms"},
}
ODD = {"email": "odd@example.com", "body": {"error": {"code": "ERROR_X"}, "message": ["bad"]}}
HUGE = {"email": "huge@example.com", "body": {"error": "ERROR_\u0000" + "X" * 300, "message": "m" * 2000}}
FLOOD = [f"p{i}@example.com" for i in range(60)]


def strict_json(response) -> dict:
    assert response.status_code == 200, response.text[:300]

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(response.text, parse_constant=refuse)


def test_odd_answers_stop_nothing_and_every_other_delivery_is_recorded_once(tmp_path, store_url):
    stack = example_stack(tmp_path / "odd", settings=SETTINGS, database_url=store_url)
    try:
        stack.start(workers=1)
        for odd in (ODD, HUGE):
            answer = {"status": 400, "json": odd["body"]}
            fault = stack.part("listrak").request(
                "POST", "/_sandbox/faults", json={"mode": "answer", "email": odd["email"], "answer": answer}
            )
            assert fault.status_code == 201, fault.text
        events = [
            referral_event(f"odd-{i}", email=email) for i, email in enumerate([ODD["email"], HUGE["email"]])
        ]
        events += [referral_event(f"flood-{i}", email=email) for i, email in enumerate(FLOOD)]
        for start in range(0, len(events), 20):
            assert stack.post_events(events[start : start + 20]).status_code == 202
        wait_until(
            lambda: stack.delivery_states() == {"dead": 2, "delivered": len(FLOOD)},
            timeout=60,
            message="the odd opt-ins dead, the flood delivered",
        )

        per_contact = stack.part("listrak").state()["requests"]["per_contact"]
        assert {
            email: per_contact.get(email) for email in [ODD["email"], HUGE["email"], *FLOOD]
        } == dict.fromkeys([ODD["email"], HUGE["email"], *FLOOD], 1)
        listed = strict_json(stack.admin("GET", "/admin/api/events?limit=200"))["events"]
        assert len(listed) == len(events)
        shown = {}
        for event in listed:
            detail = strict_json(stack.admin("GET", f"/admin/api/events/{event['id']}"))
            (delivery,) = detail["deliveries"]
            assert [a["outcome"] for a in delivery["attempt_log"]] == [delivery["outcome"]]
            shown[detail["email"]] = delivery["attempt_log"][0] | {"event": event["id"]}
        assert (shown[ODD["email"]]["error_code"], shown[ODD["email"]]["error_message"]) == ("ERROR_X", "bad")
        huge = shown[HUGE["email"]]
        assert huge["error_code"] == "ERROR_ " + "X" * 120 + "…"
        assert len(huge["error_message"]) == 1000
        page = stack.admin("GET", f"/live/events/{shown[ODD['email']]['event']}")
        assert page.status_code == 200
        assert "ERROR_X" in page.text

        worker = stack.workers[0]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0  # it was 30 s while recording was jammed
        stack.workers.remove(worker)
    finally:
        stack.stop()
