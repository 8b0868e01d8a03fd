"""The trigger conditions of a Listrak partner's Segment-style mappings: `{field: <dotted path>,
<operator>: <value>}` over the event as sent, with the operators of Segment's own mapping
conditions: is, is_not, exists, contains, starts_with, ends_with, gt, lt.

`gt` / `lt` compare numbers with numbers and ISO-8601 dates with dates (a date or time without
an offset is taken as UTC, as Segment's libraries mean it). A value the operator cannot compare
(absent, null, a string that is not a number or date) never meets the condition.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from marshmallow import ValidationError, fields, post_load, validates_schema

from connector.plugin_api import StrictSchema

OPERATORS = ("is", "is_not", "exists", "contains", "starts_with", "ends_with", "gt", "lt")
MISSING = object()
_NUMBER = re.compile(r"^\s*-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$")


def dotted_path(value: str) -> None:
    if not value or any(not part.strip() for part in value.split(".")):
        raise ValidationError("must be a dotted path such as context.traits.email")


def resolve(payload, path: str):
    """The value at a dotted path of the event, or MISSING."""
    value = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


class Scalar(fields.Raw):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str | int | float | bool):
            raise ValidationError("must be a string, number or boolean")
        return value


def as_time(value) -> datetime | None:
    """An ISO-8601 date or date-time (YAML may have read it already) as an aware datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and len(value) >= 10 and value[:4].isdigit() and value[4] == "-":
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def as_number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value)
    return None


class ConditionSchema(StrictSchema):
    """One condition; the error names the operator and what is wrong with its value."""

    field = fields.String(required=True, validate=dotted_path)
    is_ = Scalar(data_key="is")
    is_not = Scalar()
    exists = fields.Boolean()
    contains = Scalar()
    starts_with = fields.String()
    ends_with = fields.String()
    gt = fields.Raw()
    lt = fields.Raw()

    @validates_schema
    def _one_operator(self, data, **kwargs):
        given = [name for name in ("is_", *OPERATORS[1:]) if name in data]
        if len(given) != 1:
            raise ValidationError(f"each condition needs exactly one of {', '.join(OPERATORS)}")
        for bound in ("gt", "lt"):
            if bound in data and as_number(data[bound]) is None and as_time(data[bound]) is None:
                raise ValidationError(
                    f"{bound} needs a number or an ISO-8601 date (2026-11-22 or 2026-11-22T05:00:00Z), "
                    f"got {data[bound]!r}",
                    bound,
                )

    @post_load
    def _bound_kind(self, data, **kwargs):
        for bound in ("gt", "lt"):
            if bound in data:
                number = as_number(data[bound])
                data[bound] = ("number", number) if number is not None else ("time", as_time(data[bound]))
        return data


def _same(actual, expected) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    if isinstance(actual, str) != isinstance(expected, str):  # 12345 matches "12345"
        return isinstance(actual, str | int | float) and str(actual) == str(expected)
    return actual == expected


def _compare(value, bound: tuple[str, object]):
    """(value, bound) as two comparable things, or None when they cannot be compared."""
    kind, limit = bound
    found = as_number(value) if kind == "number" else as_time(value) if isinstance(value, str) else None
    return None if found is None else (found, limit)


def holds(condition: dict, payload: dict) -> bool:
    value = resolve(payload, condition["field"])
    present = value is not MISSING and value is not None
    if "exists" in condition:
        return present == condition["exists"]
    if "is_not" in condition:
        return not (present and _same(value, condition["is_not"]))
    if not present:
        return False
    if "is_" in condition:
        return _same(value, condition["is_"])
    if "contains" in condition:
        if isinstance(value, list):
            return any(_same(item, condition["contains"]) for item in value)
        return isinstance(value, str) and str(condition["contains"]) in value
    if "starts_with" in condition:
        return isinstance(value, str) and value.startswith(condition["starts_with"])
    if "ends_with" in condition:
        return isinstance(value, str) and value.endswith(condition["ends_with"])
    bound = "gt" if "gt" in condition else "lt"
    pair = _compare(value, condition[bound])
    if pair is None:
        return False
    return pair[0] > pair[1] if bound == "gt" else pair[0] < pair[1]
