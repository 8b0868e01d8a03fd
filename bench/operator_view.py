"""The operator's view at scale: a SQLite store seeded with 1,000,000 events, deliveries and
attempts over 40 days (and the rollups, queue samples and polls of the last week), then

- the Live View and the admin API timed (each page 5 times: the first, then the slowest of
  the other 4), in every chart window;
- /metrics: the first scrape, and a second within the cache's lifetime, with the SQL
  statements each ran;
- the purge of everything older than a day, with its transactions (count, p99, the longest)
  while intake requests are answered (each one's time).

Prints JSON. `--rows N` seeds fewer; `--screenshot PATH` also saves the Live View (24 h) as
Chromium shows it (when /usr/bin/chromium is there)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import event  # noqa: E402

from connector.app import create_app  # noqa: E402
from connector.outbox import retention  # noqa: E402
from connector.runtime import Runtime  # noqa: E402
from connector.testing import ROOT, free_port  # noqa: E402
from connector.testing.history import seed_history  # noqa: E402
from plugins.extole import testing as extole_testing  # noqa: E402
from plugins.extole.testing import referral_event, sign  # noqa: E402
from plugins.listrak import testing as listrak_testing  # noqa: E402
from plugins.segment import testing as segment_testing  # noqa: E402

TOKEN = "bench-admin-token-0123456789"
PAGES = [
    "/live",
    "/live?partial=1",
    "/live?window=24h",
    "/live?window=7d",
    "/live?window=7d&partner=listrak",
    "/admin/api/summary",
    "/admin/api/overview?window=7d",
]


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--screenshot")
    args = parser.parse_args()
    for name, value in {
        **listrak_testing.TEST_ENV,
        **segment_testing.TEST_ENV,
        **extole_testing.TEST_ENV,
        "CONNECTOR_ADMIN_TOKEN": TOKEN,
    }.items():
        os.environ.setdefault(name, value)
    work = Path(tempfile.mkdtemp(prefix="operator-view-"))
    try:
        shutil.copytree(ROOT / "config", work / "config")
        runtime = Runtime.build(str(work / "config"), f"sqlite:///{work}/store.db")
        started = time.perf_counter()
        seeded = seed_history(
            runtime.engine,
            args.rows,
            days=40,
            until=time.time(),
            pull_source="listrak-activity",
            partners=("listrak", "segment"),
            source="extole",
        )
        figures = {"rows": seeded.rows, "seed_seconds": round(time.perf_counter() - started, 1)}
        app = create_app({"TESTING": True}, runtime=runtime)
        client = app.test_client()
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        figures["pages_ms"] = {}
        for page in PAGES:
            times = []
            for _ in range(5):
                times.append(timed(lambda page=page: client.get(page, headers=bearer)))
            figures["pages_ms"][page] = {"first": round(times[0]), "slowest_after": round(max(times[1:]))}
        figures["metrics"] = scrape_twice(client, runtime)
        figures["purge"] = purge_while_taking_events(runtime, client)
        if args.screenshot:
            figures["screenshot"] = screenshot(app, args.screenshot)
        print(json.dumps(figures, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def scrape_twice(client, runtime) -> dict:
    statements: list[str] = []

    def note(conn, cursor, statement, *_):
        statements.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", note)
    first = timed(lambda: client.get("/metrics"))
    first_statements = len(statements)
    statements.clear()
    second = timed(lambda: client.get("/metrics"))
    event.remove(runtime.engine, "before_cursor_execute", note)
    return {
        "first_ms": round(first, 1),
        "first_statements": first_statements,
        "cached_ms": round(second, 1),
        "cached_statements": len(statements),
    }


def purge_while_taking_events(runtime, client) -> dict:
    job = retention.Purge(runtime.engine, {"delivered": 86400.0, "dead": 7 * 86400.0})
    durations: list[float] = []
    original = job._transaction

    from contextlib import contextmanager

    @contextmanager
    def each_transaction():
        before = job.longest
        job.longest = 0.0
        with original() as conn:
            yield conn
        durations.append(job.longest)
        job.longest = max(before, job.longest)

    job._transaction = each_transaction
    retention.acquire(runtime.engine, "bench", 600.0, due_only=False)  # kept for the Live View
    purging = threading.Thread(target=job.run)
    intake: list[float] = []
    started = time.perf_counter()
    purging.start()
    while purging.is_alive():
        body = json.dumps(
            referral_event(f"during-{len(intake)}", email=f"i{len(intake)}@example.com")
        ).encode()
        headers = {"Content-Type": "application/json", "X-Extole-Signature": sign(body)}
        intake.append(
            timed(
                lambda body=body, headers=headers: client.post("/webhooks/extole", data=body, headers=headers)
            )
        )
    purging.join()
    ordered = sorted(durations)
    result = {
        **job.removed,
        "transactions": job.transactions,
        "longest_transaction_ms": round(ordered[-1] * 1000, 1),
    }
    retention.finish(runtime.engine, "bench", time.time() + 3600, {**result, "events_checked_before": 0.0})
    return {
        "removed": job.removed,
        "seconds": round(time.perf_counter() - started, 1),
        "transactions": job.transactions,
        "transaction_p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
        "transaction_p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 1),
        "longest_transaction_ms": round(ordered[-1] * 1000, 1),
        "intake_requests_meanwhile": len(intake),
        "intake_p50_ms": round(statistics.median(intake), 1),
        "intake_max_ms": round(max(intake), 1),
    }


def screenshot(app, path: str) -> str:
    chromium = "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        return "skipped: no /usr/bin/chromium"
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox"]
            )
            context = browser.new_context(
                viewport={"width": 1440, "height": 900},
                extra_http_headers={"Authorization": f"Bearer {TOKEN}"},
            )
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/live?window=24h")
            page.screenshot(path=path)
            browser.close()
    finally:
        server.shutdown()
    return path


if __name__ == "__main__":
    sys.exit(main())
