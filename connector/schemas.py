"""The base config schemas plugins subclass: a key file, a push or pull source file, a partner
file. Plugins reach them through `connector.plugin_api` (and `connector.contract`)."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from connector.fields import Duration, StrictSchema, secret_field


class KeyConfigSchema(StrictSchema):
    """Common part of `config/keys/<partner_key_id>.yaml`; algorithms add their fields."""

    name = fields.String(required=True)
    partner_key_id = fields.String(required=True)
    type = fields.String(load_default="WEBHOOK", validate=validate.OneOf(["WEBHOOK"]))
    algorithm = fields.String(required=True)


class InboundAuthSchema(StrictSchema):
    """`auth:` of a push source. The loader checks `algorithm` against the registered
    verifiers and lets the verifier check its secrets."""

    algorithm = fields.String(required=True)
    secrets = fields.List(secret_field(), required=True, validate=validate.Length(min=1))


class SourceConfigSchema(StrictSchema):
    """`config/sources/<id>.yaml` of a push source (POST /webhooks/<id>)."""

    plugin = fields.String(required=True)
    auth = fields.Nested(InboundAuthSchema, required=True)


class PullSourceConfigSchema(StrictSchema):
    """`config/sources/<id>.yaml` of a pull source: no `auth`, no webhook route."""

    plugin = fields.String(required=True)
    poll_interval = Duration(load_default=300.0)
    lookback = Duration(load_default=7 * 86400.0)
    environment = fields.String(load_default="production", validate=validate.OneOf(["production", "staging"]))
    #: Requests (pages read) one poll may send; past it the poll stops early (PageBudgetSpent).
    max_pages_per_poll = fields.Integer(strict=True, load_default=200, validate=validate.Range(min=1))

    @validates_schema
    def _poll_interval_at_least_a_second(self, data, **kwargs):
        if data.get("poll_interval", 1.0) < 1.0:
            raise ValidationError("must be at least 1s", "poll_interval")


class PartnerKeysSchema(StrictSchema):
    production = fields.String(required=True)
    staging = fields.String(load_default=None)


class PartnerConfigSchema(StrictSchema):
    """Common part of `config/partners/<id>.yaml`; destinations add their fields."""

    plugin = fields.String(required=True)
    enabled = fields.Boolean(load_default=True)
    sources = fields.List(fields.String(), required=True)
    keys = fields.Nested(PartnerKeysSchema, required=True)
    retry_schedule = fields.List(Duration(), load_default=None)
