"""Loads and validates `CONNECTOR_CONFIG_DIR`: connector.yaml, keys/, sources/, partners/.

Every problem is reported with its file and field, all at once; the app refuses to start on any.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from connector.registry import Registry

DEFAULT_RETRY_SCHEDULE = [1, 10, 60, 600, 3600, 3 * 3600, 12 * 3600, 12 * 3600]
MIN_DEAD_RETENTION = 7 * 86400
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


def parse_duration(value) -> float:
    """'500ms', '10s', '1m', '12h', '7d' or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration like 500ms, 10s, 1m, 12h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


class Duration(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        if seconds < 0:
            raise ValidationError("must not be negative")
        return seconds


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OutboundUrl(fields.String):
    """https only, except http for loopback hosts (the sandbox, tests)."""

    def _deserialize(self, value, attr, data, **kwargs):
        url = super()._deserialize(value, attr, data, **kwargs)
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return url.rstrip("/")
        if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
            return url.rstrip("/")
        raise ValidationError("must be an https:// URL (http:// only for loopback hosts)")


def secret_field(**kwargs) -> fields.String:
    """A string that must never be logged or stored; the loader collects its value."""
    return fields.String(metadata={"secret": True}, validate=validate.Length(min=1), **kwargs)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class RetentionSchema(StrictSchema):
    delivered = Duration(load_default=30 * 86400)
    dead = Duration(load_default=MIN_DEAD_RETENTION)

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


class LoggingSchema(StrictSchema):
    format = fields.String(load_default="text", validate=validate.OneOf(["text", "json"]))
    level = fields.String(
        load_default="INFO", validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"])
    )


class ConnectorSettingsSchema(StrictSchema):
    retry_schedule = fields.List(Duration(), load_default=DEFAULT_RETRY_SCHEDULE)
    retention = fields.Nested(RetentionSchema, load_default=lambda: RetentionSchema().load({}))
    worker = fields.Nested(WorkerSchema, load_default=lambda: WorkerSchema().load({}))
    logging = fields.Nested(LoggingSchema, load_default=lambda: LoggingSchema().load({}))
    breaker = fields.Nested(BreakerSchema, load_default=lambda: BreakerSchema().load({}))


class KeyConfigSchema(StrictSchema):
    """Common part of `config/keys/<partner_key_id>.yaml`; algorithms add their fields."""

    name = fields.String(required=True)
    partner_key_id = fields.String(required=True)
    type = fields.String(load_default="WEBHOOK", validate=validate.OneOf(["WEBHOOK"]))
    algorithm = fields.String(required=True)


class InboundAuthSchema(StrictSchema):
    algorithm = fields.String(
        required=True,
        validate=validate.OneOf(
            ["HS256", "SEGMENT_SIGNATURE", "STANDARD_WEBHOOKS", "BEARER", "HTTP_BASIC"]
        ),
    )
    secrets = fields.List(secret_field(), required=True, validate=validate.Length(min=1))

    @validates_schema
    def _basic_needs_user_and_password(self, data, **kwargs):
        if data.get("algorithm") == "HTTP_BASIC":
            for i, secret in enumerate(data.get("secrets", [])):
                if ":" not in secret:
                    raise ValidationError({i: ["HTTP_BASIC secrets are user:password"]}, "secrets")


class SourceConfigSchema(StrictSchema):
    plugin = fields.String(required=True)
    auth = fields.Nested(InboundAuthSchema, required=True)


class PartnerKeysSchema(StrictSchema):
    production = fields.String(required=True)
    staging = fields.String(load_default=None)


class PartnerConfigSchema(StrictSchema):
    plugin = fields.String(required=True)
    enabled = fields.Boolean(load_default=True)
    sources = fields.List(fields.String(), required=True)
    keys = fields.Nested(PartnerKeysSchema, required=True)
    retry_schedule = fields.List(Duration(), load_default=None)


@dataclass
class Config:
    directory: Path
    settings: dict
    keys: dict[str, dict] = field(default_factory=dict)
    sources: dict[str, dict] = field(default_factory=dict)
    partners: dict[str, dict] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)

    def partners_for(self, source_id: str) -> list[dict]:
        return [p for p in self.partners.values() if p["enabled"] and source_id in p["sources"]]

    def retry_schedule(self, partner_id: str) -> list[float]:
        partner = self.partners.get(partner_id) or {}
        return partner.get("retry_schedule") or self.settings["retry_schedule"]


def _flatten(messages, prefix="") -> list[str]:
    out = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = "(file)" if key == "_schema" else str(key)
            path = f"{prefix}.{name}" if prefix and name != "(file)" else (prefix or name)
            out.extend(_flatten(value, path))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out.extend(f"{prefix}: {m}" for m in messages)
    else:
        out.append(f"{prefix}: {messages}")
    return out


def _interpolate(value, path: str, problems: list[str], env):
    if isinstance(value, str):

        def repl(match):
            name = match.group(1)
            if name not in env:
                problems.append(f"{path}: environment variable {name} is not set")
                return ""
            return env[name]

        return _ENV_REF.sub(repl, value)
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", problems, env) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), problems, env)
                for k, v in value.items()}
    return value


def _collect_secrets(schema: Schema, data, found: set[str]) -> None:
    for name, fld in schema.fields.items():
        value = data.get(name) if isinstance(data, dict) else None
        if value is None:
            continue
        inner = fld.inner if isinstance(fld, fields.List) else fld
        if isinstance(inner, fields.Nested):
            for item in value if isinstance(value, list) else [value]:
                _collect_secrets(inner.schema, item, found)
        elif inner.metadata.get("secret"):
            for item in value if isinstance(value, list) else [value]:
                found.add(item)
                if ":" in item:  # HTTP_BASIC user:password — the password alone is secret too
                    found.add(item.split(":", 1)[1])


class _Loader:
    def __init__(self, directory: Path, registry: Registry, env):
        self.directory = directory
        self.registry = registry
        self.env = env
        self.problems: list[str] = []
        self.secrets: set[str] = set()

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.directory.parent))
        except ValueError:
            return str(path)

    def read(self, path: Path) -> dict | None:
        name = self.rel(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.append(f"{name}: cannot read: {exc}")
            return None
        except yaml.YAMLError as exc:
            self.problems.append(f"{name}: not valid YAML: {exc}".replace("\n", " "))
            return None
        if raw is None and path.name == "connector.yaml":
            raw = {}
        if not isinstance(raw, dict):
            self.problems.append(f"{name}: must be a YAML mapping of settings")
            return None
        env_problems: list[str] = []
        data = _interpolate(raw, "", env_problems, self.env)
        self.problems.extend(f"{name}: {p}" for p in env_problems)
        return None if env_problems else data

    def validate(self, path: Path, schema: Schema, data: dict) -> dict | None:
        try:
            loaded = schema.load(data)
        except ValidationError as exc:
            self.problems.extend(f"{self.rel(path)}: {p}" for p in _flatten(exc.messages))
            return None
        _collect_secrets(schema, loaded, self.secrets)
        return loaded

    def pick(self, path: Path, data: dict, key: str, table: dict, what: str):
        name = data.get(key)
        if not isinstance(name, str) or name not in table:  # a list here is unhashable
            known = ", ".join(sorted(table)) or "none installed"
            self.problems.append(f"{self.rel(path)}: {key}: unknown {what} {name!r} (known: {known})")
            return None
        return table[name]


def _yaml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))


def load_config(directory: str | Path, registry: Registry, env=None) -> Config:
    """Read and validate the whole config directory; raise ConfigError listing every problem."""
    directory = Path(directory).resolve()
    env = os.environ if env is None else env
    loader = _Loader(directory, registry, env)
    if not directory.is_dir():
        raise ConfigError([f"{directory}: config directory does not exist"])

    settings_path = directory / "connector.yaml"
    settings = ConnectorSettingsSchema().load({})
    if settings_path.exists():
        data = loader.read(settings_path)
        if data is not None:
            settings = loader.validate(settings_path, ConnectorSettingsSchema(), data) or settings
    config = Config(directory=directory, settings=settings)

    for path in _yaml_files(directory / "keys"):
        data = loader.read(path)
        if data is None:
            continue
        if "key_file" in data:
            key_file = Path(str(data.pop("key_file")))
            key_file = key_file if key_file.is_absolute() else directory / key_file
            try:
                data["key"] = key_file.read_text(encoding="utf-8").strip()
            except OSError:
                loader.problems.append(f"{loader.rel(path)}: key_file: cannot read {key_file}")
                continue
        algorithm = loader.pick(path, data, "algorithm", registry.key_algorithms, "key algorithm")
        if algorithm is None:
            continue
        key = loader.validate(path, algorithm.config_schema(), data)
        if key is None:
            continue
        if key["partner_key_id"] != path.stem:
            loader.problems.append(
                f"{loader.rel(path)}: partner_key_id: must equal the file name ({path.stem!r})"
            )
            continue
        config.keys[path.stem] = key

    for path in _yaml_files(directory / "sources"):
        data = loader.read(path)
        if data is None:
            continue
        source = loader.pick(path, data, "plugin", registry.sources, "source plugin")
        if source is not None and (loaded := loader.validate(path, source.config_schema(), data)):
            config.sources[path.stem] = {**loaded, "id": path.stem}

    for path in _yaml_files(directory / "partners"):
        data = loader.read(path)
        if data is None:
            continue
        dest = loader.pick(path, data, "plugin", registry.destinations, "destination plugin")
        loaded = dest and loader.validate(path, dest.config_schema(), data)
        if not loaded:
            continue
        name = loader.rel(path)
        for source_id in loaded["sources"]:
            if source_id not in config.sources and not (directory / "sources").joinpath(
                f"{source_id}.yaml"
            ).exists():
                loader.problems.append(f"{name}: sources: no source {source_id!r} in sources/")
        for env_name, key_id in loaded["keys"].items():
            if key_id and key_id not in config.keys and not (directory / "keys").joinpath(
                f"{key_id}.yaml"
            ).exists():
                loader.problems.append(f"{name}: keys.{env_name}: no key {key_id!r} in keys/")
        config.partners[path.stem] = {**loaded, "id": path.stem}

    if loader.problems:
        raise ConfigError(loader.problems)
    config.secrets = {s for s in loader.secrets if s}
    return config
