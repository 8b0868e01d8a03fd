"""Listrak SMS API (`{sms.api_url}`, Bearer token from the OAUTH_LISTRAK keys of an SMS
integration): SMS consent on one phone list of one sender code.

`sms_opt_in` subscribes a number the sender code knows (`POST /ShortCode/{senderCodeId}/Contact/
{phone}/PhoneList/{phoneListId}`); Listrak answers 404 for a number new to the sender code, and
then `POST /ShortCode/{senderCodeId}/PhoneList/{phoneListId}/Contact` creates it and subscribes
it in one call. `sms_opt_out` is `DELETE /ShortCode/{senderCodeId}/ContactUnsubscribe/{phone}/
PhoneList/{phoneListId}`, whose 404 means the number is not on the list: delivered, nothing to
undo (DESIGN's rule), when it is Listrak's own answer (JSON; a proxy's HTML 404 is dead). The
same 404 would come back for a sender code or list that does not exist; `connector verify`
checks both, and the delivery's reason says what the 404 was taken for.

Consent is ordered per (partner, environment, sender code, phone list, number), the same rule
as email consent per list (`contact_key`).
"""

from __future__ import annotations

from marshmallow import fields, validate

from connector.plugin_api import (
    Action,
    InboundEvent,
    OutboundRequest,
    OutboundUrl,
    Partner,
    PartnerKeysSchema,
    PlannedDelivery,
    State,
    StrictSchema,
    Verdict,
)

SMS_TYPES = ("sms_opt_in", "sms_opt_out")
SUBSCRIBED, UNSUBSCRIBED = "Subscribed", "Unsubscribed"
NO_SMS_BLOCK = "this partner has no sms: block, so SMS consent is not sent to Listrak"
NOT_LISTRAKS_404 = (
    "HTTP 404 without Listrak's JSON error body: not taken for 'not on the list' (is sms.api_url right?)"
)
NOT_ON_THE_LIST = (
    "Listrak answered 404: the number is not on the SMS list, nothing to undo "
    "(connector verify checks that the sender code and the list exist)"
)


def _id(**options) -> fields.Integer:
    return fields.Integer(validate=validate.Range(min=1), **options)


class SmsSchema(StrictSchema):
    """A `listrak` partner's `sms:` block."""

    api_url = OutboundUrl(required=True)
    keys = fields.Nested(PartnerKeysSchema, required=True)  # OAUTH_LISTRAK keys of an SMS integration
    sender_code_id = _id(required=True)
    phone_list_id = _id(required=True)
    send_opt_ins = fields.Boolean(load_default=True)
    send_opt_outs = fields.Boolean(load_default=True)


def sms_place(sender_code_id, phone_list_id) -> str:
    return f"SMS list {phone_list_id} (sender code {sender_code_id})"


def sms_contact_key(partner: Partner, environment: str, sender_code_id, phone_list_id, phone: str) -> str:
    return f"{partner.id}|{environment}|sms:{sender_code_id}:{phone_list_id}|{phone}"


def plan_sms(event: InboundEvent, partner: Partner) -> list[PlannedDelivery]:
    """One delivery for an SMS consent event: the partner's phone list, ordered per number."""
    opt_in = event.type == "sms_opt_in"
    spec: dict = {"phone": event.phone, "state": SUBSCRIBED if opt_in else UNSUBSCRIBED}
    sms = partner.settings.get("sms")
    if sms is None:
        return [PlannedDelivery(SmsSubscription.name, spec, None, skip_reason=NO_SMS_BLOCK)]
    spec.update(sender_code_id=sms["sender_code_id"], phone_list_id=sms["phone_list_id"])
    if opt_in:
        spec["contact"] = _new_contact(event)
    key_id = sms["keys"].get(event.environment)
    skip = None
    if opt_in and not sms["send_opt_ins"]:
        skip = "sms.send_opt_ins is off for this partner"
    elif not opt_in and not sms["send_opt_outs"]:
        skip = "sms.send_opt_outs is off for this partner"
    elif key_id is None:
        skip = f"{event.environment} event and no {event.environment} key in sms.keys"
    assert event.phone is not None  # an SMS consent event always carries its number
    contact_key = sms_contact_key(
        partner, event.environment, sms["sender_code_id"], sms["phone_list_id"], event.phone
    )
    return [PlannedDelivery(SmsSubscription.name, spec, key_id, contact_key=contact_key, skip_reason=skip)]


def _new_contact(event: InboundEvent) -> dict:
    """Create Contact's body: the number and what else the event says about the person."""
    person = event.payload.get("person") or {}
    contact = {"phoneNumber": event.phone}
    if event.email:
        contact["emailAddress"] = event.email
    for name, attribute in (("firstName", "first_name"), ("lastName", "last_name")):
        if isinstance(person.get(attribute), str) and person[attribute]:
            contact[name] = person[attribute]
    return contact


def _base(partner: Partner) -> str:
    return partner.settings["sms"]["api_url"]


def _subscribe(partner: Partner, spec: dict) -> OutboundRequest:
    return OutboundRequest(
        "POST",
        f"{_base(partner)}/ShortCode/{spec['sender_code_id']}/Contact/{spec['phone']}"
        f"/PhoneList/{spec['phone_list_id']}",
    )


def _create(partner: Partner, spec: dict) -> OutboundRequest:
    return OutboundRequest(
        "POST",
        f"{_base(partner)}/ShortCode/{spec['sender_code_id']}/PhoneList/{spec['phone_list_id']}/Contact",
        json=spec["contact"],
        headers={"Content-Type": "application/json"},
    )


def _unsubscribe(partner: Partner, spec: dict) -> OutboundRequest:
    return OutboundRequest(
        "DELETE",
        f"{_base(partner)}/ShortCode/{spec['sender_code_id']}/ContactUnsubscribe/{spec['phone']}"
        f"/PhoneList/{spec['phone_list_id']}",
    )


def phone_list_url(api_url: str, sender_code_id, phone_list_id) -> str:
    return f"{api_url}/ShortCode/{sender_code_id}/PhoneList/{phone_list_id}"


class SmsSubscription(Action):
    """Subscribe a number to the phone list (creating it on the sender code when new), or
    unsubscribe it."""

    name = "sms_subscription"
    consent = True

    def build_request(self, partner: Partner, specs: list[dict]) -> OutboundRequest:
        """The attempt's first request (what `connector preview` shows)."""
        (spec,) = specs
        return _subscribe(partner, spec) if spec["state"] == SUBSCRIBED else _unsubscribe(partner, spec)

    def refuse(self, partner: Partner, spec: dict) -> str | None:
        if partner.settings.get("sms") is None:
            return "the partner's sms: block was removed after this delivery was planned"
        return None

    def exchange(self, partner, specs, send):
        (spec,) = specs
        if spec["state"] == SUBSCRIBED:
            result = send(_subscribe(partner, spec))
            if result.status != 404:
                return None  # 201 delivered; 429/5xx retrying; other 4xx dead
            created = send(_create(partner, spec))
            if created.ok:
                return [Verdict(State.DELIVERED, "new to the sender code: created and subscribed")]
            return None
        result = send(_unsubscribe(partner, spec))
        if result.status != 404:
            return None
        if isinstance(result.body, dict):  # Listrak's own answer, in its JSON error shape
            return [Verdict(State.DELIVERED, NOT_ON_THE_LIST)]
        # A 404 page from something in front of Listrak (a proxy, a wrong api_url) says nothing
        # about the number: never taken for "not on the list".
        return [Verdict(State.DEAD, NOT_LISTRAKS_404)]

    def notes(self, partner, spec):
        if spec["state"] == SUBSCRIBED:
            create = _create(partner, spec)
            return [
                f"if Listrak answers 404 (the number is new to sender code {spec['sender_code_id']}): "
                f"POST {create.url} with {create.json}, which creates and subscribes it"
            ]
        return ["if Listrak answers 404 (the number is not on the list): delivered, nothing to undo"]

    def describe(self, spec: dict) -> tuple[str, str] | None:
        if "sender_code_id" not in spec:
            return "SMS (no sms: block)", "subscribe" if spec.get("state") == SUBSCRIBED else "unsubscribe"
        change = "subscribe" if spec["state"] == SUBSCRIBED else "unsubscribe"
        return sms_place(spec["sender_code_id"], spec["phone_list_id"]), change
