"""Listrak Email API destination: opt-in/opt-out through `POST /List/{id}/Contact`
(Bearer token from OAUTH_LISTRAK). Profile attributes travel as segmentation field values."""

from __future__ import annotations

from marshmallow import fields, validate

from connector.contract import (
    Action,
    Destination,
    InboundEvent,
    OutboundRequest,
    OutboundUrl,
    PartnerConfigSchema,
    PlannedDelivery,
    State,
    StrictSchema,
    Verdict,
)
from plugins.listrak.mappings import mappings_field, plan_mappings
from plugins.listrak.profile_fields import (
    UpdateEmailContactProfileFields,
    UpdateEmailContactProfileFieldsUnbatched,
)

PROFILE_ATTRIBUTES = ("phone_number", "share_link", "first_name", "last_name", "funnel")
#: Listrak's answers to an opt-out that mean the contact already is where we want it.
ALREADY_OUT = {"ERROR_NOT_SUBSCRIBED_EMAIL_ADDRESS", "ERROR_UNSUBSCRIBED_EMAIL_ADDRESS"}


class SegmentationFieldsSchema(StrictSchema):
    phone_number = fields.Integer(validate=validate.Range(min=1))
    share_link = fields.Integer(validate=validate.Range(min=1))
    first_name = fields.Integer(validate=validate.Range(min=1))
    last_name = fields.Integer(validate=validate.Range(min=1))
    funnel = fields.Integer(validate=validate.Range(min=1))


class ListrakPartnerSchema(PartnerConfigSchema):
    api_url = OutboundUrl(required=True)
    subscription_list_id = fields.Integer(required=True, validate=validate.Range(min=1))
    send_opt_ins = fields.Boolean(load_default=True)
    send_opt_outs = fields.Boolean(load_default=True)
    resubscribe = fields.Boolean(load_default=False)
    send_external_contact_id = fields.Boolean(load_default=False)
    segmentation_fields = fields.Nested(SegmentationFieldsSchema, load_default=dict)
    mappings = mappings_field()  # Segment-style events → profile fields (mappings.py)


def contact_key(partner: dict, environment: str, list_id, email: str) -> str:
    return f"{partner['id']}|{environment}|{list_id}|{email}"


def key_for(partner: dict, environment: str) -> str | None:
    return partner["keys"].get(environment)


class ContactSubscription(Action):
    """Subscribe with profile fields, or unsubscribe with nothing else."""

    name = "contact_subscription"

    def build_request(self, partner: dict, specs: list[dict]) -> OutboundRequest:
        (spec,) = specs
        body = {"emailAddress": spec["email"], "subscriptionState": spec["state"]}
        if spec["state"] == "Subscribed":
            if spec.get("external_id"):
                body["externalContactID"] = spec["external_id"]
            body["segmentationFieldValues"] = spec.get("fields", [])
        params = {"overrideUnsubscribe": "true"} if spec.get("override") else {}
        return OutboundRequest(
            "POST",
            f"{partner['api_url']}/List/{spec['list_id']}/Contact",
            params=params,
            json=body,
            headers={"Content-Type": "application/json"},
        )

    def interpret(self, partner, specs, result):
        (spec,) = specs
        code = result.body.get("error") if isinstance(result.body, dict) else None
        if result.status == 400 and spec["state"] == "Unsubscribed" and code in ALREADY_OUT:
            return [Verdict(State.DELIVERED, "already unsubscribed or not subscribed in Listrak")]
        if (
            result.status == 400
            and spec["state"] == "Subscribed"
            and code == "ERROR_UNSUBSCRIBED_EMAIL_ADDRESS"
        ):
            return [Verdict(State.SKIPPED, "unsubscribed in Listrak (resubscribe is off)")]
        return None


class ListrakDestination(Destination):
    name = "listrak"
    config_schema = ListrakPartnerSchema

    def __init__(self):
        self.actions = {
            action.name: action
            for action in (
                ContactSubscription(),
                UpdateEmailContactProfileFields(),
                UpdateEmailContactProfileFieldsUnbatched(),
            )
        }

    def plan(self, event: InboundEvent, partner: dict) -> list[PlannedDelivery]:
        if event.type in ("opt_in", "opt_out"):
            return [self._plan_subscription(event, partner)]
        return plan_mappings(event, partner)  # Segment-style track / identify events

    def _plan_subscription(self, event: InboundEvent, partner: dict) -> PlannedDelivery:
        opt_in = event.type == "opt_in"
        list_id = partner["subscription_list_id"]
        spec = {"list_id": list_id, "email": event.email, "state": "Subscribed" if opt_in else "Unsubscribed"}
        person = event.payload.get("person", {})
        if opt_in:
            spec["fields"] = [
                {"segmentationFieldId": field_id, "value": str(person[attribute])}
                for attribute, field_id in partner["segmentation_fields"].items()
                if person.get(attribute) not in (None, "")
            ]
            if partner["resubscribe"]:
                spec["override"] = True
            if partner["send_external_contact_id"] and person.get("partner_user_id"):
                spec["external_id"] = person["partner_user_id"]
        key_id = key_for(partner, event.environment)
        skip = None
        if opt_in and not partner["send_opt_ins"]:
            skip = "send_opt_ins is off for this partner"
        elif not opt_in and not partner["send_opt_outs"]:
            skip = "send_opt_outs is off for this partner"
        elif key_id is None:
            skip = f"{event.environment} event and no {event.environment} key is configured"
        return PlannedDelivery(
            action=ContactSubscription.name,
            spec=spec,
            partner_key_id=key_id,
            contact_key=contact_key(partner, event.environment, list_id, event.email),
            skip_reason=skip,
        )

    def verify(self, partner, http, credentials):
        from plugins.listrak.verify import verify

        return verify(partner, http, credentials)

    def error_details(self, result):
        if isinstance(result.body, dict) and result.status and result.status >= 400:
            return result.body.get("error"), result.body.get("message")
        return None, None
