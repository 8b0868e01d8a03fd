"""The Live View's charts: inline SVG drawn on the server (no script, no inline style), fed
by the per-minute rollups for the last hour, day or week, overall or for one partner; the
same figures as JSON at /admin/api/overview; and the last purge on the page."""

from __future__ import annotations

import re

import pytest

from connector.delivery.worker import Worker
from connector.outbox import pollers, retention
from connector.web import charts
from connector.web.overview import frame, overview
from plugins.extole.testing import referral_event
from plugins.listrak.testing import API

BEARER = {"Authorization": "Bearer test-admin-token"}
CONTACT = f"{API}/List/12345/Contact"
HOUR = 1_800_000_000.0  # a whole hour, so slots start where the test expects


def counts_in(svg: str, series: str) -> list[int]:
    return [int(n) for n in re.findall(rf'data-series="{series}" data-count="(\d+)"', svg)]


def test_stacked_bars_draw_each_outcome_of_each_slot_with_its_count():
    starts = [HOUR + 60 * i for i in range(3)]
    svg = charts.chart(
        "outcomes",
        starts,
        60.0,
        stacks=[{"delivered": 3, "dead": 1}, {}, {"delivered": 2}],
        order=("delivered", "dead"),
    )
    assert 'data-chart="outcomes" data-total="6"' in svg
    assert counts_in(svg, "delivered") == [3, 2]
    assert counts_in(svg, "dead") == [1]
    assert "<title>11-22 " not in svg
    assert "<title>08:00 UTC: delivered 3, dead 1</title>" in svg
    assert ">5</text>" in svg
    assert ">2.5</text>" in svg


def test_a_line_breaks_where_a_slot_has_no_value():
    starts = [HOUR + 60 * i for i in range(5)]
    svg = charts.chart("latency", starts, 60.0, lines={"p95": [10.0, 12.0, None, 30.0, 31.0]}, unit=" ms")
    assert svg.count('<polyline class="line line-p95"') == 2
    assert re.findall(r'data-series="p95" data-value="([\d.]+)"', svg) == ["10.0", "12.0", "30.0", "31.0"]
    assert "08:03 UTC: p95 30 ms" in svg


def test_an_empty_window_says_so():
    svg = charts.chart("queue", [HOUR], 60.0, stacks=[{}], order=("waiting",))
    assert "nothing in this window" in svg


@pytest.mark.parametrize(("value", "top"), [(0, 1), (3, 5), (7, 10), (120, 200), (2400, 2500), (0.3, 0.5)])
def test_the_axis_ends_at_a_round_number(value, top):
    assert charts.nice_max(value) == top


@pytest.mark.parametrize(("window", "step", "slots"), [("1h", 60, 60), ("24h", 900, 96), ("7d", 7200, 84)])
def test_windows_are_whole_slots_ending_with_the_current_one(window, step, slots):
    since, got_step, starts = frame(window, HOUR + 30)
    assert (got_step, len(starts), starts[-1], since) == (step, slots, HOUR, HOUR - step * (slots - 1))


@pytest.fixture
def delivered(post_events, runtime, requests_mock, listrak_token, clock):
    """Two opt-ins delivered and one dead, within one minute."""
    clock.at = HOUR + 5

    def answer(request, context):
        context.status_code = 400 if request.json()["emailAddress"] == "bad@example.com" else 201
        return {"status": context.status_code}

    requests_mock.post(CONTACT, json=answer)
    events = [
        referral_event("c-1", email="a@example.com"),
        referral_event("c-2", email="b@example.com"),
        referral_event("c-3", email="bad@example.com"),
    ]
    assert post_events(events).status_code == 202
    assert Worker(runtime).run_once() == 3
    return runtime


def test_the_live_view_charts_the_deliveries_it_made(delivered, client):
    page = client.get("/live", headers=BEARER).get_data(as_text=True)
    outcomes = page[page.index('data-chart="outcomes"') :]
    outcomes = outcomes[: outcomes.index("</svg>")]
    assert (counts_in(outcomes, "delivered"), counts_in(outcomes, "dead")) == ([2], [1])
    assert '<li class="key key-delivered" data-outcome="delivered">delivered <b>2</b></li>' in page
    assert '<li class="key key-dead" data-outcome="dead">dead <b>1</b></li>' in page
    assert 'data-chart="latency"' in page
    assert 'data-series="requests">3 requests' in page


def test_charts_follow_the_partner_filter_and_the_window(delivered, client):
    other = client.get("/live?partner=segment&window=24h", headers=BEARER).get_data(as_text=True)
    assert 'id="charts" data-window="24h"' in other
    assert "segment · last 24 hours" in other
    assert 'data-chart="outcomes" data-total="0"' in other
    assert 'href="/live?partner=segment&amp;window=7d"' in other  # window links keep the filters
    assert '<input type="hidden" name="window" value="24h">' in other
    refused = client.get("/live?window=2d", headers=BEARER)
    assert (refused.status_code, "window: one of 1h, 24h, 7d" in refused.get_data(as_text=True)) == (
        400,
        True,
    )


def test_the_page_keeps_its_policy_no_inline_style_no_inline_script(delivered, client):
    response = client.get("/live", headers=BEARER)
    page = response.get_data(as_text=True)
    assert "style-src 'self'" in response.headers["Content-Security-Policy"]
    assert " style=" not in page
    assert "<style" not in page
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/live/static/live.js" defer>']


def test_pull_source_charts_show_each_poll_and_the_last_good_one(activity_config, runtime, client, clock):
    clock.at = HOUR + 5
    pollers.acquire(runtime.engine, "listrak-activity", "w1", 60.0)
    with runtime.engine.begin() as conn:
        pollers.save_cursor(conn, "listrak-activity", "w1", {}, rows=120, events=30)
    pollers.finish(runtime.engine, "listrak-activity", "w1", clock.at + 10)
    page = client.get("/live", headers=BEARER).get_data(as_text=True)
    assert 'data-chart="poll-listrak-activity"' in page
    assert counts_in(page, "rows") == [120]
    assert 'data-series="events" data-value="30.0"' in page
    assert "last good poll <b" in page
    assert "08:00:05 UTC" in page


def test_the_last_purge_is_shown_with_what_it_removed(delivered, client, clock):
    clock.advance(31 * 86400)
    retention.run(delivered.engine, {"delivered": 30 * 86400.0, "dead": 7 * 86400.0}, "w1", 60.0, 3600.0)
    page = client.get("/live", headers=BEARER).get_data(as_text=True)
    assert re.search(
        r"Last purge <span[^>]*>[^<]+ UTC</span>:\s+removed 3 deliveries, 3 attempts, 3 events", page
    )
    summary = client.get("/admin/api/summary", headers=BEARER).json["last_purge"]
    assert (summary["removed"]["deliveries"], summary["running"], summary["error"]) == (3, False, None)


def test_the_overview_is_json_too(delivered, client):
    figures = client.get("/admin/api/overview?window=1h", headers=BEARER).json
    assert (figures["window"], figures["step"], len(figures["starts"])) == ("1h", 60.0, 60)
    assert figures["stacks"][-1] == {"delivered": 2, "dead": 1}
    assert figures["totals"]["delivered"] == 2
    assert client.get("/admin/api/overview?window=1d", headers=BEARER).status_code == 400
    assert client.get("/admin/api/overview").status_code == 401


def test_overview_reads_only_rollups(delivered):
    figures = overview(delivered.engine, "7d", "listrak", [], at=HOUR + 5)
    assert figures["totals"]["delivered"] == 2
    assert figures["latency_window"]["requests"] == 3
