"""A JSON feed of events as a pull source: `GET {api_url}/events?after=<cursor>` with
`Authorization: Bearer <key>` answers `{"events": [{"id", "type", "email", "time"}, …],
"next": <cursor>}`; an empty page means the feed is read to its end."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import fields

from connector.plugin_api import (
    CredentialsFor,
    Http,
    InboundEvent,
    OutboundRequest,
    OutboundUrl,
    Poll,
    PollFailed,
    PullSource,
    PullSourceConfigSchema,
    valid_email,
)


class FeedSourceSchema(PullSourceConfigSchema):
    """`config/sources/<id>.yaml`: the common fields (poll_interval, lookback, …), the feed's
    URL and the BEARER key that reads it."""

    api_url = OutboundUrl(required=True)
    key = fields.String(required=True)


class FeedSource(PullSource):
    name = "example_feed"
    config_schema = FeedSourceSchema

    def poll(
        self,
        source_config: Mapping[str, Any],
        cursor: dict | None,
        since: float,
        http: Http,
        credentials: CredentialsFor,
    ) -> Iterator[Poll]:
        after = (cursor or {}).get("after", 0)
        key = credentials(source_config["key"])
        while True:
            request = OutboundRequest(
                "GET", f"{source_config['api_url']}/events", params={"after": str(after)}
            )
            result = http.send(request, key)
            if not result.ok or not isinstance(result.body, dict):
                raise PollFailed(
                    f"GET /events: {result.error or f'HTTP {result.status}'}", result.retry_after
                )
            rows = result.body.get("events") or []
            if not rows:
                return
            after = result.body.get("next", after + len(rows))
            events = [_event(row, source_config["environment"]) for row in rows if isinstance(row, dict)]
            yield Poll(events, {"after": after}, rows_read=len(rows), summary=f"read up to {after}")

    def check(self, source_config, config) -> list[str]:
        key = config.keys.get(source_config["key"])
        if key is not None and key["algorithm"] != "BEARER":
            return [f"key: key {source_config['key']!r} is {key['algorithm']}; the feed takes a BEARER key"]
        return []


def _event(row: dict, environment: str) -> InboundEvent:
    email = row.get("email")
    return InboundEvent(
        event_id=str(row.get("id")),
        type=str(row.get("type") or "event"),
        event_time=_time(row.get("time")),
        environment=environment,
        email=valid_email(email) if isinstance(email, str) else None,
        payload=row,
    )


def _time(value) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
