"""A pull source and a batching destination that exist only in tests: the source reads rows
from a list in pages of two; the destination sends events it did not receive itself, in
batches, unordered (facts, not consent)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from marshmallow import fields

from connector.contract import (
    Action,
    Destination,
    InboundEvent,
    OutboundRequest,
    OutboundUrl,
    PartnerConfigSchema,
    PlannedDelivery,
    Plugin,
    Poll,
    PollFailed,
    PullSource,
    PullSourceConfigSchema,
)
from connector.registry import load_registry

SINK_URL = "https://sink.example.test/v1/batch"


class RowsSourceSchema(PullSourceConfigSchema):
    table = fields.String(load_default="rows")


class RowsSource(PullSource):
    """Reads `rows` (dicts with an `id`) after the cursor, two per page. `fail_after` pages
    raises `failure` after that many pages. With `page_url`, each page is first fetched from
    it through the core's HTTP client (so a poll's page budget counts it); `endless` makes the
    rows never run out, as a partner handing out new cursors for ever would. `summaries[n]`,
    when there, is page n's summary."""

    name = "rows"
    config_schema = RowsSourceSchema

    def __init__(self):
        self.rows: list[dict] = []
        self.fail_after: int | None = None
        self.failure: Exception = PollFailed("partner answered 503")
        self.calls: list[dict | None] = []
        self.page_url: str | None = None
        self.requests_per_page = 1
        self.endless = False
        self.summaries: dict[int, str] = {}

    def poll(self, source_config, cursor, since, http, credentials):
        self.calls.append(cursor)
        start = (cursor or {}).get("after", 0)
        firsts = itertools.count(start, 2) if self.endless else range(start, len(self.rows), 2)
        for pages, first in enumerate(firsts):
            if self.fail_after is not None and pages >= self.fail_after:
                raise self.failure
            for _ in range(self.requests_per_page if self.page_url else 0):
                http.send(OutboundRequest("GET", self.page_url, params={"after": str(first)}))
            page = [{"id": first}, {"id": first + 1}] if self.endless else self.rows[first : first + 2]
            events, summary = [_event(row) for row in page], self.summaries.get(pages)
            yield Poll(events, {"after": first + len(page)}, rows_read=len(page), summary=summary)


def _event(row: dict) -> InboundEvent:
    return InboundEvent(
        event_id=f"row-{row['id']}",
        type="row",
        event_time=datetime(2026, 11, 22, 5, 0, tzinfo=UTC),
        environment="production",
        email=row.get("email"),
        payload=row,
    )


class SendBatch(Action):
    """Sends specs as one JSON batch; refuses specs whose id is in `too_big`, and splits a
    batch into requests of at most `per_request` specs."""

    name = "send_batch"
    max_batch = 100
    too_big: set = set()
    per_request = 100

    def refuse(self, partner, spec):
        return "over the size limit" if spec["id"] in self.too_big else None

    def batches(self, partner, specs):
        return [
            list(range(i, min(i + self.per_request, len(specs))))
            for i in range(0, len(specs), self.per_request)
        ]

    def build_request(self, partner, specs):
        return OutboundRequest("POST", partner.settings["api_url"], json={"batch": specs})


class SinkSchema(PartnerConfigSchema):
    api_url = OutboundUrl(required=True)


class Sink(Destination):
    name = "sink"
    config_schema = SinkSchema
    actions = {SendBatch.name: SendBatch()}

    def plan(self, event, partner):
        return [
            PlannedDelivery(
                SendBatch.name,
                {"id": event.payload["id"]},
                partner.keys.production,
                batch_key=f"{partner.id}|{event.environment}",
            )
        ]


def registry_with(source: RowsSource):
    registry = load_registry()
    registry.add(Plugin(name="test-pull", pull_sources=[source], destinations=[Sink()]), "test plugin")
    return registry


SOURCE_YAML = "plugin: rows\npoll_interval: 1m\nlookback: 1d\n"
PARTNER_YAML = f"""plugin: sink
sources: [activity]
api_url: {SINK_URL}
keys: {{production: sink-key}}
"""
KEY_YAML = """name: Sink
partner_key_id: sink-key
algorithm: BEARER
key: sink-token-value
"""


def write_config(config_dir) -> None:
    (config_dir / "sources" / "activity.yaml").write_text(SOURCE_YAML)
    (config_dir / "partners" / "sink.yaml").write_text(PARTNER_YAML)
    (config_dir / "keys" / "sink-key.yaml").write_text(KEY_YAML)
