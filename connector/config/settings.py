"""`config/connector.yaml`: retry schedule, retention, worker, breaker, metrics and logging settings."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from connector.fields import Duration, StrictSchema, secret_field

DEFAULT_RETRY_SCHEDULE = [1, 10, 60, 600, 3600, 3 * 3600, 12 * 3600, 12 * 3600]
MIN_DEAD_RETENTION = 7 * 86400


class RetentionSchema(StrictSchema):
    delivered = Duration(load_default=30 * 86400)
    dead = Duration(load_default=MIN_DEAD_RETENTION)
    #: Accepted event ids outlive their events this long: the same id again is a duplicate.
    replay_window = Duration(load_default=30 * 86400)
    #: Workers purge this often (one at a time across them); 0 leaves it to `connector purge`.
    every = Duration(load_default=3600)

    @validates_schema
    def _dead_kept_a_week(self, data, **kwargs):
        if data["dead"] < MIN_DEAD_RETENTION:
            raise ValidationError("dead deliveries are kept at least 7 days", "dead")


class WorkerSchema(StrictSchema):
    threads = fields.Integer(load_default=32, validate=validate.Range(1, 256))
    lease = Duration(load_default=60.0)
    poll_interval = Duration(load_default=0.2)
    batch_window = Duration(load_default=1.0)
    http_timeout = Duration(load_default=10.0)

    @validates_schema
    def _lease_outlives_a_request(self, data, **kwargs):
        # A request (with its one retry after a 401) must end inside the lease, or a second
        # worker could send the same delivery at the same time; the worker sends only while
        # 2 × http_timeout of lease is left, and needs room beyond that to wait for a thread.
        if data["lease"] < 3 * data["http_timeout"]:
            raise ValidationError("must be at least 3 × http_timeout", "lease")


class BreakerSchema(StrictSchema):
    threshold = fields.Integer(load_default=5, validate=validate.Range(1, 1000))
    probe_interval = Duration(load_default=15.0)
    max_probe_interval = Duration(load_default=300.0)


class MetricsSchema(StrictSchema):
    #: When set, /metrics answers only `Authorization: Bearer <token>`.
    token = secret_field(load_default=None)

    @validates_schema
    def _token_long_enough(self, data, **kwargs):
        if data.get("token") is not None and len(data["token"]) < 16:
            raise ValidationError("at least 16 characters", "token")


class LoggingSchema(StrictSchema):
    format = fields.String(load_default="text", validate=validate.OneOf(["text", "json"]))
    level = fields.String(load_default="INFO", validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"]))


class ConnectorSettingsSchema(StrictSchema):
    retry_schedule = fields.List(Duration(), load_default=DEFAULT_RETRY_SCHEDULE)
    retention = fields.Nested(RetentionSchema, load_default=lambda: RetentionSchema().load({}))
    worker = fields.Nested(WorkerSchema, load_default=lambda: WorkerSchema().load({}))
    logging = fields.Nested(LoggingSchema, load_default=lambda: LoggingSchema().load({}))
    breaker = fields.Nested(BreakerSchema, load_default=lambda: BreakerSchema().load({}))
    metrics = fields.Nested(MetricsSchema, load_default=lambda: MetricsSchema().load({}))
