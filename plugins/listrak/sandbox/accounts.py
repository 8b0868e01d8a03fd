"""`/_sandbox/` control routes for what happens inside a Listrak account rather than through the
API (not part of Listrak, no auth): a contact who subscribed, or unsubscribed from an email's
link, at some date, and an integration without access to the Beta routes."""

from __future__ import annotations

from flask import Blueprint, jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from plugins.listrak.sandbox.activity import ContactDate
from plugins.listrak.sandbox.faults import load_body, problem
from plugins.listrak.sandbox.state import SUBSCRIBED, UNSUBSCRIBED


class SeedContactSchema(Schema):
    """The body of `POST /_sandbox/contacts`: a contact that subscribed or unsubscribed in
    Listrak itself at a given time (an ISO date-time, offset optional; default now)."""

    list_id = fields.Integer(required=True, strict=True)
    emailAddress = fields.Email(required=True)
    subscriptionState = fields.String(required=True, validate=validate.OneOf([SUBSCRIBED, UNSUBSCRIBED]))
    #: Subscribed: a new contact's subscribeDate, a returning one's resubscribeDate.
    subscribeDate = ContactDate(load_default=None)
    unsubscribeDate = ContactDate(load_default=None)
    segmentationFieldValues = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)

    @validates_schema
    def _dates_match_the_state(self, data, **kwargs):
        wrong = "unsubscribeDate" if data["subscriptionState"] == SUBSCRIBED else "subscribeDate"
        if data.get(wrong) is not None:
            raise ValidationError(f"not for a contact {data['subscriptionState'].lower()}", wrong)
        if not all(key.isdigit() for key in data["segmentationFieldValues"]):
            raise ValidationError("keys must be profile field ids", "segmentationFieldValues")


class BetaAccessSchema(Schema):
    """The body of `POST /_sandbox/beta_access`."""

    client_id = fields.String(required=True, validate=validate.Length(min=1))
    allowed = fields.Boolean(required=True)


def account_control(sandbox) -> Blueprint:
    bp = Blueprint("listrak_sandbox_accounts", __name__, url_prefix="/_sandbox")
    seed_schema, beta_schema = SeedContactSchema(), BetaAccessSchema()

    @bp.errorhandler(ValidationError)
    def invalid_body(exc: ValidationError):
        return problem(exc)

    @bp.post("/contacts")
    def seed_contact():
        body = load_body(seed_schema)
        if body["list_id"] not in sandbox.lists:
            raise ValidationError({"list_id": [f"no list {body['list_id']} in the sandbox"]})
        email = body["emailAddress"].strip().lower()
        values = {int(k): v for k, v in body["segmentationFieldValues"].items()}
        unknown = sorted(set(values) - set(sandbox.fields[body["list_id"]]))
        if unknown:
            raise ValidationError({"segmentationFieldValues": [f"no profile field {unknown[0]} in the list"]})
        state, at = body["subscriptionState"], body["subscribeDate"] or body["unsubscribeDate"]
        contact = sandbox.seed_contact(body["list_id"], email, state, at, values)
        contact["segmentationFieldValues"] = {
            str(k): v for k, v in contact["segmentationFieldValues"].items()
        }
        return jsonify(contact=contact), 201

    @bp.post("/beta_access")
    def beta_access():
        body = load_body(beta_schema)
        with sandbox.lock:
            if body["allowed"]:
                sandbox.beta_denied.discard(body["client_id"])
            else:
                sandbox.beta_denied.add(body["client_id"])
            denied = sorted(sandbox.beta_denied)
        return jsonify(beta_denied=denied)

    return bp
