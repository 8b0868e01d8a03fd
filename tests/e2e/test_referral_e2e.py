"""Issue 2 end to end: gunicorn, a worker and the sandbox as real processes."""

import pytest

from connector.testing import example_stack, wait_until
from plugins.extole.testing import referral_event

pytestmark = pytest.mark.e2e


def contact(stack, email, list_id="12345"):
    return stack.part("listrak").state()["lists"][list_id]["contacts"].get(email)


def test_opt_in_lands_with_profile_fields_then_opt_out_unsubscribes(stack):
    response = stack.post_events(referral_event("e2e-1", email=" Jane.Doe@Example.com"))
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}

    jane = wait_until(lambda: contact(stack, "jane.doe@example.com"), message="opt-in in Listrak")
    assert jane["subscriptionState"] == "Subscribed"
    assert jane["segmentationFieldValues"] == {
        "1001": "+15555555555",
        "1002": "refer.example.com/jdoe",
        "1003": "Jane",
        "1004": "Doe",
        "1005": "advocate",
    }

    response = stack.post_events(referral_event("e2e-2", type="opt_out", event_time="2026-11-22T06:00:00Z"))
    assert response.status_code == 202
    wait_until(
        lambda: contact(stack, "jane.doe@example.com")["subscriptionState"] == "Unsubscribed",
        message="opt-out in Listrak",
    )


def test_an_odd_optional_field_never_costs_the_consent_change(stack):
    event = referral_event("e2e-odd", email="odd@example.com", funnel="friend and advocate", first_name=7)
    event["person"]["share_link"] = "x" * 3000
    assert stack.post_events(event).json() == {"accepted": 1, "duplicates": 0}
    odd = wait_until(lambda: contact(stack, "odd@example.com"), message="opt-in in Listrak")
    assert odd["subscriptionState"] == "Subscribed"
    assert odd["segmentationFieldValues"] == {
        "1001": "+15555555555",
        "1004": "Doe",
        "1005": "friend and advocate",
    }
    (listed,) = stack.admin("GET", "/admin/api/events?email=odd@example.com").json()["events"]
    assert listed["warnings"] == [
        "person.first_name: Not a valid string. (left out)",
        "person.share_link: Longer than maximum length 2048. (left out)",
    ]
    page = stack.admin("GET", f"/live/events/{listed['id']}").text
    assert "person.share_link: Longer than maximum length 2048. (left out)" in page


def test_repeated_event_is_a_duplicate_and_sent_once(stack):
    event = referral_event("e2e-dup")
    assert stack.post_events(event).json() == {"accepted": 1, "duplicates": 0}
    assert stack.post_events([event, event]).json() == {"accepted": 0, "duplicates": 2}
    wait_until(lambda: stack.delivery_states().get("delivered") == 1, message="delivered")
    by_route = stack.part("listrak").state()["requests"]["per_route"]
    assert sum(n for route, n in by_route.items() if route.endswith("/Contact")) == 1


def test_staging_event_without_staging_key_is_skipped_and_never_sent(tmp_path):

    stack = example_stack(
        tmp_path / "s", partner_overrides={"listrak": {"keys": {"production": "listrak-production"}}}
    )
    try:
        stack.start()
        response = stack.post_events(referral_event("stg-1", environment="staging"))
        assert response.status_code == 202
        wait_until(lambda: stack.delivery_states() == {"skipped": 1}, message="planned, skipped")
        assert stack.part("listrak").state()["requests"]["total"] == 0
    finally:
        stack.stop()


def test_metrics_from_gunicorn_include_the_workers_attempts_and_token_fetches(stack):
    assert stack.post_events(referral_event("e2e-m")).status_code == 202
    wait_until(lambda: stack.delivery_states() == {"delivered": 1}, message="delivered")
    import requests

    text = requests.get(f"{stack.base_url}/metrics", timeout=10).text
    assert 'connector_attempt_latency_seconds_count{partner="listrak"} 1.0' in text
    assert 'connector_token_fetches_total{key="listrak-production",result="ok"} 1.0' in text
    assert 'connector_events_received_total{result="accepted",source="extole"} 1.0' in text


def test_gunicorn_refuses_to_boot_on_bad_config_and_says_why(tmp_path):
    import os
    import subprocess
    import sys

    from connector.testing import ROOT, example_env, free_port

    env = {
        **os.environ,
        **example_env(),
        "CONNECTOR_CONFIG_DIR": str(ROOT / "config"),
        "CONNECTOR_DATABASE_URL": f"sqlite:///{tmp_path}/c.db",
        "LISTRAK_AUTH_URL": "http://127.0.0.1:1/OAuth2/Token",
        "LISTRAK_API_URL": "ftp://example.com/email/v1",
        "LISTRAK_SMS_API_URL": "http://127.0.0.1:1/sms/v1",
    }
    env.pop("LISTRAK_CLIENT_SECRET", None)
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{free_port()}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert (
        "config/keys/listrak-production.yaml: key: environment variable LISTRAK_CLIENT_SECRET is not set"
    ) in done.stderr
    assert "config/partners/listrak.yaml: api_url: must be an https:// URL" in done.stderr
