"""Listrak list membership as Segment identify calls: who subscribed to and who unsubscribed from
each list, read from the Contact collection (Email API v1, Bearer token from an OAUTH_LISTRAK
key) by date: `GET /List/{id}/Contact?subscriptionState=…&startDate=…&endDate=…`, in pages of
5,000, with the `user_id_field`'s value.

A list's first poll reads every contact Subscribed now (no dates), then those Unsubscribed
within `lookback`. Each later poll reads one window, from where the last one ended less
OVERLAP to the poll's start: the subscribes in it by their latest subscribe date (a
resubscribe's too: `useOriginalSubscribeDate=false`, whose `endDate` is exclusive), then the
unsubscribes (`endDate` inclusive). Windows overlap so that a change Listrak dates before a
window's end but shows only after it was read (Listrak's clock behind ours, a change committed
while we page) is in the next one; read twice, a change has the same messageId and intake drops
it. Listrak lists contacts by the state they are in now, so a subscribe and an unsubscribe
between two polls read as the unsubscribe alone: where the contact stands.

The cursor keeps, per list, where the last window ended (`until`) and, while a poll reads, its
window, the state being read and the page to go on from: a poll cut short (a 429, an outage, a
killed worker) resumes after its last stored page."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime

from connector.plugin_api import InboundEvent
from plugins.listrak_activity.events import membership_change, parse_time
from plugins.listrak_activity.reading import Reader, Refused
from plugins.listrak_activity.users import field_value

#: How far each window reaches back into the one before it, in seconds: room for Listrak's
#: clock to run behind ours and for a change to show after the date Listrak gives it.
OVERLAP = 300.0
SUBSCRIBED, UNSUBSCRIBED = "Subscribed", "Unsubscribed"
STATES = (SUBSCRIBED, UNSUBSCRIBED)


def when(at: float) -> str:
    """A window bound: UTC to the second."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(bound: str) -> float:
    parsed = parse_time(bound)
    if parsed is None:
        raise ValueError(f"not a date-time: {bound!r}")
    return parsed.timestamp()


def changed_at(contact: dict, state: str) -> datetime | None:
    """The date of a contact's change: its latest subscribe (a resubscribe's, if later) or its
    unsubscribe. Listrak's dates without an offset are UTC."""
    if state == UNSUBSCRIBED:
        return parse_time(contact.get("unsubscribeDate"))
    dates = [parse_time(contact.get(name)) for name in ("subscribeDate", "resubscribeDate")]
    return max((d for d in dates if d is not None), default=None)


class Membership:
    """Each list's membership reading, kept in the cursor under `membership` by list id:
    `until` (where its last window ended) and, during a poll, `window` (`start`, None for the
    first poll's; `end`; the `state` being read and the `page` to go on from)."""

    def __init__(self, lists: dict | None = None):
        self.lists: dict[str, dict] = copy.deepcopy(lists or {})
        #: What this poll read, per list: contacts per state, where its windows started and
        #: ended, and whether one was the list's first poll.
        self.read_now: dict[int, dict] = {}

    @classmethod
    def resume(cls, cursor: dict | None) -> Membership:
        return cls((cursor or {}).get("membership"))

    def cursor(self) -> dict:
        return {"membership": copy.deepcopy(self.lists)}

    def read(self, reader: Reader, list_id: int, config: dict, now: float) -> Iterator[tuple[list, int]]:
        """(events, contacts read) per page of one list's changes: the window a cut-short
        poll left, then a new one up to `now`."""
        entry = self.lists.setdefault(str(list_id), {})
        if "window" in entry:
            yield from self._window(reader, list_id, entry, config)
        end = when(now)
        if entry.get("until") != end:
            until = entry.get("until")
            start = None if until is None else when(_seconds(until) - OVERLAP)
            entry["window"] = {"start": start, "end": end, "state": SUBSCRIBED, "page": "Start"}
            yield from self._window(reader, list_id, entry, config)

    def _window(self, reader: Reader, list_id: int, entry: dict, config: dict):
        window = entry["window"]
        first = window["start"] is None
        start = when(_seconds(window["end"]) - config["lookback"]) if first else window["start"]
        seen = self.read_now.setdefault(
            list_id, {SUBSCRIBED: 0, UNSUBSCRIBED: 0, "start": start, "first": first}
        )
        seen.update(end=window["end"], first=seen["first"] or first)
        path = f"/List/{list_id}/Contact"
        read_at = datetime.fromtimestamp(_seconds(window["end"]), UTC)
        for state in STATES[STATES.index(window["state"]) :]:
            params = self._params(window, state, config)
            start = window["page"] if state == window["state"] else "Start"
            for rows, following in self._pages(reader, path, params, start):
                events = self._changes(list_id, rows, state, config, read_at)
                if following is not None:
                    window.update(state=state, page=following)
                elif state == SUBSCRIBED:
                    window.update(state=UNSUBSCRIBED, page="Start")
                else:
                    del entry["window"]
                    entry["until"] = window["end"]
                seen[state] += len(rows)
                yield events, len(rows)

    @staticmethod
    def _pages(reader: Reader, path: str, params: dict, start: str):
        try:
            yield from reader.pages(path, params, start=start)
        except Refused:
            if start == "Start":
                raise
            # A page cursor kept from an earlier poll may have expired: read the state again.
            yield from reader.pages(path, params)

    @staticmethod
    def _params(window: dict, state: str, config: dict) -> dict:
        params = {"subscriptionState": state}
        if config.get("user_id_field") is not None:
            params["segmentationFieldIds"] = str(config["user_id_field"])
        start, end = window["start"], window["end"]
        if start is None:  # a list's first poll
            if state == SUBSCRIBED:
                return params  # every contact subscribed now
            start = when(_seconds(end) - config["lookback"])
        params.update(startDate=start, endDate=end)
        if state == SUBSCRIBED:
            params["useOriginalSubscribeDate"] = "false"  # a resubscribe is a change too
        return params

    @staticmethod
    def _changes(list_id: int, rows: list, state: str, config: dict, read_at: datetime) -> list[InboundEvent]:
        field_id = config.get("user_id_field")
        changes = []
        for contact in rows:
            email = contact.get("emailAddress") if isinstance(contact, dict) else None
            if not isinstance(email, str) or not email.strip():
                continue
            user_id = field_value(contact, field_id) if field_id is not None else None
            changes.append(
                membership_change(
                    list_id,
                    email.strip().lower(),
                    state == SUBSCRIBED,
                    user_id,
                    changed_at(contact, state),
                    read_at,
                    config["environment"],
                )
            )
        return changes

    def summary(self) -> str | None:
        """What this poll read, per list: `list 12345: 3 subscribed, 1 unsubscribed from … to …`."""
        parts = []
        for list_id, seen in self.read_now.items():
            subscribed, unsubscribed = f"{seen[SUBSCRIBED]:,}", f"{seen[UNSUBSCRIBED]:,}"
            if seen["first"]:
                parts.append(
                    f"list {list_id}: {subscribed} subscribed now, {unsubscribed} unsubscribed"
                    f" since {seen['start']} (first poll)"
                )
            else:
                parts.append(
                    f"list {list_id}: {subscribed} subscribed, {unsubscribed} unsubscribed"
                    f" from {seen['start']} to {seen['end']}"
                )
        return "; ".join(parts) or None
