"""Reproduce issue 20 point 1 on real processes: a Listrak look-alike answers one opt-in with an
odd error body, then a flood of ordinary opt-ins follows. Prints what the admin API shows, how
many requests each contact cost (more than one: sent again), and how long SIGTERM of the worker
took.

    .venv/bin/python scripts/odd_answer.py [--postgres] [--odd nested|huge-code] [--people 50]

The look-alike is the Listrak sandbox in this process with one hook in front of it (so the
script runs on any revision, with or without the sandbox's own odd-answer faults)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from flask import Response, request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.testing import example_stack, postgres, wait_until
from plugins.extole.testing import referral_event
from plugins.listrak.sandbox import create_sandbox_app, serve_in_thread

ODD_EMAIL = "odd@example.com"
ODD_BODIES = {
    "nested": {"error": {"code": "ERROR_X"}, "message": ["bad"]},
    "huge-code": {"error": "ERROR_" + "X" * 300, "message": "m" * 2000},
}
SETTINGS = {
    "retry_schedule": ["1s", "1s", "1s"],
    "worker": {"threads": 8, "http_timeout": "2s", "lease": "8s", "poll_interval": "50ms"},
}


def look_alike(odd_body: dict):
    """The sandbox, answering `odd_body` (HTTP 400) to every opt-in of ODD_EMAIL; counts the
    contact requests per email."""
    app = create_sandbox_app()
    per_email: Counter[str] = Counter()
    lock = threading.Lock()

    @app.before_request
    def odd_answer():
        if request.method != "POST" or not request.path.endswith("/Contact"):
            return None
        email = (request.get_json(silent=True) or {}).get("emailAddress")
        with lock:
            per_email[email] += 1
        if email == ODD_EMAIL:
            return Response(json.dumps(odd_body), status=400, mimetype="application/json")
        return None

    app.before_request_funcs[None].insert(0, app.before_request_funcs[None].pop())
    return app, per_email


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--odd", choices=sorted(ODD_BODIES), default="nested")
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--watch", type=float, default=20.0, help="seconds to watch after the flood")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with ExitStack() as cleanup:
        workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="odd-answer-")))
        database_url = None
        if args.postgres:
            database_url = cleanup.enter_context(postgres.database(postgres.start()))
        app, per_email = look_alike(ODD_BODIES[args.odd])
        server, url = serve_in_thread(app=app)
        cleanup.callback(server.shutdown)
        stack = example_stack(workdir / "stack", settings=SETTINGS, database_url=database_url)
        stack.env.update(LISTRAK_AUTH_URL=f"{url}/OAuth2/Token", LISTRAK_API_URL=f"{url}/email/v1")
        cleanup.callback(stack.stop)
        stack.start(workers=1)

        assert stack.post_events(referral_event("odd-0", email=ODD_EMAIL)).status_code == 202
        wait_until(lambda: per_email[ODD_EMAIL] >= 1, timeout=20, message="the odd answer")
        emails = [f"p{i}@example.com" for i in range(args.people)]
        for i, email in enumerate(emails):
            assert stack.post_events(referral_event(f"odd-{i + 1}", email=email)).status_code == 202
        time.sleep(args.watch)

        states = Counter()
        for email in [ODD_EMAIL, *emails]:
            for event in stack.admin("GET", f"/admin/api/events?email={email}").json()["events"]:
                states.update(d["outcome"] for d in event["deliveries"])
        sent_again = sorted(e for e in emails if per_email[e] > 1)
        worker = stack.workers[0]
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        stopped = time.monotonic() - started
        log = (stack.workdir / "worker-0.log").read_text(errors="replace")
        report = {
            "odd answer": args.odd,
            "store": "postgresql" if args.postgres else "sqlite",
            "admin API outcomes": dict(states),
            "contacts sent more than once": len(sent_again),
            "requests to the odd contact": per_email[ODD_EMAIL],
            "recording failures logged": log.count("results failed"),
            "SIGTERM to exit (s)": round(stopped, 1),
        }
        stack.workers.clear()
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
