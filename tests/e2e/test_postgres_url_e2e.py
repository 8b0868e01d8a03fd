"""The real processes on a plain `postgresql://` URL (no driver named), as DESIGN promises:
gunicorn and a worker start on it with the shipped driver and an opt-in reaches the sandbox."""

from sqlalchemy.engine import make_url

from connector.testing import example_stack, wait_until
from plugins.extole.testing import referral_event


def test_plain_postgresql_url_carries_an_opt_in_to_the_sandbox(tmp_path, postgres_url):
    plain = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    stack = example_stack(tmp_path / "stack", database_url=plain)
    try:
        stack.start(workers=1)
        response = stack.post_events([referral_event("pg-plain-1", email="plain@example.com")])
        assert response.status_code == 202
        wait_until(
            lambda: stack.delivery_states() == {"delivered": 1}, timeout=30, message="the opt-in delivered"
        )
        contacts = stack.part("listrak").state()["lists"]["12345"]["contacts"]
    finally:
        stack.stop()
    assert contacts["plain@example.com"]["subscriptionState"] == "Subscribed"
