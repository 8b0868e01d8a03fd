"""Listrak Email API destination: opt-in/opt-out through `POST /List/{id}/Contact` on each of the
partner's lists (Bearer token from OAUTH_LISTRAK). Profile attributes travel as segmentation field
values; Segment-style events become profile-field updates through mappings; SMS consent goes to
the SMS API when the partner has an `sms:` block (`sms.py`)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from connector.plugin_api import (
    CODE_KEYS,
    MESSAGE_KEYS,
    Configuration,
    ContactAddress,
    ContactState,
    CredentialsFor,
    Destination,
    Http,
    InboundEvent,
    OutboundUrl,
    Partner,
    PartnerConfigSchema,
    PlannedDelivery,
    StrictSchema,
    readable,
)
from plugins.listrak.contacts import WHEN_NEWER, ContactSubscription, contact_key
from plugins.listrak.mappings import mappings_field, plan_mappings
from plugins.listrak.profile_fields import (
    UpdateEmailContactProfileFields,
    UpdateEmailContactProfileFieldsUnbatched,
)
from plugins.listrak.sms import SMS_TYPES, SmsSchema, SmsSubscription, plan_sms

PROFILE_ATTRIBUTES = ("phone_number", "share_link", "first_name", "last_name", "funnel")


class SegmentationFieldsSchema(StrictSchema):
    phone_number = fields.Integer(validate=validate.Range(min=1))
    share_link = fields.Integer(validate=validate.Range(min=1))
    first_name = fields.Integer(validate=validate.Range(min=1))
    last_name = fields.Integer(validate=validate.Range(min=1))
    funnel = fields.Integer(validate=validate.Range(min=1))


def _list_id(**options) -> fields.Integer:
    return fields.Integer(validate=validate.Range(min=1), **options)


class Resubscribe(fields.Field):
    """false | true | when_newer (see plugins/listrak/contacts.py)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or value == WHEN_NEWER:
            return value
        raise ValidationError(f"must be false, true or {WHEN_NEWER}")


class ListrakPartnerSchema(PartnerConfigSchema):
    api_url = OutboundUrl(required=True)
    subscription_list_id = _list_id(allow_none=True)  # one list, or:
    subscription_list_ids = fields.List(_list_id(), allow_none=True, validate=validate.Length(min=1))
    send_opt_ins = fields.Boolean(load_default=True)
    send_opt_outs = fields.Boolean(load_default=True)
    resubscribe = Resubscribe(load_default=False)
    send_external_contact_id = fields.Boolean(load_default=False)
    segmentation_fields = fields.Nested(SegmentationFieldsSchema, load_default=dict)
    #: Listrak's profile field ids belong to one list: other ids for some lists.
    segmentation_fields_by_list = fields.Dict(
        keys=_list_id(), values=fields.Nested(SegmentationFieldsSchema), load_default=dict
    )
    mappings = mappings_field()  # Segment-style events → profile fields (mappings.py)
    sms = fields.Nested(SmsSchema, load_default=None)  # SMS consent → the SMS API (sms.py)

    @validates_schema
    def _lists(self, data, **kwargs):
        one, several = data.get("subscription_list_id"), data.get("subscription_list_ids")
        if one is not None and several is not None:
            raise ValidationError(
                "give subscription_list_id or subscription_list_ids, not both", "subscription_list_ids"
            )
        if one is None and several is None:
            raise ValidationError(
                "one of subscription_list_id or subscription_list_ids is required", "subscription_list_ids"
            )
        lists = [one] if several is None else several
        if len(set(lists)) != len(lists):
            raise ValidationError("each list once", "subscription_list_ids")
        strays = sorted(set(data.get("segmentation_fields_by_list") or {}) - set(lists))
        if strays:
            raise ValidationError(
                f"lists {strays} are not among the subscription lists {lists}", "segmentation_fields_by_list"
            )

    @post_load
    def _every_list(self, data, **kwargs):
        if data.get("subscription_list_ids") is None:
            data["subscription_list_ids"] = [data["subscription_list_id"]]
        data["subscription_list_id"] = data["subscription_list_ids"][0]
        return data


def segmentation_fields_for(partner: Partner, list_id: int) -> dict[str, int]:
    """{profile attribute: field id} on one of the partner's lists."""
    return partner.settings.get("segmentation_fields_by_list", {}).get(
        list_id, partner.settings["segmentation_fields"]
    )


def key_for(partner: Partner, environment: str) -> str | None:
    return partner.key_for(environment)


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
                SmsSubscription(),
            )
        }

    def plan(self, event: InboundEvent, partner: Partner) -> list[PlannedDelivery]:
        if event.type in ("opt_in", "opt_out"):
            # One delivery per list: each list keeps its own consent order (contact_key).
            return [
                self._plan_subscription(event, partner, i) for i in partner.settings["subscription_list_ids"]
            ]
        if event.type in SMS_TYPES:
            return plan_sms(event, partner)
        return plan_mappings(event, partner)  # Segment-style track / identify events

    def _plan_subscription(self, event: InboundEvent, partner: Partner, list_id: int) -> PlannedDelivery:
        opt_in = event.type == "opt_in"
        assert event.email is not None  # the source refuses an email consent event without one
        state = "Subscribed" if opt_in else "Unsubscribed"
        spec: dict[str, Any] = {"list_id": list_id, "email": event.email, "state": state}
        person = event.payload.get("person", {})
        if opt_in:
            spec["fields"] = [
                {"segmentationFieldId": field_id, "value": str(person[attribute])}
                for attribute, field_id in segmentation_fields_for(partner, list_id).items()
                if person.get(attribute) not in (None, "")
            ]
            if partner.settings["resubscribe"] is True:
                spec["override"] = True
            elif partner.settings["resubscribe"] == WHEN_NEWER:
                spec.update(resubscribe=WHEN_NEWER, event_time=event.event_time.timestamp())
            if partner.settings["send_external_contact_id"] and person.get("partner_user_id"):
                spec["external_id"] = person["partner_user_id"]
        key_id = key_for(partner, event.environment)
        skip = None
        if opt_in and not partner.settings["send_opt_ins"]:
            skip = "send_opt_ins is off for this partner"
        elif not opt_in and not partner.settings["send_opt_outs"]:
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

    def verify(self, partner: Partner, http: Http, credentials: CredentialsFor) -> list[tuple[bool, str]]:
        from plugins.listrak.sms_checks import verify_sms
        from plugins.listrak.verify import verify

        return verify(partner, http, credentials) + verify_sms(partner, http, credentials)

    def check(self, partner: Partner, config: Configuration) -> list[str]:
        from plugins.listrak.sms_checks import check

        return check(partner, config)

    def read_contact(
        self, partner: Partner, address: ContactAddress, http: Http, credentials: CredentialsFor
    ) -> list[ContactState]:
        from plugins.listrak.contact_state import read_contact

        return read_contact(partner, address, http, credentials)

    def error_details(self, result):
        return error_details(result)


def error_details(result) -> tuple[str | None, str | None]:
    """Listrak answers errors with `{"status", "error", "message"}`. Whatever shape a field
    has (an object with a `code`, a list of messages) it is read as text; an answer that is
    not JSON (a proxy's HTML page) is its own message. The core redacts and bounds both."""
    if not result.status or result.status < 400:
        return None, None
    body = result.body
    if isinstance(body, dict):
        code, message = readable(body.get("error"), CODE_KEYS), readable(body.get("message"), MESSAGE_KEYS)
    else:
        code, message = None, readable(body.strip() if isinstance(body, str) else body, MESSAGE_KEYS)
    return code, message
