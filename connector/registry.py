"""Finds plugins through the `connector.plugins` entry points and checks they fit the contract.

A plugin that does not fit fails loudly at load time, naming the entry point and what is wrong
(as pluggy checks a plugin against its hookspecs when it registers, not when it is first
called): each item is an instance of its contract class with a name, a config schema built on
the right base schema, the methods the core calls implemented, and every method it overrides
taking the arguments the core passes."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from marshmallow import Schema

from connector.contract import (
    Action,
    Destination,
    InboundVerifier,
    KeyAlgorithm,
    KeyConfigSchema,
    PartnerConfigSchema,
    Plugin,
    PullSource,
    PullSourceConfigSchema,
    Source,
    SourceConfigSchema,
)

GROUP = "connector.plugins"


class PluginError(Exception):
    pass


@dataclass
class Registry:
    sources: dict[str, Source] = field(default_factory=dict)
    pull_sources: dict[str, PullSource] = field(default_factory=dict)
    destinations: dict[str, Destination] = field(default_factory=dict)
    key_algorithms: dict[str, KeyAlgorithm] = field(default_factory=dict)
    verifiers: dict[str, InboundVerifier] = field(default_factory=dict)

    def add(self, plugin: Plugin, origin: str) -> None:
        if not isinstance(plugin, Plugin):
            raise PluginError(f"{origin}: entry point must be a connector.contract.Plugin")
        checks: tuple[tuple[str, list, type, dict, bool], ...] = (
            ("source", plugin.sources, Source, self.sources, True),
            ("pull source", plugin.pull_sources, PullSource, self.pull_sources, True),
            ("destination", plugin.destinations, Destination, self.destinations, True),
            ("key algorithm", plugin.key_algorithms, KeyAlgorithm, self.key_algorithms, True),
            ("inbound verifier", plugin.verifiers, InboundVerifier, self.verifiers, False),
        )
        for kind, items, base, table, needs_schema in checks:
            for item in items:
                _check(item, base, kind, origin, needs_schema)
                taken: dict = (
                    self.sources if kind == "pull source" else self.pull_sources if kind == "source" else {}
                )
                if item.name in table or item.name in taken:
                    raise PluginError(f"{origin}: {kind} {item.name!r} is already registered")
                table[item.name] = item


#: The base schema each kind's `config_schema` must build on (the core reads those fields).
BASE_SCHEMAS: dict[type, type[Schema]] = {
    Source: SourceConfigSchema,
    PullSource: PullSourceConfigSchema,
    Destination: PartnerConfigSchema,
    KeyAlgorithm: KeyConfigSchema,
}
#: The methods the core calls that have no default: a plugin must implement them. An action
#: implements `build_request` unless it overrides `exchange` (which then builds its own).
REQUIRED: dict[type, tuple[str, ...]] = {
    Source: ("parse",),
    PullSource: ("poll",),
    Destination: ("plan",),
    KeyAlgorithm: ("credentials",),
    InboundVerifier: ("verify",),
    Action: ("build_request",),
}


def _check(item, base, kind: str, origin: str, needs_schema: bool) -> None:
    if not isinstance(item, base):
        raise PluginError(f"{origin}: {item!r} is not a {base.__name__}")
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"{origin}: a {kind} has no name")
    schema = getattr(item, "config_schema", None)
    if needs_schema and not (isinstance(schema, type) and issubclass(schema, Schema)):
        raise PluginError(f"{origin}: {kind} {name!r} has no marshmallow config_schema")
    wanted = BASE_SCHEMAS.get(base)
    if needs_schema and wanted is not None and isinstance(schema, type) and not issubclass(schema, wanted):
        raise PluginError(
            f"{origin}: {kind} {name!r}: config_schema {schema.__name__} must subclass {wanted.__name__}"
        )
    _check_methods(item, base, f"{origin}: {kind} {name!r}")
    if isinstance(item, Destination):
        if not isinstance(getattr(item, "actions", None), dict):
            raise PluginError(f"{origin}: destination {name!r} has no actions dict")
        for action_name, action in item.actions.items():
            if not isinstance(action, Action) or action.name != action_name:
                raise PluginError(f"{origin}: destination {name!r} action {action_name!r} is malformed")
            if not isinstance(action.max_batch, int) or action.max_batch < 1:
                raise PluginError(
                    f"{origin}: destination {name!r} action {action_name!r}: max_batch must be an int >= 1"
                )
            _check_methods(action, Action, f"{origin}: destination {name!r} action {action_name!r}")


def _check_methods(item, base: type, where: str) -> None:
    """The contract's methods are implemented where the core needs them, and every override
    takes the positional arguments the contract's method takes (the core passes them so)."""
    cls = type(item)
    for method in REQUIRED.get(base, ()):
        overridden = getattr(cls, method) is not getattr(base, method)
        if not overridden and not (base is Action and cls.exchange is not Action.exchange):
            raise PluginError(f"{where} does not implement {method}()")
    for method, spec in vars(base).items():
        if method.startswith("_") or not inspect.isfunction(spec) or getattr(cls, method) is spec:
            continue
        expected = _positional(spec)
        try:
            params = inspect.signature(getattr(item, method)).parameters.values()
        except (TypeError, ValueError):  # a builtin or C callable: nothing to read
            continue
        takes_any = any(p.kind is p.VAR_POSITIONAL for p in params)
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p for p in positional if p.default is p.empty]
        extra_required = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
        if (len(positional) < len(expected) and not takes_any) or len(required) > len(expected):
            raise PluginError(
                f"{where}: {method}() must take ({', '.join(expected)}), as the contract says; "
                f"it takes ({', '.join(p.name for p in positional)})"
            )
        if extra_required:
            raise PluginError(
                f"{where}: {method}() requires keyword arguments the core never passes: "
                f"{', '.join(extra_required)}"
            )


def _positional(function) -> list[str]:
    params = list(inspect.signature(function).parameters.values())[1:]  # without self
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def load_registry() -> Registry:
    registry = Registry()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            plugin = ep.load()
        except Exception as exc:  # a configured plugin that cannot load is an error
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        registry.add(plugin, f"plugin {ep.name!r}")
    return registry
