"""Admin access on real processes (gunicorn with two workers, Debian's Chromium): the session
cookie a browser keeps over http://127.0.0.1 is Secure, HttpOnly and SameSite=Strict, a copy of
it stops working once the browser logs out, and the eleventh wrong Bearer within a minute is a
429 with Retry-After whichever worker answers."""

from __future__ import annotations

import math
import re
import time

import pytest
import requests

from connector.testing import example_stack
from tests.e2e.test_live_view_browser import MISSING, page  # noqa: F401 - the page fixture

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = example_stack(tmp_path_factory.mktemp("stack"), web_workers=2)
    try:
        yield stack.start(workers=0)
    finally:
        stack.stop()


def test_a_logged_out_session_cookie_opens_nothing(stack, page):  # noqa: F811
    assert page is not None, MISSING
    from playwright.sync_api import expect

    page.goto(f"{stack.base_url}/live/login")
    page.fill("#token", stack.admin_token)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{stack.base_url}/live")
    (cookie,) = page.context.cookies()
    assert (cookie["name"], cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (
        "connector_session",
        True,
        True,
        "Strict",
    )

    copy = page.context.browser.new_context()
    copy.add_cookies([cookie])
    thief = copy.new_page()
    thief.goto(f"{stack.base_url}/live")
    expect(thief).to_have_url(f"{stack.base_url}/live")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{stack.base_url}/live/login")
    thief.goto(f"{stack.base_url}/live")
    expect(thief).to_have_url(re.compile(r"/live/login\?next=/live$"))
    copy.close()


def test_the_eleventh_wrong_bearer_is_refused_by_every_worker(stack):
    wrong = {"Authorization": "Bearer wrong-token-wrong-token"}
    started = time.monotonic()
    statuses = [
        requests.get(f"{stack.base_url}/admin/api/summary", headers=wrong, timeout=5).status_code
        for _ in range(10)
    ]
    assert statuses == [401] * 10
    refused = [
        requests.get(f"{stack.base_url}/admin/api/summary", headers=wrong, timeout=5) for _ in range(4)
    ]
    assert [r.status_code for r in refused] == [429] * 4
    # The window ends 60 s after the first failure: at most that far, at least that minus the time taken.
    took = math.ceil(time.monotonic() - started)
    assert all(60 - took <= int(r.headers["Retry-After"]) <= 60 for r in refused)
