"""The sandbox's email activity: messages sent to a list, one activity row per recipient, the
links of each message and who clicked them — what Listrak's reporting routes read
(`reports.py`). Seeded through `POST /_sandbox/activity` (marshmallow-checked) or, for demos,
`seed_demo` (the example list, relative to now)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from marshmallow import Schema, ValidationError, fields, validate, validates_schema


def parse_when(value: object) -> datetime | None:
    """A date-time as Listrak's API takes it (ISO-8601; without an offset, UTC), or None.
    The sandbox reads times on its own rather than with the activity source's parser, so a
    mistake in that parser cannot hide behind the same mistake here."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


ROW_FLAGS = ("open", "read", "click", "bounce", "unsubscribe", "abuse")
ROW_KEYS = (*ROW_FLAGS, "sendDate", "activityDate", "bounceReason", "orderTotal", "externalContactID")


def listrak_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def contact_date(at: datetime) -> str:
    """A contact's date as Listrak writes it: UTC, without an offset, to the millisecond."""
    return listrak_time(at)[:-1]


class When(fields.String):
    """An ISO-8601 date-time, stored as Listrak writes it."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = parse_when(super()._deserialize(value, attr, data, **kwargs))
        if parsed is None:
            raise ValidationError("not an ISO-8601 date-time")
        return listrak_time(parsed)


class ContactDate(fields.String):
    """An ISO-8601 date-time (without an offset: UTC), stored as Listrak writes contact dates."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = parse_when(super()._deserialize(value, attr, data, **kwargs))
        if parsed is None:
            raise ValidationError("not an ISO-8601 date-time")
        return contact_date(parsed)


def _id(**kwargs):
    return fields.Integer(strict=True, validate=validate.Range(min=1), **kwargs)


class MessageSeed(Schema):
    messageId = _id(required=True)
    subject = fields.String(required=True)
    fromEmail = fields.String(required=True)
    fromName = fields.String(load_default="Sandbox")
    sendDate = When(required=True)
    campaignId = fields.Integer(strict=True, load_default=None, allow_none=True)
    externalCampaignId = fields.String(load_default="")


class RowSeed(Schema):
    """One recipient's row; sent again it updates the row (only the fields given)."""

    messageId = _id(required=True)
    emailAddress = fields.Email(required=True)
    sendDate = When()
    activityDate = When(allow_none=True)
    open = fields.Boolean()
    read = fields.Boolean()
    click = fields.Boolean()
    bounce = fields.Boolean()
    bounceReason = fields.String(allow_none=True)
    unsubscribe = fields.Boolean()
    abuse = fields.Boolean()
    orderTotal = fields.Float(allow_none=True)
    externalContactID = fields.String(allow_none=True)


class LinkSeed(Schema):
    messageId = _id(required=True)
    linkId = _id(required=True)
    linkUrl = fields.String(required=True)
    linkDescription = fields.String(load_default="")


class ClickSeed(Schema):
    messageId = _id(required=True)
    linkId = _id(required=True)
    emailAddress = fields.Email(required=True)
    clickDate = When(required=True)


class ContactSeed(Schema):
    emailAddress = fields.Email(required=True)
    subscriptionState = fields.String(
        load_default="Subscribed", validate=validate.OneOf(["Subscribed", "Unsubscribed"])
    )
    segmentationFieldValues = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    subscribeDate = ContactDate(load_default=None)  # default: now
    unsubscribeDate = ContactDate(load_default=None)  # an unsubscribed contact's; default: now


class ActivitySeed(Schema):
    """The body of `POST /_sandbox/activity`: everything optional but `list_id`."""

    list_id = _id(required=True)
    contacts = fields.List(fields.Nested(ContactSeed), load_default=list)
    messages = fields.List(fields.Nested(MessageSeed), load_default=list)
    rows = fields.List(fields.Nested(RowSeed), load_default=list)
    links = fields.List(fields.Nested(LinkSeed), load_default=list)
    clicks = fields.List(fields.Nested(ClickSeed), load_default=list)

    @validates_schema
    def _field_ids(self, data, **kwargs):
        for i, contact in enumerate(data.get("contacts", [])):
            if not all(k.isdigit() for k in contact["segmentationFieldValues"]):
                raise ValidationError(
                    "keys must be profile field ids", f"contacts.{i}.segmentationFieldValues"
                )


class ActivityBook:
    """Messages, rows, links and clicks per list, in the order they were added."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.messages: dict[int, dict[int, dict]] = {}
            self.rows: dict[tuple[int, int], dict[str, dict]] = {}
            self.links: dict[tuple[int, int], dict[int, dict]] = {}
            self.clicks: dict[tuple[int, int, int], list[dict]] = {}

    def summary(self) -> dict:
        """{list id: {message id: counts of rows, links and clicks}} (JSON-ready)."""
        with self.lock:
            return {
                str(list_id): {
                    str(mid): {
                        "rows": len(self.rows[(list_id, mid)]),
                        "links": len(self.links[(list_id, mid)]),
                        "clicks": sum(len(c) for k, c in self.clicks.items() if k[:2] == (list_id, mid)),
                    }
                    for mid in messages
                }
                for list_id, messages in self.messages.items()
            }

    def message(self, list_id: int, message_id: int) -> dict | None:
        return self.messages.get(list_id, {}).get(message_id)

    def add(self, seed: dict, now: str) -> dict[str, int]:
        """Apply a loaded ActivitySeed (contacts aside); KeyError names an unknown message or
        link. A row's first flag stamps its activityDate (`now` unless given); later flags
        leave it, as Listrak keeps only the date of a row's first activity."""
        list_id = seed["list_id"]
        with self.lock:
            self._check_references(seed)
            for message in seed["messages"]:
                self.messages.setdefault(list_id, {})[message["messageId"]] = message
                self.rows.setdefault((list_id, message["messageId"]), {})
                self.links.setdefault((list_id, message["messageId"]), {})
            for row in seed["rows"]:
                self._row(list_id, row, now)
            for link in seed["links"]:
                self._known(list_id, link["messageId"])
                self.links[(list_id, link["messageId"])][link["linkId"]] = link
            for click in seed["clicks"]:
                self._click(list_id, click)
        return {name: len(seed[name]) for name in ("contacts", "messages", "rows", "links", "clicks")}

    def _check_references(self, seed: dict) -> None:
        """Nothing is applied unless every row, link and click names a known message (and
        every click a known link): KeyError naming the first that does not."""
        list_id = seed["list_id"]
        messages = set(self.messages.get(list_id, {})) | {m["messageId"] for m in seed["messages"]}
        links = {(k[1], link_id) for k, found in self.links.items() if k[0] == list_id for link_id in found}
        links |= {(link["messageId"], link["linkId"]) for link in seed["links"]}
        for name in ("rows", "links", "clicks"):
            for item in seed[name]:
                if item["messageId"] not in messages:
                    raise KeyError(f"{name}: no message {item['messageId']} on list {list_id}")
        for click in seed["clicks"]:
            if (click["messageId"], click["linkId"]) not in links:
                raise KeyError(f"clicks: no link {click['linkId']} in message {click['messageId']}")

    def _known(self, list_id: int, message_id: int) -> dict:
        message = self.message(list_id, message_id)
        if message is None:
            raise KeyError(f"no message {message_id} on list {list_id}: seed it in messages first")
        return message

    def _row(self, list_id: int, seed: dict, now: str | None = None) -> dict:
        message = self._known(list_id, seed["messageId"])
        email = seed["emailAddress"].lower()
        rows = self.rows[(list_id, seed["messageId"])]
        row = rows.get(email)
        if row is None:
            row = rows[email] = {
                **dict.fromkeys(ROW_FLAGS, False),
                "emailAddress": email,
                "sendDate": message["sendDate"],
                "activityDate": None,
                "bounceReason": None,
                "clickCount": 0,
                "orderTotal": 0.0,
                "visitDate": None,
                "externalContactID": None,
            }
        first_activity = row["activityDate"]
        row.update({k: v for k, v in seed.items() if k in ROW_KEYS})
        if first_activity is not None:
            row["activityDate"] = first_activity
        elif row["activityDate"] is None and any(seed.get(flag) for flag in ROW_FLAGS):
            row["activityDate"] = now
        return row

    def _click(self, list_id: int, click: dict) -> None:
        key = (list_id, click["messageId"])
        if click["linkId"] not in self.links.get(key, {}):
            raise KeyError(
                f"no link {click['linkId']} in message {click['messageId']}: seed it in links first"
            )
        email = click["emailAddress"].lower()
        self.clicks.setdefault((*key, click["linkId"]), []).append(
            {"emailAddress": email, "clickDate": click["clickDate"]}
        )
        row = self._row(list_id, {"messageId": click["messageId"], "emailAddress": email})
        row["click"] = True
        row["clickCount"] += 1
        if row["activityDate"] is None:  # Listrak keeps the date of a row's first activity only
            row["activityDate"] = click["clickDate"]
