"""A person's consent story in a real browser (Debian's Chromium through Playwright) against real
processes: Jane's email and SMS consent, one SMS opt-in arriving after a newer opt-out; from
her event's page to her number's story, which shows her events in event-time order with each
outcome (the late one superseded by the opt-out, named), where each list stands in the sandbox
now and why; the lookup box finds her by the number as she typed it."""

from __future__ import annotations

import re

import pytest

from connector.testing import example_stack, wait_until
from plugins.extole.testing import referral_event
from tests.e2e.test_live_view_browser import (  # noqa: F401 - the page fixture
    MISSING,
    SCREENSHOT,
    SETTINGS,
    WAIT_MS,
    page,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
PHONE = "15555555555"


@pytest.fixture
def stack(tmp_path):
    stack = example_stack(tmp_path / "stack", settings=SETTINGS)
    try:
        yield stack.start()
    finally:
        stack.stop()


def sms(event_id: str, type: str, hour: int) -> dict:
    return referral_event(
        event_id, type, event_time=f"2026-11-22T0{hour}:00:00Z", phone_number="+1 (555) 555-5555"
    )


def test_the_story_of_a_number_reads_right_in_a_browser(stack, page):  # noqa: F811
    assert page is not None, MISSING
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    assert stack.post_events(
        [referral_event("e-1", event_time="2026-11-22T01:00:00Z"), sms("s-1", "sms_opt_in", 2)]
    ).ok
    wait_until(lambda: stack.delivery_states() == {"delivered": 2}, message="the opt-ins delivered")
    assert stack.post_events(sms("s-3", "sms_opt_out", 4)).ok
    wait_until(lambda: stack.delivery_states() == {"delivered": 3}, message="the SMS opt-out delivered")
    assert stack.post_events(sms("s-2", "sms_opt_in", 3)).ok  # late: older than the opt-out
    wait_until(lambda: stack.delivery_states().get("superseded") == 1, message="the late opt-in superseded")

    page.goto(f"{stack.base_url}/live")
    page.fill("#token", stack.admin_token)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{stack.base_url}/live")

    # From the late opt-in's event page to the number's story.
    page.locator('#live tr[data-event="s-2"]').get_by_role("link", name="s-2").click()
    expect(page.locator("h1")).to_contain_text("s-2")
    page.locator(".links").get_by_role("link", name=PHONE).click()
    expect(page).to_have_url(f"{stack.base_url}/live/contacts/{PHONE}")
    expect(page.locator("h1")).to_contain_text(f"Consent story of {PHONE}")

    # Her events, oldest first, each change with its outcome.
    rows = page.locator("#story tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.locator(".event-id")).to_have_text(["e-1", "s-1", "s-2", "s-3"])
    expect(rows.locator(".outcome")).to_have_text(["delivered", "delivered", "superseded", "delivered"])
    late = page.locator('#story tr[data-event="s-2"]')
    expect(late).to_contain_text(
        "superseded by event s-3 (sms_opt_out at 2026-11-22T04:00:00.000Z), which is newer: not sent"
    )
    expect(page.locator('#story tr[data-event="s-1"]')).to_contain_text(
        "new to the sender code: created and subscribed"
    )

    # Where she stands: the sandbox read now agrees with the connector's last word, per list.
    sms_list = page.locator('#standing tr[data-place="SMS list 456 (sender code 123)"]')
    expect(sms_list.locator(".held")).to_have_text("Unsubscribed")
    expect(sms_list.locator(".verdict")).to_contain_text(
        "The connector last asked to unsubscribe (sms_opt_out s-3"
    )
    expect(sms_list.locator(".verdict")).to_contain_text("The partner agrees: Unsubscribed.")
    email_list = page.locator('#standing tr[data-place="email list 12345"]')
    expect(email_list.locator(".held")).to_have_text("Subscribed")
    expect(page.locator('#partner-now tr[data-address="jane.doe@example.com"]').first).to_contain_text(
        "Subscribed"
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT.with_name("contact-story.png")), full_page=True)

    # A superseded row links to the event that won.
    late.get_by_role("link", name="see it").click()
    expect(page).to_have_url(re.compile(r"#change-\d+$"))

    # The lookup box takes the number as she typed it; her email's story has the SMS events too.
    page.get_by_placeholder("email address or phone number").fill("+1 (555) 555-5555")
    page.get_by_role("button", name="Show their story").click()
    expect(page).to_have_url(f"{stack.base_url}/live/contacts/{PHONE}")
    page.locator("#related").get_by_role("link", name="jane.doe@example.com").click()
    expect(page.locator("#story tbody tr .event-id")).to_have_text(["e-1", "s-1", "s-2", "s-3"])
