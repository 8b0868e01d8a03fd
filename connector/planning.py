"""Turns one accepted event into planned deliveries for every enabled partner it feeds."""

from __future__ import annotations

from connector.contract import InboundEvent, PlannedDelivery


def plan_event(runtime, source_id: str, event: InboundEvent) -> list[tuple[str, PlannedDelivery]]:
    planned = []
    for partner in runtime.config.partners_for(source_id):
        destination = runtime.destination(partner)
        for delivery in destination.plan(event, partner):
            planned.append((partner["id"], delivery))
    return planned
