"""The yardstick for delivery: a bare sender. The same opt-ins the connector delivers in
bench/delivery.py, sent to the same Listrak look-alike in the same run by 32 threads with one
`requests.Session` each: one token, then one `POST /List/{id}/Contact` per contact with the
body the connector sends, nothing stored, nothing retried. It runs in a process of its own so
its CPU time is its own (`time.process_time` around the sending, imports left out).

`python bench/bare_sender.py --url http://127.0.0.1:8900 --contacts 3000` prints its figures
as JSON: seconds, contacts/s, CPU seconds and CPU ms per contact."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import requests

from plugins.extole.testing import referral_event
from plugins.listrak.testing import SANDBOX_CLIENTS_ENV

LIST_ID = 12345
#: config/partners/listrak.yaml's segmentation fields: profile attribute → field id.
FIELDS = {"phone_number": 1001, "share_link": 1002, "first_name": 1003, "last_name": 1004, "funnel": 1005}


def contact_body(email: str) -> dict:
    """What the connector's contact_subscription sends for bench/delivery.py's opt-in of `email`."""
    person = referral_event(email=email)["person"]
    return {
        "emailAddress": email,
        "subscriptionState": "Subscribed",
        "segmentationFieldValues": [
            {"segmentationFieldId": field_id, "value": str(person[name])} for name, field_id in FIELDS.items()
        ],
    }


def token(url: str) -> str:
    answer = requests.post(
        f"{url}/OAuth2/Token",
        data={
            "grant_type": "client_credentials",
            "client_id": SANDBOX_CLIENTS_ENV["LISTRAK_CLIENT_ID"],
            "client_secret": SANDBOX_CLIENTS_ENV["LISTRAK_CLIENT_SECRET"],
        },
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def send_all(url: str, emails: list[str], threads: int) -> dict:
    """Every contact once, `threads` at a time; wall and CPU seconds, and what was answered."""
    bodies = [contact_body(email) for email in emails]  # the events as given, not counted
    next_one = iter(range(len(bodies)))
    take = threading.Lock()
    statuses: dict[int, int] = {}
    started, cpu_started = time.monotonic(), time.process_time()
    headers = {"Authorization": f"Bearer {token(url)}", "Accept": "application/json"}
    target = f"{url}/email/v1/List/{LIST_ID}/Contact"

    def sender() -> None:
        session = requests.Session()
        while True:
            with take:
                index = next(next_one, None)
            if index is None:
                return
            status = session.post(target, json=bodies[index], headers=headers, timeout=10).status_code
            statuses[status] = statuses.get(status, 0) + 1

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu_started
    return {
        "contacts": len(emails),
        "threads": threads,
        "seconds": round(seconds, 2),
        "contacts_per_second": round(len(emails) / seconds, 1),
        "cpu_seconds": round(cpu, 2),
        "cpu_ms_per_contact": round(cpu * 1000 / len(emails), 3),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the Listrak look-alike's base URL")
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--prefix", default="bare", help="emails are <prefix><n>@example.com")
    args = parser.parse_args(argv)
    emails = [f"{args.prefix}{i}@example.com" for i in range(args.contacts)]
    figures = send_all(args.url, emails, args.threads)
    print(json.dumps(figures))
    return 0 if set(figures["statuses"]) <= {"200", "201"} else 1


if __name__ == "__main__":
    sys.exit(main())
