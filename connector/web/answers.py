"""The admin API's answers as marshmallow schemas: /openapi.json describes each answer from these
(`describe.py`), and tests/web/test_answers.py validates real answers against them, so what the
document promises and what the routes send cannot drift apart. Times are ISO-8601 text in UTC
(or null); ids are the store's integer keys."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from connector.contract import STATES
from connector.web import overview


def _id(**kwargs) -> fields.Integer:
    """A row id of the store."""
    return fields.Integer(strict=True, validate=validate.Range(1, 2**63 - 1), **kwargs)


def _count(**kwargs) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=0), **kwargs)


def _text(**kwargs) -> fields.String:
    return fields.String(allow_none=True, **kwargs)


class Answer(Schema):
    """An answer's fields; a key not named here is allowed (an answer may grow) but undescribed."""

    class Meta:
        unknown = EXCLUDE


class ErrorAnswer(Answer):
    error = fields.String(required=True)
    message = fields.String()


class ProblemsAnswer(ErrorAnswer):
    """A refused body: each problem under its payload path."""

    problems = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


#: Deliveries per outcome, every outcome present.
Counts = Answer.from_dict({state: _count(required=True) for state in STATES}, name="Counts")


class Event(Answer):
    id = _id(required=True)
    source = fields.String(required=True)
    event_id = fields.String(required=True)
    type = fields.String(required=True)
    environment = fields.String(required=True)
    email = _text()
    phone = _text()
    event_time = _text()
    received_at = _text(required=True)
    warnings = fields.List(fields.String(), metadata={"description": "optional fields left out, and why"})


class Delivery(Answer):
    id = _id(required=True)
    event: fields.Field = _id(required=True)
    partner = fields.String(required=True)
    action = fields.String(required=True)
    environment = fields.String()
    partner_key_id = _text()
    outcome = fields.String(required=True, validate=validate.OneOf(STATES))
    reason = _text()
    attempts = _count(required=True)
    last_status = fields.Integer(allow_none=True)
    last_error_code = _text()
    last_error_message = _text()
    last_latency_ms = fields.Float(allow_none=True)
    next_attempt_at = _text()
    created_at = _text()
    updated_at = _text()


class Attempt(Answer):
    id = _id(required=True)
    started_at = _text(required=True)
    outcome = fields.String(required=True)
    status = fields.Integer(required=True, allow_none=True)
    error_code = _text(required=True)
    error_message = _text(required=True)
    latency_ms = fields.Float(required=True, allow_none=True)
    batch_size = _count()
    request = fields.Dict(allow_none=True, metadata={"description": "the redacted request"})
    response = fields.Dict(allow_none=True)


class DeliveryDetail(Delivery):
    spec = fields.Raw()
    attempt_log = fields.List(fields.Nested(Attempt), required=True)


class EventDetail(Event):
    payload = fields.Raw(required=True)
    deliveries = fields.List(fields.Nested(DeliveryDetail), required=True)


class EventWithPayload(Event):
    payload = fields.Raw()


class DeliveryWithEvent(DeliveryDetail):
    event = fields.Nested(EventWithPayload, required=True)


class EventWithDeliveries(Event):
    deliveries = fields.List(fields.Nested(Delivery))


class EventPage(Answer):
    events = fields.List(fields.Nested(EventWithDeliveries), required=True)
    next_before = fields.Integer(required=True, allow_none=True)
    filters = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    counts = fields.Nested(Counts, required=True)


class Breaker(Answer):
    key = _text()
    partner = fields.String()
    state = fields.String(required=True)
    reason = _text(required=True)
    failures = _count(required=True)
    next_probe_at = _text()
    updated_at = _text()


class PullSource(Answer):
    source = fields.String(required=True)
    last_poll_at = _text()
    last_ok_at = _text()
    next_poll_at = _text()
    rows_read = _count(required=True)
    events_produced = _count(required=True)
    summary = _text(metadata={"description": "what the latest poll read, in its source's words"})
    failures = _count(required=True)
    last_error = _text()
    stopped_early = _text(
        metadata={
            "description": "why the last poll ended before its source read everything (its "
            "max_pages_per_poll), or null; the next poll goes on from there"
        }
    )
    polling_now = _text()


class LastPurge(Answer):
    started_at = _text()
    finished_at = _text()
    running = fields.Boolean()
    next_run_at = _text()
    error = _text()
    removed = fields.Dict(keys=fields.String(), values=_count())
    transactions = _count()
    longest_transaction_ms = fields.Float()
    seconds = fields.Float()


class Summary(Answer):
    counts = fields.Nested(Counts, required=True)
    waiting_to_plan = _count(
        required=True, metadata={"description": "Events accepted (202) that no worker has planned yet"}
    )
    paused_keys = fields.List(fields.Nested(Breaker), required=True)
    open_circuits = fields.List(fields.Nested(Breaker), required=True)
    pull_sources = fields.List(fields.Nested(PullSource), required=True)
    last_purge = fields.Nested(LastPurge, required=True, allow_none=True)


class Refusal(Answer):
    """A request answered 4xx on a webhook route; source "(unknown)" if none is configured."""

    at = _text(required=True)
    source = fields.String(required=True)
    status = fields.Integer(required=True)
    reason = fields.String(required=True)


class Refusals(Answer):
    refusals = fields.List(fields.Nested(Refusal), required=True)


def _series() -> fields.List:
    return fields.List(fields.Float(allow_none=True))


class Latency(Answer):
    p50 = _series()
    p95 = _series()


class Queue(Answer):
    depth = _series()
    oldest_due_seconds = _series()


class LatencyWindow(Answer):
    p50 = fields.Float(allow_none=True)
    p95 = fields.Float(allow_none=True)
    requests = _count()


class QueueSample(Answer):
    depth = _count()
    oldest_due_seconds = fields.Float(allow_none=True)


class Polls(Answer):
    """One pull source's polls in the window; `*_per_poll` per slot."""

    source = fields.String(required=True)
    last_ok_at = _text()
    last_error = _text()
    polls = _count()
    failed = _count()
    stopped_early = _count()
    rows_read = _count()
    events_produced = _count()
    rows_per_poll = _series()
    events_per_poll = _series()


class Overview(Answer):
    window = fields.String(required=True, validate=validate.OneOf(list(overview.WINDOWS)))
    partner = _text()
    starts = fields.List(
        fields.Float(), required=True, metadata={"description": "each slot's start (UNIX s)"}
    )
    step = fields.Float(required=True)
    step_name = fields.String(metadata={"description": "the slot's length in words"})
    stacks = fields.List(fields.Dict(keys=fields.String(), values=_count()), required=True)
    totals = fields.Dict(keys=fields.String(), values=_count(), required=True)
    latency = fields.Nested(Latency, required=True)
    latency_window = fields.Nested(LatencyWindow)
    queue = fields.Nested(Queue, required=True)
    queue_latest = fields.Nested(QueueSample, allow_none=True, metadata={"description": "the newest sample"})
    polls = fields.List(fields.Nested(Polls), required=True)
    last_purge = fields.Nested(LastPurge, allow_none=True)


class Accepted(Answer):
    """A webhook's events stored; a repeated event id is a duplicate."""

    accepted = _count(required=True)
    duplicates = _count(required=True)


class Replayed(Answer):
    queued = _count(required=True)
    superseded = _count(required=True)
    unchanged = _count(required=True)
