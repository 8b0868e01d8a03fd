"""Finds plugins through the `connector.plugins` entry points and checks they fit the contract.

A plugin that does not fit fails loudly at load time, naming the entry point."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points

from marshmallow import Schema

from connector.contract import (
    Action,
    Destination,
    InboundVerifier,
    KeyAlgorithm,
    Plugin,
    PullSource,
    Source,
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
        for kind, items, base, table, needs_schema in (
            ("source", plugin.sources, Source, self.sources, True),
            ("pull source", plugin.pull_sources, PullSource, self.pull_sources, True),
            ("destination", plugin.destinations, Destination, self.destinations, True),
            ("key algorithm", plugin.key_algorithms, KeyAlgorithm, self.key_algorithms, True),
            ("inbound verifier", plugin.verifiers, InboundVerifier, self.verifiers, False),
        ):
            for item in items:
                _check(item, base, kind, origin, needs_schema)
                taken = (
                    self.sources if kind == "pull source" else self.pull_sources if kind == "source" else {}
                )
                if item.name in table or item.name in taken:
                    raise PluginError(f"{origin}: {kind} {item.name!r} is already registered")
                table[item.name] = item


def _check(item, base, kind: str, origin: str, needs_schema: bool) -> None:
    if not isinstance(item, base):
        raise PluginError(f"{origin}: {item!r} is not a {base.__name__}")
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"{origin}: a {kind} has no name")
    schema = getattr(item, "config_schema", None)
    if needs_schema and not (isinstance(schema, type) and issubclass(schema, Schema)):
        raise PluginError(f"{origin}: {kind} {name!r} has no marshmallow config_schema")
    if isinstance(item, Destination):
        for action_name, action in item.actions.items():
            if not isinstance(action, Action) or action.name != action_name:
                raise PluginError(f"{origin}: destination {name!r} action {action_name!r} is malformed")


def load_registry() -> Registry:
    registry = Registry()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            plugin = ep.load()
        except Exception as exc:  # a configured plugin that cannot load is an error
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        registry.add(plugin, f"plugin {ep.name!r}")
    return registry
