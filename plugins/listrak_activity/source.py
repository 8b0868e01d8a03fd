"""Listrak email activity as a pull source (Email API v1, Bearer token from an OAUTH_LISTRAK
key): Message, Message/{id}, Activity, Link and Clicker routes, read every `poll_interval`,
become Segment track and identify messages (`events.py`) for the `segment` destination. With
`membership: true` each poll first reads who subscribed to and unsubscribed from each list
(`membership.py`), and the list trait comes from that alone.

Listrak changes a row after its first read (a first open, a later unsubscribe) and clicks keep
arriving on older messages, so each poll — a round — re-reads every message sent within
`lookback`; deterministic messageIds make what was read before a duplicate intake drops. The
cursor only remembers how far the current round got (messages done, the Activity page to go
on from), so a poll cut short by a 429, an outage or a killed worker resumes where its last
stored page ended instead of starting over. Membership keeps its own part of the cursor."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import fields, validate

from connector.plugin_api import OutboundUrl, Poll, PullSource, PullSourceConfigSchema
from plugins.listrak_activity.events import Message, identify, iso, parse_time
from plugins.listrak_activity.membership import Membership
from plugins.listrak_activity.reading import Reader, Refused, single
from plugins.listrak_activity.users import UserIds

KEY_ALGORITHM = "OAUTH_LISTRAK"
LISTRAK_DESTINATION = "listrak"  # the destination this source must never feed
CACHE_MAX = 10_000  # remembered message senders and link click counts, per process


class ListrakActivitySchema(PullSourceConfigSchema):
    api_url = OutboundUrl(required=True)
    key = fields.String(required=True)
    lists = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1)),
        required=True,
        validate=validate.Length(min=1, error="must name at least one list"),
    )
    user_id_field = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1))
    #: Follow each list's subscribes and unsubscribes (one identify per change, the first poll
    #: one per subscriber). Off by default: Segment bills by tracked users.
    membership = fields.Boolean(load_default=False)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Round:
    """One pass over the lookback window, kept in the cursor: when it started, the messages
    it finished per list, and where inside a message it stands."""

    def __init__(self, started: float, done: dict | None = None, at: dict | None = None):
        self.started, self.done, self.at = started, done or {}, at

    @classmethod
    def resume(cls, cursor: dict | None, now: float) -> Round:
        state = (cursor or {}).get("round")
        if not state:
            return cls(now)
        started = parse_time(state.get("started"))
        return cls(started.timestamp() if started else now, state.get("done"), state.get("at"))

    def cursor(self) -> dict:
        """A copy of where the round stands (each page keeps the cursor of its own moment)."""
        done = {list_id: list(ids) for list_id, ids in self.done.items()}
        state = {"started": iso(datetime.fromtimestamp(self.started, UTC)), "done": done}
        if self.at is not None:
            state["at"] = dict(self.at)
        return {"round": state}

    def finished(self) -> dict:
        return {"completed": iso(datetime.fromtimestamp(self.started, UTC))}

    def is_done(self, list_id: int, message_id: int) -> bool:
        return message_id in self.done.get(str(list_id), [])

    def mark_done(self, list_id: int, message_id: int) -> None:
        self.done.setdefault(str(list_id), []).append(message_id)
        self.at = None

    def position(self, list_id: int, message_id: int) -> dict | None:
        """Where a resumed round stands inside this message, if it does."""
        at = self.at
        if at and at.get("list") == list_id and at.get("message") == message_id:
            return at
        return None


class ListrakActivitySource(PullSource):
    name = "listrak_activity"
    config_schema = ListrakActivitySchema

    def __init__(self, sleep=time.sleep):
        self.sleep = sleep
        self._senders: dict[tuple, str | None] = {}
        self._clicks_read: dict[tuple, int] = {}
        self._page_sizes: dict[str, int] = {}

    # -- config ----------------------------------------------------------------------------
    def check(self, source_config: Mapping[str, Any], config) -> list[str]:
        problems = []
        key_id = source_config["key"]
        key = config.keys.get(key_id)
        if key is None:
            if not (config.directory / "keys" / f"{key_id}.yaml").exists():  # else: its own problem
                problems.append(f"key: no key {key_id!r} in keys/")
        elif key["algorithm"] != KEY_ALGORITHM:
            problems.append(
                f"key: key {key_id!r} uses {key['algorithm']}; "
                f"Listrak's Email API needs an {KEY_ALGORITHM} key"
            )
        for partner_id, partner in sorted(config.partners.items()):
            if partner.plugin == LISTRAK_DESTINATION and source_config["id"] in partner.sources:
                problems.append(
                    f"partners/{partner_id}.yaml feeds source {source_config['id']!r} to Listrak partner "
                    f"{partner_id!r}: Listrak's own email activity would go back to Listrak (a loop); "
                    "feed it to another partner"
                )
        return problems

    def verify(self, source_config: Mapping[str, Any], http, credentials) -> list[tuple[bool, str]]:
        from plugins.listrak_activity.verify import verify

        return verify(source_config, http, credentials)

    # -- polling ---------------------------------------------------------------------------
    def poll(self, source_config, cursor, since, http, credentials):
        lookback, now = source_config["lookback"], since + source_config["lookback"]
        round_ = Round.resume(cursor, now)
        reader = Reader(
            http, credentials(source_config["key"]), source_config["api_url"], self.sleep, self._page_sizes
        )
        # Membership off: its part of the cursor is dropped, so turning it on again reads the
        # lists anew (the list trait was set from activity meanwhile).
        membership = Membership.resume(cursor) if source_config.get("membership") else None
        messages_read = 0

        def page(poll: Poll) -> Poll:
            """A page with membership's part of the cursor and the poll's summary so far."""
            parts = [membership.summary()] if membership else []
            parts.append(f"activity: {messages_read:,} message(s) read")
            poll.summary = "; ".join(part for part in parts if part)
            if membership:
                poll.cursor = {**poll.cursor, **membership.cursor()}
            return poll

        if membership:
            for list_id in source_config["lists"]:
                for events, rows in membership.read(reader, list_id, source_config, now):
                    yield page(Poll(events, round_.cursor(), rows_read=rows))
        window = {"startDate": _when(round_.started - lookback), "endDate": _when(round_.started)}
        for list_id in source_config["lists"]:
            users = UserIds(reader, list_id, source_config.get("user_id_field"))
            identified: set[str] = set()
            for listed in self._messages(reader, list_id, window):
                if round_.is_done(list_id, listed["messageId"]):
                    continue
                message = self._message(reader, list_id, listed, source_config["environment"])
                in_list = membership is None  # else the list trait comes from membership alone
                yield from map(page, self._activity(reader, round_, message, users, identified, in_list))
                yield from map(page, self._clicks(reader, round_, message, users))
                round_.mark_done(list_id, message.message_id)
                messages_read += 1
                yield page(Poll([], round_.cursor()))
        yield page(Poll([], round_.finished()))

    def _messages(self, reader: Reader, list_id: int, window: dict) -> list[dict]:
        """The list's messages sent in the window, oldest first (a few hundred at most)."""
        found = [
            m
            for rows, _ in reader.pages(f"/List/{list_id}/Message", window)
            for m in rows
            if isinstance(m.get("messageId"), int)
        ]
        return sorted(
            found, key=lambda m: (m["sendDate"] if isinstance(m.get("sendDate"), str) else "", m["messageId"])
        )

    def _message(self, reader: Reader, list_id: int, listed: dict, environment: str) -> Message:
        mid = listed["messageId"]
        key = (reader.api, list_id, mid)
        if key not in self._senders:
            path = f"/List/{list_id}/Message/{mid}"
            data = single(reader.get(path), path)
            self._remember(self._senders, key, data.get("fromEmail"))
            listed = {**listed, "subject": data.get("subject", listed.get("subject"))}
        return Message(list_id, mid, listed.get("subject"), self._senders[key], environment)

    def _activity(
        self, reader: Reader, round_: Round, message: Message, users: UserIds, identified: set, in_list: bool
    ):
        list_id, mid = message.list_id, message.message_id
        at = round_.position(list_id, mid)
        if at is not None and at.get("activity") is None:
            return  # a resumed round that had read all of this message's rows
        path = f"/List/{list_id}/Message/{mid}/Activity"
        start = at["activity"] if at else "Start"
        try:
            yield from self._activity_pages(reader, round_, message, users, identified, in_list, path, start)
        except Refused:
            if start == "Start":
                raise
            # A page cursor kept from an earlier poll may have expired: read the message again.
            yield from self._activity_pages(
                reader, round_, message, users, identified, in_list, path, "Start"
            )

    def _activity_pages(self, reader, round_, message, users, identified, in_list, path, start):
        for rows, next_cursor in reader.pages(path, start=start):
            emails = {
                row["emailAddress"].strip().lower(): row
                for row in rows
                if isinstance(row.get("emailAddress"), str) and row["emailAddress"].strip()
            }
            user_ids = users.lookup(emails)
            events = []
            for row in rows:
                email = row.get("emailAddress")
                if not isinstance(email, str) or not email.strip():
                    continue
                email = email.strip().lower()
                user_id = user_ids[email]
                if email not in identified:
                    identified.add(email)
                    first_seen = parse_time(row.get("sendDate")) or datetime.fromtimestamp(
                        round_.started, UTC
                    )
                    events.append(
                        identify(message.list_id, email, user_id, first_seen, message.environment, in_list)
                    )
                events.extend(message.row_events(row, email, user_id))
            round_.at = {"list": message.list_id, "message": message.message_id, "activity": next_cursor}
            yield Poll(events, round_.cursor(), rows_read=len(rows))

    def _clicks(self, reader: Reader, round_: Round, message: Message, users: UserIds):
        """One `Link Clicked` per clicker of each link whose click count moved since this
        process last read it in full."""
        list_id, mid = message.list_id, message.message_id
        base = f"/List/{list_id}/Message/{mid}/Link"
        links = [
            link for rows, _ in reader.pages(base) for link in rows if isinstance(link.get("linkId"), int)
        ]
        for link in links:
            key = (reader.api, list_id, mid, link["linkId"])
            count = link.get("clickCount")
            if count == 0 or (count is not None and self._clicks_read.get(key) == count):
                continue
            for rows, _ in reader.pages(f"{base}/{link['linkId']}/Clicker"):
                clickers = [
                    (c["emailAddress"].strip().lower(), c)
                    for c in rows
                    if isinstance(c.get("emailAddress"), str)
                ]
                user_ids = users.lookup(email for email, _ in clickers)
                events = [
                    event
                    for email, clicker in clickers
                    if (event := message.click_event(clicker, email, link.get("linkUrl"), user_ids[email]))
                ]
                yield Poll(events, round_.cursor(), rows_read=len(rows))
            if count is not None:
                self._remember(self._clicks_read, key, count)

    @staticmethod
    def _remember(cache: dict, key: tuple, value) -> None:
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[key] = value
