"""Test helpers for the Listrak activity source, shared by its unit tests, end-to-end tests and
`bench/activity.py`: the Listrak sandbox answering requests_mock's URLs in-process, activity
seeds (`POST /_sandbox/activity` bodies) of any size, and the messageIds a seed must produce."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from plugins.listrak.testing import API, TEST_ENV, TOKEN_URL
from plugins.listrak_activity.events import Message, identify, parse_time

LIST_ID, USER_ID_FIELD = 12345, 1006
#: The clients of TEST_ENV, so the in-process sandbox accepts the unit tests' keys.
UNIT_CLIENTS = {
    TEST_ENV["LISTRAK_CLIENT_ID"]: TEST_ENV["LISTRAK_CLIENT_SECRET"],
    TEST_ENV["LISTRAK_STAGING_CLIENT_ID"]: TEST_ENV["LISTRAK_STAGING_CLIENT_SECRET"],
}
FROM_EMAIL = "rewards@example.com"


def mount_sandbox(mocker, app) -> None:
    """Answer requests_mock's Listrak URLs (`API`, `TOKEN_URL`) with the sandbox `app`."""
    client = app.test_client()

    def forward(request, context):
        parts = urlsplit(request.url)
        response = client.open(
            parts.path,
            method=request.method,
            query_string=parts.query,
            headers={k: v for k, v in request.headers.items() if k.lower() != "content-length"},
            data=request.body,
        )
        context.status_code = response.status_code
        context.headers.update({k: v for k, v in response.headers.items() if k.lower() != "content-length"})
        return response.get_data()

    for base in (API, TOKEN_URL):
        pattern = re.compile(re.escape(base) + r"(/.*)?$")
        for method in ("GET", "POST"):
            mocker.register_uri(method, pattern, content=forward)


class InProcessListrak:
    """The Listrak sandbox `app` answering requests_mock's Listrak URLs: seed its activity,
    inject faults, read what it was asked per route."""

    def __init__(self, mocker, app):
        mount_sandbox(mocker, app)
        self.client = app.test_client()
        self.sandbox = app.extensions["listrak_sandbox"]

    def seed(self, **body) -> None:
        response = self.client.post("/_sandbox/activity", json={"list_id": LIST_ID, **body})
        assert response.status_code == 201, response.json

    def fault(self, **spec) -> None:
        response = self.client.post("/_sandbox/faults", json=spec)
        assert response.status_code == 201, response.json

    def routes(self) -> dict[str, int]:
        """Email API requests per route (token fetches left out)."""
        return {k: v for k, v in self.sandbox.counts.per_route.items() if k != "POST /OAuth2/Token"}

    def reset_counts(self) -> None:
        self.sandbox.counts.per_route.clear()


def when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def message_seed(message_id: int, sent: datetime, subject: str = "Jane sent you $20") -> dict:
    return {"messageId": message_id, "subject": subject, "fromEmail": FROM_EMAIL, "sendDate": when(sent)}


def bulk_seed(
    message_id: int,
    rows: int,
    sent: datetime,
    with_user_id: int,
    opened_every: int = 3,
    first: int = 0,
    prefix: str = "person",
) -> dict:
    """`rows` recipients of one message (`prefix<n>@example.com` from n = `first`), the first
    `with_user_id` of them subscribed with a user id, the others subscribed without one;
    every `opened_every`-th opened an hour after the send."""
    opened = when(sent + timedelta(hours=1))
    emails = [f"{prefix}{n}@example.com" for n in range(first, first + rows)]
    return {
        "list_id": LIST_ID,
        "contacts": [
            {"emailAddress": email, "segmentationFieldValues": {str(USER_ID_FIELD): f"u-{n}"}}
            if n < first + with_user_id
            else {"emailAddress": email}
            for n, email in zip(range(first, first + rows), emails, strict=True)
        ],
        "messages": [message_seed(message_id, sent, subject=f"Message {message_id}")],
        "rows": [
            {
                "messageId": message_id,
                "emailAddress": email,
                **({"open": True, "activityDate": opened} if i % opened_every == 0 else {}),
            }
            for i, email in enumerate(emails)
        ],
    }


def expected_message_ids(
    rows: list[dict], messages: dict[int, dict], user_ids: dict[str, str], clicks=(), links=None
) -> set[str]:
    """The messageIds a source must send for these sandbox rows (as the reporting routes give
    them) and clicks ({messageId, linkId, emailAddress, clickDate}): one identify per contact,
    the track events of each row and click."""
    found, seen = set(), set()
    for row in rows:
        seed = messages[row["messageId"]]
        message = Message(LIST_ID, row["messageId"], seed["subject"], seed["fromEmail"], "production")
        email = row["emailAddress"].lower()
        user_id = user_ids.get(email)
        if email not in seen:
            seen.add(email)
            found.add(identify(LIST_ID, email, user_id, parse_time(row["sendDate"]), "production").event_id)
        found.update(e.event_id for e in message.row_events(row, email, user_id))
    for click in clicks:
        seed = messages[click["messageId"]]
        message = Message(LIST_ID, click["messageId"], seed["subject"], seed["fromEmail"], "production")
        email = click["emailAddress"].lower()
        url = (links or {})[(click["messageId"], click["linkId"])]
        found.add(message.click_event(click, email, url, user_ids.get(email)).event_id)
    return found
