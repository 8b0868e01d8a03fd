"""Shared by sources: per-event schema validation that names every bad payload path
("[3].person.email", "batch[2].type") and accepts nothing if anything is bad (the JSON itself
is read by `connector.inbound_json`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, missing

from connector.contract import PayloadError

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


def problems_at(messages: dict | list, prefix: str) -> dict[str, list[str]]:
    """marshmallow's nested error messages as {payload path: [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, list):  # a message for the item itself
        out[prefix or "$"] = [str(m) for m in messages]
        return out
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


def plain_loader(schema: Schema) -> Callable[[dict], dict | None]:
    """A loader that gives what `schema.load(item)` gives for a plainly valid item, without
    marshmallow's per-field machinery (about a fifth of the time), and None for anything
    else, which the caller then loads with `schema` (whose errors name every problem).

    Plain means: every `String` field present holds a str that passes the field's validators
    (called as they are), every `Nested` one an object that is plain in turn; other fields
    are loaded by the field itself; an absent field takes its `load_default`, or is left out,
    or (when required) makes the item not plain. Unknown keys are left out, so the schema must
    EXCLUDE them. A schema `pre_load` must leave plain items as they are (it is not run);
    other schema hooks are refused here."""
    # The schema class's hooks as its metaclass resolves them (`SchemaMeta.resolve_hooks`).
    hooks = {tag for tag, found in type(schema).resolve_hooks().items() if found}
    if schema.unknown != EXCLUDE or hooks - {"pre_load"}:
        raise TypeError(
            f"{type(schema).__name__}: plain loading needs unknown=EXCLUDE and no hooks but pre_load"
        )
    steps: list[tuple[str, str, fields.Field, str, Any]] = []
    for name, field in schema.fields.items():
        bare = not (field.pre_load or field.post_load or field.allow_none)
        how: Any
        if type(field) is fields.String and bare:
            kind, how = _TEXT, field.validators
        elif type(field) is fields.Nested and bare and not field.many and not field.validators:
            kind, how = _NESTED, plain_loader(field.schema)
        else:
            kind, how = _FIELD, field
        steps.append((field.data_key or name, name, field, kind, how))

    def load(item: dict) -> dict | None:
        loaded = {}
        for key, name, field, kind, how in steps:
            value = item.get(key, missing)
            if value is missing:
                if field.required:
                    return None
                if field.load_default is not missing:
                    default = field.load_default
                    loaded[name] = default() if callable(default) else default
                continue
            try:
                if kind is _TEXT:
                    if type(value) is not str:
                        return None
                    for validator in how:
                        validator(value)
                elif kind is _NESTED:
                    value = how(value) if type(value) is dict else None
                    if value is None:
                        return None
                else:
                    value = how.deserialize(value, key, item)
            except ValidationError:
                return None
            loaded[name] = value
        return loaded

    return load


_TEXT, _NESTED, _FIELD = "text", "nested", "field"
