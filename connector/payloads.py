"""Shared by sources: JSON decoding and per-event schema validation that names every bad
payload path ("[3].person.email", "batch[2].type") and accepts nothing if anything is bad."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError

from connector.contract import PayloadError


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError({"$": [f"malformed JSON: {exc}"]}) from exc
    except RecursionError as exc:  # [[[[…]]]] thousands deep still fits in 1 MiB
        raise PayloadError({"$": ["malformed JSON: nested too deeply"]}) from exc


EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
#: Clocks drift; an event stamped further ahead than this is a bug, and would otherwise stay
#: "newest" for its contact for years, superseding every real change after it.
FUTURE_TOLERANCE = timedelta(days=1)


def check_event_time(moment: datetime) -> None:
    """marshmallow validator: a time a real event can have."""
    if moment < EARLIEST_EVENT_TIME:
        raise ValidationError("is before 2000-01-01")
    if moment > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise ValidationError("is more than a day in the future")


def problems_at(messages: dict, prefix: str) -> dict[str, list[str]]:
    """marshmallow's nested error messages as {payload path: [messages]}."""
    out: dict[str, list[str]] = {}
    for key, value in messages.items():
        path = prefix if key == "_schema" else f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(problems_at(value, path))
        else:
            out.setdefault(path, []).extend(str(v) for v in value)
    return out


def load_each(items: list, schema: Schema, path_of) -> list[tuple[dict, dict]]:
    """(raw item, loaded data) for every item, or PayloadError naming every bad one;
    `path_of(index)` gives an item's path prefix ("" for a lone event)."""
    problems: dict[str, list[str]] = {}
    loaded = []
    for index, item in enumerate(items):
        prefix = path_of(index)
        if not isinstance(item, dict):
            problems[prefix or "$"] = ["an event must be a JSON object"]
            continue
        try:
            loaded.append((item, schema.load(item)))
        except ValidationError as exc:
            problems.update(problems_at(exc.messages, prefix))
    if problems:
        raise PayloadError(problems)
    return loaded
