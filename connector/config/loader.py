"""Loads and validates `CONNECTOR_CONFIG_DIR`: connector.yaml, keys/, sources/, partners/.

Every problem is reported with its file and field, all at once; the app refuses to start on any.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from marshmallow import Schema, ValidationError, fields

from connector.config.settings import ConnectorSettingsSchema
from connector.records import Partner
from connector.registry import Registry

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass
class Config:
    directory: Path
    settings: dict
    keys: dict[str, dict] = field(default_factory=dict)
    sources: dict[str, dict] = field(default_factory=dict)  # push: POST /webhooks/<id>
    pull_sources: dict[str, dict] = field(default_factory=dict)
    partners: dict[str, Partner] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)

    @property
    def all_sources(self) -> dict[str, dict]:
        return {**self.sources, **self.pull_sources}

    def partners_for(self, source_id: str) -> list[Partner]:
        return [p for p in self.partners.values() if p.enabled and source_id in p.sources]

    def retry_schedule(self, partner_id: str) -> list[float]:
        partner = self.partners.get(partner_id)
        schedule = partner.retry_schedule if partner is not None else None
        return list(schedule) if schedule else self.settings["retry_schedule"]


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
        return {
            k: _interpolate(v, f"{path}.{k}" if path else str(k), problems, env) for k, v in value.items()
        }
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

    def check_auth(self, path: Path, auth: dict) -> bool:
        """The inbound algorithm is a registered verifier, and it accepts the secrets."""
        verifier = self.pick(
            path, auth, "algorithm", self.registry.verifiers, "auth algorithm", field="auth.algorithm"
        )
        if verifier is None:
            return False
        problems = verifier.check_secrets(auth["secrets"])
        self.problems.extend(
            f"{self.rel(path)}: auth.secrets.{index}: {message}"
            for index, message in sorted(problems.items())
        )
        return not problems

    def pick(self, path: Path, data: dict, key: str, table: dict, what: str, field: str | None = None):
        name = data.get(key)
        if not isinstance(name, str) or name not in table:  # a list here is unhashable
            known = ", ".join(sorted(table)) or "none installed"
            self.problems.append(
                f"{self.rel(path)}: {field or key}: unknown {what} {name!r} (known: {known})"
            )
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
        kinds = {**registry.sources, **registry.pull_sources}
        source = loader.pick(path, data, "plugin", kinds, "source plugin")
        if source is None or not (loaded := loader.validate(path, source.config_schema(), data)):
            continue
        if source.name in registry.pull_sources:
            config.pull_sources[path.stem] = {**loaded, "id": path.stem}
        elif loader.check_auth(path, loaded["auth"]):
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
            if (
                source_id not in config.all_sources
                and not (directory / "sources").joinpath(f"{source_id}.yaml").exists()
            ):
                loader.problems.append(f"{name}: sources: no source {source_id!r} in sources/")
        for env_name, key_id in loaded["keys"].items():
            if (
                key_id
                and key_id not in config.keys
                and not (directory / "keys").joinpath(f"{key_id}.yaml").exists()
            ):
                loader.problems.append(f"{name}: keys.{env_name}: no key {key_id!r} in keys/")
        config.partners[path.stem] = Partner.from_config(path.stem, loaded)

    # Checks across files that only a plugin knows (a key of the wrong kind, a loop).
    for source_id, source_config in config.pull_sources.items():
        source = registry.pull_sources[source_config["plugin"]]
        loader.problems.extend(f"sources/{source_id}.yaml: {p}" for p in source.check(source_config, config))
    for partner_id, partner in config.partners.items():
        destination = registry.destinations[partner.plugin]
        loader.problems.extend(f"partners/{partner_id}.yaml: {p}" for p in destination.check(partner, config))

    if loader.problems:
        raise ConfigError(loader.problems)
    config.secrets = {s for s in loader.secrets if s}
    return config
