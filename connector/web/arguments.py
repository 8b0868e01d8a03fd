"""What the admin API and the Live View accept, as marshmallow schemas: the query arguments that
filter and page the listing, and the body of a replay request. A request they refuse gets one
message naming each bad field ("limit: between 1 and 200")."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from connector.contract import STATES
from connector.fields import normalise_email
from connector.web.access import MAX_ID
from connector.web.readmodel import DEFAULT_PAGE, MAX_PAGE, Filters

MAX_TEXT = 320
MAX_REPLAY_IDS = 1000


class ArgumentError(ValueError):
    """A request the schema refused; the message names each bad field and says why."""


def load(schema: Schema, data: Any) -> Any:
    """`schema.load(data)`, or ArgumentError with every problem as "field: why"."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ArgumentError(
            "; ".join(
                message if field == "_schema" else f"{field}: {message}"
                for field, messages in exc.normalized_messages().items()
                for message in messages
            )
        ) from exc


def _printable(text: str) -> None:
    # PostgreSQL refuses NUL in text; no id, type or address holds control characters anyway.
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValidationError("no control characters")


def _text(cls: type[fields.String] = fields.String, **kwargs) -> fields.String:
    return cls(
        validate=[validate.Length(max=MAX_TEXT, error="at most {max} characters"), _printable], **kwargs
    )


class _Outcomes(fields.String):
    """A comma-separated list of outcomes ("dead,retrying")."""

    # A String on the wire that loads as a tuple of outcomes, hence the wider return type.
    def _deserialize(self, value, attr, data, **kwargs) -> tuple[str, ...]:  # type: ignore[override]
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > MAX_TEXT:
            raise ValidationError(f"at most {MAX_TEXT} characters")
        outcomes = tuple(dict.fromkeys(o.strip() for o in text.split(",") if o.strip()))
        unknown = [o for o in outcomes if o not in STATES]
        if unknown:
            raise ValidationError(f"unknown {', '.join(unknown)} (one of {', '.join(STATES)})")
        return outcomes


class _EmailFragment(fields.String):
    """A whole address or a part of one ("jane", "@example.com"), normalised like addresses."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        return normalise_email(super()._deserialize(value, attr, data, **kwargs))


class _WholeNumber(fields.Integer):
    """Digits only: "1e9", "5_0" or "-1" are not a page size nor an event id."""

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        if not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class _FilterFields(Schema):
    """Filters of the listing and the counts; a blank argument is no filter."""

    class Meta:
        unknown = EXCLUDE  # ?partial=1 and the like are for the page, not the filter

    source = _text(load_default=None)
    partner = _text(load_default=None)
    environment = _text(load_default=None)
    type = _text(load_default=None)
    email = _text(load_default=None, cls=_EmailFragment)
    outcome = _Outcomes(load_default=())

    @pre_load
    def _blank_is_absent(self, args, **kwargs) -> dict:
        # Query arguments come as a MultiDict: the first value of each counts.
        return {name: value.strip() for name, value in args.items() if value.strip()}

    def _filters(self, data: dict) -> Filters:
        return Filters(**{field.name: data[field.name] for field in dataclasses.fields(Filters)})


class FilterArgs(_FilterFields):
    """Query arguments → Filters."""

    @post_load
    def _load(self, data, **kwargs) -> Filters:
        return self._filters(data)


class Listing(NamedTuple):
    filters: Filters
    before: int | None
    limit: int


class ListingArgs(_FilterFields):
    """Query arguments → the filters and one page: `before` (an event id, for the next older
    page) and `limit`."""

    before = _WholeNumber(
        load_default=None,
        validate=validate.Range(1, MAX_ID, error="an event id"),
        error_messages={"invalid": "an event id"},
    )
    limit = _WholeNumber(
        load_default=DEFAULT_PAGE,
        validate=validate.Range(1, MAX_PAGE, error="between {min} and {max}"),
        error_messages={"invalid": f"a whole number between 1 and {MAX_PAGE}"},
    )

    @post_load
    def _load(self, data, **kwargs) -> Listing:
        return Listing(self._filters(data), data["before"], data["limit"])


class _StrictBoolean(fields.Boolean):
    """JSON true or false, not 1 or "yes"."""

    default_error_messages = {"invalid": "true or false", "null": "true or false"}

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class _DeliveryIds(fields.List):
    """At most MAX_REPLAY_IDS delivery ids (JSON integers); one message for any problem."""

    def __init__(self, **kwargs):
        problem = f"a list of at most {MAX_REPLAY_IDS} delivery ids"
        super().__init__(
            fields.Integer(strict=True, validate=validate.Range(1, MAX_ID)),
            validate=validate.Length(max=MAX_REPLAY_IDS, error=problem),
            error_messages={"invalid": problem},
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs) -> list:
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ValidationError as exc:
            raise self.make_error("invalid") from exc


class ReplayRequest(Schema):
    """A replay request body → the arguments of `replay()`: named deliveries, or every dead one
    (optionally of one partner, finished since a time)."""

    class Meta:
        unknown = RAISE

    error_messages = {
        "unknown": "unknown field",
        "type": 'send a JSON object: {"delivery_ids": [...]} or {"dead": true}',
    }

    delivery_ids = _DeliveryIds(load_default=None, allow_none=True)
    dead = _StrictBoolean(load_default=False)
    partner = _text(load_default=None, allow_none=True, error_messages={"invalid": "a partner id"})
    since = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        error_messages={
            "invalid": "an ISO-8601 time with offset",
            "invalid_awareness": "needs a UTC offset, e.g. 2026-11-22T05:00:00Z",
        },
    )

    @validates_schema
    def _names_what_to_replay(self, data, **kwargs) -> None:
        if not data["delivery_ids"] and not data["dead"]:
            raise ValidationError("name delivery_ids, or set dead: true (optionally with partner/since)")

    @post_load
    def _load(self, data, **kwargs) -> dict:
        since = data["since"]
        return {
            "delivery_ids": data["delivery_ids"] or None,
            "dead": data["dead"],
            "partner": data["partner"] or None,
            "since": since.timestamp() if since is not None else None,
        }


class StoryArgs(Schema):
    """Query arguments of a consent story: `live=false` leaves out what partners hold now (no
    request leaves); `story` names whom (the Live View's lookup box)."""

    class Meta:
        unknown = EXCLUDE

    live = fields.Boolean(load_default=True, error_messages={"invalid": "true or false"})
    story = _text(load_default=None)


FILTERS = FilterArgs()
STORY = StoryArgs()
LISTING = ListingArgs()
REPLAY = ReplayRequest()


def listing(request) -> Listing:
    """The filters and the page a request asks for."""
    return load(LISTING, _query(request))


def filters(request) -> Filters:
    """The filters a request asks for (paging arguments are ignored)."""
    return load(FILTERS, _query(request))


def story(request) -> dict:
    """`live` (whether to read partners now) and `story` (the lookup box's address)."""
    return load(STORY, _query(request))


def replay_request(request) -> dict:
    """The arguments of `replay()` from a request's JSON body."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # [[[[…]]]] thousands deep still fits in the body limit
        body = None
    return load(REPLAY, body)


def _query(request):
    try:
        return request.args
    except UnicodeDecodeError as exc:  # raw bytes past the server; percent-escapes are kept
        raise ArgumentError("the query string is not UTF-8") from exc
