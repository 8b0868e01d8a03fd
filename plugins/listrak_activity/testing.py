"""Test helpers for the Listrak activity source, shared by its unit tests, end-to-end tests and
`bench/activity.py`, `bench/membership.py`: the Listrak sandbox answering requests_mock's URLs
in-process, activity and list seeds (`POST /_sandbox/activity` bodies) of any size, contact
changes at given times, and the messageIds a seed must produce."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from plugins.listrak_activity.events import Message, identify, membership_change, parse_time

#: The Listrak plugin's unit-test URLs and its production and staging clients
#: (plugins/listrak/testing.py's TEST_ENV: the example config reads both plugins' keys from the
#: same variables), so the in-process sandbox accepts the unit tests' keys;
#: tests/plugins/test_listrak_activity_config.py checks the two copies agree.
API = "https://api.listrak.test/email/v1"
TOKEN_URL = "https://auth.listrak.test/OAuth2/Token"
UNIT_CLIENTS = {"prod-client": "prod-secret-value", "staging-client": "staging-secret-value"}
LIST_ID, USER_ID_FIELD = 12345, 1006
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

    def change(self, email: str, state: str, at: datetime, user_id: str | None = None) -> None:
        """`email` subscribes (or comes back) or unsubscribes at `at`, in Listrak itself."""
        response = self.client.post("/_sandbox/contacts", json=contact_change(email, state, at, user_id))
        assert response.status_code == 201, response.json

    def routes(self) -> dict[str, int]:
        """Email API requests per route (token fetches left out)."""
        return {k: v for k, v in self.sandbox.counts.per_route.items() if k != "POST /OAuth2/Token"}

    def reset_counts(self) -> None:
        self.sandbox.counts.per_route.clear()


def _at(text: str) -> datetime:
    """A seed's own date-time (always one the parser reads)."""
    parsed = parse_time(text)
    assert parsed is not None, text
    return parsed


def when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def contact_change(email: str, state: str, at: datetime, user_id: str | None = None) -> dict:
    """A `POST /_sandbox/contacts` body: `email` subscribes (or comes back) or unsubscribes
    at `at`, with `user_id` in USER_ID_FIELD if given."""
    date = "subscribeDate" if state == "Subscribed" else "unsubscribeDate"
    body = {"list_id": LIST_ID, "emailAddress": email, "subscriptionState": state, date: when(at)}
    if user_id is not None:
        body["segmentationFieldValues"] = {str(USER_ID_FIELD): user_id}
    return body


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


def expected_message_ids(seed: dict) -> set[str]:
    """The messageIds the source must send for a seed of rows on fresh messages (no clicks):
    one identify per contact, the track events of each row, as the sandbox will show them."""
    messages = {m["messageId"]: m for m in seed["messages"]}
    user_ids = {
        c["emailAddress"].lower(): c["segmentationFieldValues"][str(USER_ID_FIELD)]
        for c in seed.get("contacts", [])
        if str(USER_ID_FIELD) in c.get("segmentationFieldValues", {})
    }
    found, identified = set(), set()
    for seeded in seed["rows"]:
        listed = messages[seeded["messageId"]]
        row = {"sendDate": listed["sendDate"], "activityDate": None, **seeded}
        message = Message(LIST_ID, listed["messageId"], listed["subject"], listed["fromEmail"], "production")
        email = row["emailAddress"].lower()
        if email not in identified:
            identified.add(email)
            at = _at(row["sendDate"])
            found.add(identify(LIST_ID, email, user_ids.get(email), at, "production").event_id)
        found.update(event.event_id for event in message.row_events(row, email, user_ids.get(email)))
    return found


def subscribers_seed(count: int, subscribed: datetime, with_user_id: int, prefix: str = "member") -> dict:
    """`count` contacts subscribed to the list at `subscribed` (`prefix<n>@example.com`), the
    first `with_user_id` of them with a user id (`u-<n>`)."""
    return {
        "list_id": LIST_ID,
        "contacts": [
            {
                "emailAddress": f"{prefix}{n}@example.com",
                "subscribeDate": when(subscribed),
                **({"segmentationFieldValues": {str(USER_ID_FIELD): f"u-{n}"}} if n < with_user_id else {}),
            }
            for n in range(count)
        ],
    }


def membership_message_ids(seed: dict) -> set[str]:
    """The messageIds of the identify calls a list's first poll sends for a `subscribers_seed`."""
    return {
        membership_change(
            LIST_ID,
            c["emailAddress"],
            True,
            c.get("segmentationFieldValues", {}).get(str(USER_ID_FIELD)),
            _at(c["subscribeDate"]),
            _at(c["subscribeDate"]),
            "production",
        ).event_id
        for c in seed["contacts"]
    }


# -- real processes (end-to-end tests, bench/activity.py, bench/membership.py) -------------------
def source_file(poll_interval: str = "1s", membership: bool = False) -> dict:
    """`extra_files` for a connector.testing Stack: the example activity source, polled often."""
    return {
        "sources/listrak-activity.yaml": {
            "plugin": "listrak_activity",
            "api_url": "${LISTRAK_API_URL}",
            "key": "listrak-production",
            "lists": [LIST_ID],
            "poll_interval": poll_interval,
            "lookback": "7d",
            "user_id_field": USER_ID_FIELD,
            "membership": membership,
        }
    }


def seed(stack, body: dict, chunk: int = 20_000) -> None:
    """POST a seed to the stack's Listrak sandbox (the `listrak` plugin's part of the stack) in
    the order its parts depend on each other (messages and links, contacts, rows, then
    clicks), long lists in chunks."""
    sandbox = stack.part("listrak")
    first = {"list_id": body["list_id"], "messages": body.get("messages", []), "links": body.get("links", [])}
    sandbox.request("POST", "/_sandbox/activity", json=first).raise_for_status()
    for name in ("contacts", "rows", "clicks"):
        items = body.get(name, [])
        for start in range(0, len(items), chunk):
            part = {"list_id": body["list_id"], name: items[start : start + chunk]}
            sandbox.request("POST", "/_sandbox/activity", json=part).raise_for_status()
