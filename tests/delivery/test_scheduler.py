"""Pull sources: polled on schedule by one worker at a time, pages stored with their cursor in
one transaction, failures recorded and retried, and their events delivered like any other."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from connector.cli import main as cli
from connector.config import ConfigError
from connector.contract import PollFailed
from connector.delivery.scheduler import Scheduler
from connector.delivery.worker import Worker
from connector.outbox import pollers
from connector.outbox.engine import now, reading
from connector.outbox.tables import poll_runs
from connector.outbox.tables import pollers as pollers_table
from connector.runtime import Runtime
from connector.testing.store import after_planning, stored_deliveries, stored_events
from tests.config_files import update_yaml
from tests.delivery.pull_plugin import (
    SINK_URL,
    RowsSource,
    SendBatch,
    registry_with,
    write_config,
)


@pytest.fixture
def source():
    return RowsSource()


@pytest.fixture
def pull_runtime(config_dir, database_url, source):
    write_config(config_dir)
    update_yaml(config_dir / "connector.yaml", set={"worker.batch_window": "0s"})
    return Runtime.build(str(config_dir), database_url, registry=registry_with(source))


def rows(*ids):
    return [{"id": i, "email": f"r{i}@example.com"} for i in ids]


def state(runtime) -> dict:
    (found,) = pollers.states(runtime.engine)
    return found


def test_first_poll_stores_every_page_and_the_cursor(pull_runtime, source, clock):
    source.rows = rows(1, 2, 3, 4, 5)
    report = Scheduler(pull_runtime, "w1").poll("activity")
    assert (report.ok, report.rows_read, report.events, report.accepted) == (True, 5, 5, 5)
    assert [e["event_id"] for e in stored_events(after_planning(pull_runtime))] == [
        f"row-{i}" for i in range(1, 6)
    ]
    assert [d["partner_id"] for d in stored_deliveries(after_planning(pull_runtime))] == ["sink"] * 5
    polled = state(pull_runtime)
    assert polled["cursor"] == '{"after":5}'
    assert (polled["rows_read"], polled["events_produced"], polled["failures"]) == (5, 5, 0)
    assert (polled["lease_owner"], polled["last_ok_at"]) == (None, clock.at)


def test_next_poll_starts_after_the_cursor_and_adds_only_new_rows(pull_runtime, source):
    source.rows = rows(1, 2, 3)
    scheduler = Scheduler(pull_runtime, "w1")
    scheduler.poll("activity")
    quiet = scheduler.poll("activity")
    assert (quiet.rows_read, quiet.accepted) == (0, 0)
    source.rows += rows(4)
    later = scheduler.poll("activity")
    assert (later.rows_read, later.accepted) == (1, 1)
    assert source.calls == [None, {"after": 3}, {"after": 3}]
    assert len(stored_events(after_planning(pull_runtime))) == 4


def test_rows_read_twice_are_stored_once(pull_runtime, source):
    """A re-read (a lookback window, or a poll that died before its cursor moved) adds
    nothing: the events' ids are already stored."""
    source.rows = rows(1, 2)
    scheduler = Scheduler(pull_runtime, "w1")
    scheduler.poll("activity")
    with pull_runtime.engine.begin() as conn:
        conn.execute(update(pollers_table).values(cursor=None))
    again = scheduler.poll("activity")
    assert (again.rows_read, again.events, again.accepted) == (2, 2, 0)
    assert len(stored_deliveries(after_planning(pull_runtime))) == 2


def test_failed_poll_keeps_stored_pages_and_resumes_after_them(pull_runtime, source):
    source.rows = rows(1, 2, 3, 4, 5)
    source.fail_after = 1
    scheduler = Scheduler(pull_runtime, "w1")
    failed = scheduler.poll("activity")
    assert (failed.ok, failed.error, failed.accepted) == (False, "partner answered 503", 2)
    polled = state(pull_runtime)
    assert (polled["cursor"], polled["failures"]) == ('{"after":2}', 1)
    assert polled["last_error"] == "partner answered 503"
    assert polled["last_ok_at"] is None
    assert polled["next_poll_at"] >= now() + 59  # the next interval, not at once

    source.fail_after = None
    resumed = scheduler.poll("activity")
    assert (resumed.ok, resumed.accepted) == (True, 3)
    assert source.calls[-1] == {"after": 2}
    assert state(pull_runtime)["failures"] == 0


PAGES_URL = "https://rows.example.test/pages"


def test_a_poll_stops_early_after_its_page_budget_and_the_next_one_goes_on(
    pull_runtime, source, config_dir, database_url, requests_mock
):
    update_yaml(config_dir / "sources" / "activity.yaml", set={"max_pages_per_poll": 2})
    runtime = Runtime.build(str(config_dir), database_url, registry=registry_with(source))
    requests_mock.get(PAGES_URL, json={})
    source.rows, source.page_url = rows(1, 2, 3, 4, 5), PAGES_URL
    first = Scheduler(runtime, "w1").poll("activity")
    assert (first.ok, first.rows_read, first.accepted) == (True, 4, 4)
    assert first.stopped_early == (
        "stopped early: read 2 pages, the most one poll may (max_pages_per_poll); "
        "the next poll goes on from there"
    )
    assert (state(runtime)["last_note"], state(runtime)["last_error"]) == (first.stopped_early, None)
    second = Scheduler(runtime, "w1").poll("activity")
    assert (second.ok, second.rows_read, second.stopped_early) == (True, 1, None)
    assert state(runtime)["last_note"] is None
    assert len(stored_events(after_planning(runtime))) == 5
    assert requests_mock.call_count == 3


def test_endless_cursors_cannot_hold_a_worker(pull_runtime, source, requests_mock):
    requests_mock.get(PAGES_URL, json={})
    source.endless, source.page_url = True, PAGES_URL
    report = Scheduler(pull_runtime, "w1").poll("activity")
    assert (report.ok, report.rows_read) == (True, 400)  # the default budget: 200 pages
    assert report.stopped_early.startswith("stopped early: read 200 pages")
    assert requests_mock.call_count == 200


def test_a_budget_too_small_for_one_page_fails_the_poll_naming_the_setting(
    pull_runtime, source, config_dir, database_url, requests_mock
):
    update_yaml(config_dir / "sources" / "activity.yaml", set={"max_pages_per_poll": 2})
    runtime = Runtime.build(str(config_dir), database_url, registry=registry_with(source))
    requests_mock.get(PAGES_URL, json={})
    source.rows, source.page_url, source.requests_per_page = rows(1, 2, 3), PAGES_URL, 3
    report = Scheduler(runtime, "w1").poll("activity")
    assert (report.ok, report.stopped_early, report.rows_read) == (False, None, 0)
    assert report.error == (
        "read 2 pages, the most one poll may (max_pages_per_poll) without storing a page: this "
        "source needs more pages per poll than max_pages_per_poll allows (raise it)"
    )
    assert state(runtime)["failures"] == 1


def test_max_pages_per_poll_is_at_least_one(config_dir, source, database_url):
    write_config(config_dir)
    update_yaml(config_dir / "sources" / "activity.yaml", set={"max_pages_per_poll": 0})
    with pytest.raises(
        ConfigError, match=r"sources/activity.yaml: max_pages_per_poll: Must be greater than or equal to 1"
    ):
        Runtime.build(str(config_dir), database_url, registry=registry_with(source))


def test_retry_after_from_the_partner_pushes_the_next_poll_out(pull_runtime, source):
    source.rows = rows(1, 2, 3)
    source.fail_after = 0
    source.failure = PollFailed("HTTP 429", retry_after=3600)
    Scheduler(pull_runtime, "w1").poll("activity")
    assert state(pull_runtime)["next_poll_at"] >= now() + 3590


def test_a_plugin_bug_is_a_failed_poll_not_a_crash(pull_runtime, source):
    source.rows = rows(1)
    source.fail_after = 0
    source.failure = KeyError("sink-token-value")
    report = Scheduler(pull_runtime, "w1").poll("activity")
    assert report.error == "KeyError: '***'"  # secrets redacted
    assert state(pull_runtime)["lease_owner"] is None


def test_one_poller_per_source_across_workers(pull_runtime, source):
    source.rows = rows(1, 2)
    assert pollers.acquire(pull_runtime.engine, "activity", "w1", lease=60) is not None
    assert Scheduler(pull_runtime, "w2").poll("activity") is None
    assert pollers.holder(pull_runtime.engine, "activity") == "w1"
    pollers.finish(pull_runtime.engine, "activity", "w1", next_poll_at=0.0)
    assert Scheduler(pull_runtime, "w2").poll("activity").ok


def test_expired_lease_is_taken_over_and_the_old_poller_loses_its_page(pull_runtime, source):
    source.rows = rows(1, 2, 3, 4)
    first = Scheduler(pull_runtime, "w1")
    taken = []

    def take_over_after_first_page(conn, source_id, owner, cursor, rows_read, events, summary=None):
        if not taken:  # another worker takes the lease between two pages
            conn.execute(update(pollers_table).values(lease_owner="w2"))
            taken.append(True)
        return save(conn, source_id, owner, cursor, rows_read, events, summary)

    save = pollers.save_cursor
    pollers.save_cursor = take_over_after_first_page
    try:
        report = first.poll("activity")
    finally:
        pollers.save_cursor = save
    assert report.lost
    assert report.accepted == 0
    assert stored_events(after_planning(pull_runtime)) == []  # the page was rolled back with the cursor


def test_due_polls_wait_for_their_interval(pull_runtime, source):
    source.rows = rows(1)
    scheduler = Scheduler(pull_runtime, "w1")
    assert [r.source_id for r in scheduler.poll_due()] == ["activity"]
    assert scheduler.poll_due() == []  # polled a moment ago, interval 1m


def test_worker_polls_due_sources_and_delivers_their_events_in_a_batch(pull_runtime, source, requests_mock):
    sink = requests_mock.post(SINK_URL, status_code=200, json={})
    source.rows = rows(1, 2, 3)
    assert Worker(pull_runtime).run_once() == 3
    (request,) = sink.request_history
    assert request.json() == {"batch": [{"id": 1}, {"id": 2}, {"id": 3}]}
    assert request.headers["Authorization"] == "Bearer sink-token-value"
    assert {d["state"] for d in stored_deliveries(after_planning(pull_runtime))} == {"delivered"}


def test_refused_delivery_is_dead_and_the_rest_of_its_batch_is_sent(
    pull_runtime, source, requests_mock, monkeypatch
):
    sink = requests_mock.post(SINK_URL, status_code=200, json={})
    monkeypatch.setattr(SendBatch, "too_big", {2})
    source.rows = rows(1, 2, 3)
    Worker(pull_runtime).run_once()
    assert [r.json() for r in sink.request_history] == [{"batch": [{"id": 1}, {"id": 3}]}]
    assert [(d["state"], d["reason"]) for d in stored_deliveries(after_planning(pull_runtime))] == [
        ("delivered", None),
        ("dead", "over the size limit"),
        ("delivered", None),
    ]


def test_action_splits_a_batch_into_requests(pull_runtime, source, requests_mock, monkeypatch):
    sink = requests_mock.post(SINK_URL, status_code=200, json={})
    monkeypatch.setattr(SendBatch, "per_request", 2)
    source.rows = rows(1, 2, 3)
    Worker(pull_runtime).run_once()
    assert [r.json() for r in sink.request_history] == [
        {"batch": [{"id": 1}, {"id": 2}]},
        {"batch": [{"id": 3}]},
    ]


def test_poll_command_polls_now(pull_runtime, source, config_dir, database_url, monkeypatch, capsys):
    source.rows = rows(1, 2, 3)
    monkeypatch.setattr("connector.cli.runtimes.Runtime.build", lambda *a, **k: pull_runtime)
    assert cli(["poll", "activity"]) == 0
    assert capsys.readouterr().out == "polled activity: 3 rows, 3 events, 3 new\n"
    assert cli(["poll", "activity"]) == 0  # not due yet, but `poll` polls now
    assert cli(["poll", "extole"]) == 2
    assert "no pull source 'extole' (known: activity)" in capsys.readouterr().err


def test_pull_source_needs_no_auth_and_polls_at_most_every_second(config_dir, source):
    write_config(config_dir)
    (config_dir / "sources" / "activity.yaml").write_text("plugin: rows\npoll_interval: 500ms\n")
    with pytest.raises(ConfigError) as caught:
        Runtime.build(str(config_dir), "sqlite://", registry=registry_with(source))
    assert caught.value.problems == ["config/sources/activity.yaml: poll_interval: must be at least 1s"]


def test_metrics_show_each_pull_sources_latest_poll(pull_runtime, source, clock):
    from connector.app import create_app

    source.rows = rows(1, 2, 3)
    Scheduler(pull_runtime, "w1").poll("activity")
    client = create_app({"TESTING": True}, runtime=pull_runtime).test_client()
    scraped = client.get("/metrics").get_data(as_text=True).splitlines()
    assert 'connector_poll_rows_read{source="activity"} 3.0' in scraped
    assert 'connector_poll_events_produced{source="activity"} 3.0' in scraped
    assert 'connector_poll_consecutive_failures{source="activity"} 0.0' in scraped
    (last_ok,) = [
        line
        for line in scraped
        if line.startswith('connector_poll_last_success_timestamp_seconds{source="activity"}')
    ]
    assert float(last_ok.rsplit(" ", 1)[1]) == clock.at


def test_live_view_and_summary_show_each_pull_sources_latest_poll(pull_runtime, source):
    from connector.app import create_app

    source.rows = rows(1, 2)
    source.fail_after = 0
    Scheduler(pull_runtime, "w1").poll("activity")
    client = create_app({"TESTING": True}, runtime=pull_runtime).test_client()
    admin = {"Authorization": "Bearer test-admin-token"}
    (shown,) = client.get("/admin/api/summary", headers=admin).json["pull_sources"]
    assert {
        k: shown[k]
        for k in (
            "source",
            "rows_read",
            "events_produced",
            "failures",
            "last_error",
            "last_ok_at",
            "polling_now",
        )
    } == {
        "source": "activity",
        "rows_read": 0,
        "events_produced": 0,
        "failures": 1,
        "last_error": "partner answered 503",
        "last_ok_at": None,
        "polling_now": None,
    }
    page = client.get("/live", headers=admin).get_data(as_text=True)
    assert 'data-source="activity"' in page
    assert "1 failed in a row: partner answered 503" in page


def test_live_view_and_summary_say_when_a_poll_stopped_early(pull_runtime, source, requests_mock):
    from connector.app import create_app

    requests_mock.get(PAGES_URL, json={})
    source.endless, source.page_url = True, PAGES_URL
    report = Scheduler(pull_runtime, "w1").poll("activity")
    client = create_app({"TESTING": True}, runtime=pull_runtime).test_client()
    admin = {"Authorization": "Bearer test-admin-token"}
    (shown,) = client.get("/admin/api/summary", headers=admin).json["pull_sources"]
    assert (shown["stopped_early"], shown["last_error"]) == (report.stopped_early, None)
    page = client.get("/live", headers=admin).get_data(as_text=True)
    assert f'<span class="warning">{report.stopped_early}</span>' in page
    assert '<span class="warning">1 stopped early</span>' in page


def test_a_polls_summary_is_its_last_pages_and_shows_in_the_live_view_and_history(pull_runtime, source):
    from connector.app import create_app

    source.rows = rows(1, 2, 3, 4, 5)
    source.summaries = {0: "2 of 5 rows", 1: "4 of 5 rows"}  # the third page has none: the second's stays
    Scheduler(pull_runtime, "w1").poll("activity")
    assert state(pull_runtime)["summary"] == "4 of 5 rows"
    with reading(pull_runtime.engine) as conn:
        assert conn.execute(select(poll_runs.c.summary)).scalars().all() == ["4 of 5 rows"]
    client = create_app({"TESTING": True}, runtime=pull_runtime).test_client()
    admin = {"Authorization": "Bearer test-admin-token"}
    assert client.get("/admin/api/summary", headers=admin).json["pull_sources"][0]["summary"] == "4 of 5 rows"
    assert '<td class="message">4 of 5 rows</td>' in client.get("/live", headers=admin).get_data(as_text=True)
    source.summaries = {}
    Scheduler(pull_runtime, "w1").poll("activity")  # a poll without a summary clears the last one's
    assert state(pull_runtime)["summary"] is None


def test_batch_claims_are_bounded_whatever_threads_times_batch_size(
    pull_runtime, source, requests_mock, monkeypatch
):
    """Claiming threads × max_batch rows at once could pass the drivers' 65,535 bound
    parameters; a round claims at most MAX_BATCH_ROWS and the rest waits for the next."""
    from connector.delivery import worker as worker_module

    sink = requests_mock.post(SINK_URL, status_code=200, json={})
    monkeypatch.setattr(worker_module, "MAX_BATCH_ROWS", 3)
    monkeypatch.setattr(SendBatch, "per_request", 2)
    source.rows = rows(1, 2, 3, 4, 5)
    worker = Worker(pull_runtime)
    worker.scheduler.poll_due()
    first_round = worker.claim_groups(32)
    assert [[d.spec["id"] for d in group] for group in first_round] == [[1, 2], [3]]
    for group in first_round:
        worker.deliver_group(group)
    assert worker.run_once() == 2
    assert [r.json()["batch"] for r in sink.request_history] == [
        [{"id": 1}, {"id": 2}],
        [{"id": 3}],
        [{"id": 4}, {"id": 5}],
    ]
