"""The yardstick for activity: a bare pipeline. The Listrak reads the activity source makes
(the list's messages, the message, its Activity pages, the list's contacts in both
subscription states for their userIds, the message's links) and the Segment calls the
connector makes for them (the same events, by the plugin's own `events.py`, in batches of
1,000 to `/v1/batch`), from one process with `requests`, one request after another, nothing
stored. bench/activity.py runs it against the same look-alikes in the same run.

`python bench/bare_pipeline.py --listrak URL --segment URL` prints its figures as JSON:
seconds from the first request to the last answer, events/s, requests, CPU seconds."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta

import requests

from plugins.listrak.testing import SANDBOX_CLIENTS_ENV
from plugins.listrak_activity.events import Message, identify, parse_time
from plugins.listrak_activity.testing import LIST_ID, USER_ID_FIELD
from plugins.segment.sandbox import DEMO_WRITE_KEY

PAGE = 5000  # Listrak's largest page, as the source reads
PER_BATCH = 1000  # events per Segment request, as the segment destination sends


class Bare:
    def __init__(self, listrak: str, segment: str):
        self.api, self.segment = f"{listrak}/email/v1", segment
        self.listrak = requests.Session()
        self.tracking = requests.Session()
        self.tracking.auth = (DEMO_WRITE_KEY, "")
        self.listrak_requests = self.segment_requests = 0
        answer = self.listrak.post(
            f"{listrak}/OAuth2/Token",
            data={
                "grant_type": "client_credentials",
                "client_id": SANDBOX_CLIENTS_ENV["LISTRAK_CLIENT_ID"],
                "client_secret": SANDBOX_CLIENTS_ENV["LISTRAK_CLIENT_SECRET"],
            },
            timeout=10,
        )
        answer.raise_for_status()
        self.listrak.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def get(self, path: str, **params) -> dict:
        self.listrak_requests += 1
        answer = self.listrak.get(f"{self.api}{path}", params=params, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def pages(self, path: str, **params):
        cursor = "Start"
        while cursor:
            body = self.get(path, cursor=cursor, count=str(PAGE), **params)
            yield body["data"]
            cursor = body.get("nextPageCursor") if body["data"] else None

    def post(self, batch: list[dict]) -> None:
        self.segment_requests += 1
        sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        answer = self.tracking.post(f"{self.segment}/v1/batch", json={"batch": batch, "sentAt": sent_at})
        answer.raise_for_status()

    def user_ids(self) -> dict[str, str]:
        found = {}
        for state in ("Subscribed", "Unsubscribed"):
            for rows in self.pages(
                f"/List/{LIST_ID}/Contact", segmentationFieldIds=str(USER_ID_FIELD), subscriptionState=state
            ):
                for contact in rows:
                    for value in contact.get("segmentationFieldValues") or []:
                        if value.get("segmentationFieldId") == USER_ID_FIELD and value.get("value"):
                            found[contact["emailAddress"].strip().lower()] = str(value["value"])
        return found

    def run(self, since: datetime) -> int:
        """Every event of every message sent since `since`, to Segment; how many."""
        window = {
            "startDate": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        messages = [m for rows in self.pages(f"/List/{LIST_ID}/Message", **window) for m in rows]
        user_ids = self.user_ids()
        sent, batch, identified = 0, [], set()
        for listed in messages:
            mid = listed["messageId"]
            data = self.get(f"/List/{LIST_ID}/Message/{mid}")["data"]
            message = Message(LIST_ID, mid, data.get("subject"), data.get("fromEmail"), "production")
            for rows in self.pages(f"/List/{LIST_ID}/Message/{mid}/Activity"):
                for row in rows:
                    email = row["emailAddress"].strip().lower()
                    user_id = user_ids.get(email)
                    if email not in identified:
                        identified.add(email)
                        first_seen = parse_time(row.get("sendDate"))
                        batch.append(identify(LIST_ID, email, user_id, first_seen, "production").payload)
                    batch += [event.payload for event in message.row_events(row, email, user_id)]
                    if len(batch) >= PER_BATCH:
                        self.post(batch[:PER_BATCH])
                        sent += PER_BATCH
                        batch = batch[PER_BATCH:]
            for _ in self.pages(f"/List/{LIST_ID}/Message/{mid}/Link"):
                pass  # no clicks in the seed: the read is all there is to do
        if batch:
            self.post(batch)
            sent += len(batch)
        return sent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listrak", required=True, help="the Listrak look-alike's base URL")
    parser.add_argument("--segment", required=True, help="the Segment look-alike's base URL")
    parser.add_argument("--days", type=float, default=7, help="how far back messages are read")
    args = parser.parse_args(argv)
    started, cpu_started = time.monotonic(), time.process_time()
    bare = Bare(args.listrak, args.segment)
    events = bare.run(datetime.now(UTC) - timedelta(days=args.days))
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "events": events,
                "seconds": round(seconds, 2),
                "events_per_second": round(events / seconds),
                "listrak_requests": bare.listrak_requests,
                "segment_requests": bare.segment_requests,
                "cpu_seconds": round(cpu, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
