"""The Live View in a real browser (Debian's Chromium through Playwright) against real
processes: log in, watch an event be delivered without reloading and charted, read its
attempt, see a delivery die under a sandbox fault, replay it after the fault clears, see it
delivered."""

from __future__ import annotations

import os
import re

import pytest

from connector.testing import ROOT, example_stack
from plugins.extole.testing import referral_event

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / "test-artifacts" / "live-view.png"
WAIT_MS = 20_000
SETTINGS = {
    "retry_schedule": ["200ms", "300ms", "300ms"],
    "worker": {"poll_interval": "50ms"},
    "breaker": {"threshold": 10, "probe_interval": "1s", "max_probe_interval": "2s"},
}


@pytest.fixture
def stack(tmp_path):
    stack = example_stack(tmp_path / "stack", settings=SETTINGS)
    try:
        yield stack.start()
    finally:
        stack.stop()


MISSING = (
    f"{CHROMIUM} is missing: run scripts/install-browser.sh (installs Debian's chromium "
    "with apt-get) before the browser tests"
)


@pytest.fixture
def page():
    """A headless Chromium page, or None when Debian's Chromium is not installed (the test
    then fails saying how to install it; it never downloads a browser)."""
    if not os.access(CHROMIUM, os.X_OK):
        yield None
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            yield context.new_page()
        finally:
            browser.close()


def row(page, event_id: str):
    return page.locator(f'#live tr[data-event="{event_id}"]')


def test_live_view_follows_a_delivery_through_failure_and_replay(stack, page):
    assert page is not None, MISSING
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)

    # Log in through the form.
    page.goto(f"{stack.base_url}/live")
    expect(page).to_have_url(re.compile(r"/live/login\?next=/live$"))
    page.fill("#token", stack.admin_token)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{stack.base_url}/live")
    page.evaluate("window.notReloaded = true")

    # An event appears as delivered without a reload.
    assert (
        stack.post_events(
            [
                referral_event("ok-1", email="Ada@example.com"),
                referral_event("ok-2", type="opt_out", email="grace@example.com"),
                referral_event("ok-3", email="linus@example.org", first_name="Linus"),
            ]
        ).status_code
        == 202
    )
    expect(row(page, "ok-1").locator(".outcome")).to_have_text("delivered")
    expect(row(page, "ok-1")).to_contain_text("ada@example.com")
    expect(row(page, "ok-1")).to_contain_text("201")
    expect(page.locator(".count.o-delivered b")).to_have_text("3")
    assert page.evaluate("window.notReloaded") is True

    # The charts show them: three delivered this minute, their latency, the worker's purge.
    outcomes = page.locator("#chart-outcomes")
    expect(outcomes.locator('[data-outcome="delivered"] b')).to_have_text("3")
    expect(outcomes.locator('rect[data-series="delivered"]')).to_have_attribute("data-count", "3")
    expect(page.locator('#chart-latency [data-series="requests"]')).to_contain_text("3 requests")
    expect(page.locator('#chart-latency circle[data-series="p95"]')).to_have_count(1)
    expect(page.locator("#last-purge")).to_contain_text("Last purge")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT.with_name("live-view-charts.png")))

    # Its detail: the attempt with the redacted request and the response.
    row(page, "ok-1").get_by_role("link", name="ok-1").click()
    expect(page.locator("h1")).to_contain_text("ok-1")
    page.get_by_text("request / response").first.click()
    exchange = page.locator("pre.http").first
    expect(exchange).to_contain_text("POST http://127.0.0.1:")
    expect(exchange).to_contain_text("Authorization: Bearer ***")
    expect(exchange).to_contain_text('"emailAddress": "ada@example.com"')
    expect(page.locator("pre.http").nth(1)).to_contain_text("HTTP 201")

    # The partner fails every request: the next delivery retries, then dies.
    page.get_by_role("link", name="← all events").click()
    page.evaluate("window.notReloaded = true")
    assert stack.part("listrak").request("POST", "/_sandbox/faults", json={"mode": "500"}).status_code == 201
    assert stack.post_events(referral_event("bad-1", email="hopper@example.com")).ok
    expect(row(page, "bad-1").locator(".outcome")).to_have_text("dead")
    expect(row(page, "bad-1")).to_contain_text("ERROR_UNHANDLED_EXCEPTION")
    expect(page.locator(".count.o-dead b")).to_have_text("1")
    expect(page.locator('#chart-outcomes [data-outcome="dead"] b')).to_have_text("1")
    expect(page.locator('#chart-outcomes [data-outcome="retrying"] b')).to_have_text("3")
    assert page.evaluate("window.notReloaded") is True

    # The fault clears; replay from the detail page; it is delivered.
    assert stack.part("listrak").request("DELETE", "/_sandbox/faults").ok
    row(page, "bad-1").get_by_role("link", name="bad-1").click()
    expect(page.locator(".delivery .outcome").first).to_have_text("dead")
    expect(page.locator(".attempts tbody tr")).to_have_count(4)
    page.get_by_role("button", name=re.compile(r"Replay delivery \d+")).click()
    expect(page.locator(".flash")).to_contain_text("queued again")
    expect(page.locator(".delivery h2 .outcome")).to_have_text("delivered")
    expect(page.locator(".attempts tbody tr")).to_have_count(5)
    expect(page.get_by_role("button", name=re.compile("Replay"))).to_have_count(0)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.get_by_text("request / response").first.click()
    page.screenshot(path=str(SCREENSHOT.with_name("live-view-event.png")), full_page=True)

    # A refused staging key shows as a banner on the list.
    page.get_by_role("link", name="← all events").click()
    stack.part("listrak").request("POST", "/_sandbox/faults", json={"mode": "refuse_credentials"})
    assert stack.post_events(referral_event("stage-1", email="kay@example.com", environment="staging")).ok
    expect(row(page, "stage-1").locator(".outcome")).to_have_text("paused")
    expect(page.locator("#breakers")).to_contain_text("Key paused: listrak-staging")
    expect(row(page, "bad-1").locator(".outcome")).to_have_text("delivered")

    page.screenshot(path=str(SCREENSHOT), full_page=True)
