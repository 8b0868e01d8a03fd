"""`/_sandbox/` control routes for what happens inside a Listrak account rather than through the
API (not part of Listrak, no auth): a contact who unsubscribed from an email's link on some date,
and an integration without access to the Beta routes."""

from __future__ import annotations

from flask import Blueprint, jsonify
from marshmallow import Schema, ValidationError, fields, validate

from plugins.listrak.sandbox.faults import load_body, problem
from plugins.listrak.sandbox.state import SUBSCRIBED, UNSUBSCRIBED


class SeedContactSchema(Schema):
    """The body of `POST /_sandbox/contacts`."""

    list_id = fields.Integer(required=True, strict=True)
    emailAddress = fields.Email(required=True)
    subscriptionState = fields.String(required=True, validate=validate.OneOf([SUBSCRIBED, UNSUBSCRIBED]))
    #: As Listrak shows it (an ISO date-time, offset optional); default: now.
    unsubscribeDate = fields.String(load_default=None)


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
        sandbox.seed_contact(body["list_id"], email, body["subscriptionState"], body["unsubscribeDate"])
        with sandbox.lock:
            contact = dict(sandbox.contacts[body["list_id"]][email])
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
