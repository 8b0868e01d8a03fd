"""Any HTTPS endpoint that takes events as JSON (`POST {url}`, `Authorization: Bearer <key>`
from a BEARER key): one request per event, the core's reading of the answer (2xx delivered;
408, 429 and 5xx retried; other 4xx dead)."""

from __future__ import annotations

from connector.plugin_api import (
    Action,
    Destination,
    InboundEvent,
    OutboundRequest,
    OutboundUrl,
    Partner,
    PartnerConfigSchema,
    PlannedDelivery,
)


class WebhookPartnerSchema(PartnerConfigSchema):
    """`config/partners/<id>.yaml`: the common fields (plugin, sources, keys, …) and the URL."""

    url = OutboundUrl(required=True)


class PostEvent(Action):
    name = "post_event"

    def build_request(self, partner: Partner, specs: list[dict]) -> OutboundRequest:
        (spec,) = specs  # max_batch is 1: one event per request
        return OutboundRequest(
            "POST", partner.settings["url"], json=spec, headers={"Content-Type": "application/json"}
        )


class WebhookDestination(Destination):
    name = "example_webhook"
    config_schema = WebhookPartnerSchema
    actions = {PostEvent.name: PostEvent()}

    def plan(self, event: InboundEvent, partner: Partner) -> list[PlannedDelivery]:
        key_id = partner.key_for(event.environment)
        spec = {
            "id": event.event_id,
            "type": event.type,
            "email": event.email,
            "time": event.event_time.isoformat(),
            "data": event.payload,
        }
        skip = None if key_id else f"{event.environment} event and no {event.environment} key is configured"
        # No contact_key: these are facts (nothing later contradicts them), sent in any order.
        return [PlannedDelivery(PostEvent.name, spec, key_id, skip_reason=skip)]
