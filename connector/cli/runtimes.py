"""How commands build their runtime: with the store, or offline (verify, preview)."""

from __future__ import annotations

import sys

from connector.config import ConfigError
from connector.migrations import SchemaError
from connector.registry import PluginError
from connector.runtime import Runtime


def build_offline_runtime(args) -> Runtime:
    """Config, plugins, keys and HTTP without opening the store (verify, preview)."""
    from connector.config import load_config
    from connector.http import HttpClient, Redactor
    from connector.registry import load_registry
    from connector.runtime import config_dir

    try:
        registry = load_registry()
        config = load_config(args.config or config_dir(), registry)
    except (ConfigError, PluginError) as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from exc
    redactor = Redactor(config.secrets)
    http = HttpClient(timeout=config.settings["worker"]["http_timeout"], redactor=redactor)
    return Runtime(config=config, registry=registry, engine=None, http=http, redactor=redactor)


def build_runtime(args) -> Runtime:
    """The runtime for a command, or exit 2 with every configuration problem listed (or why
    the store's schema does not fit this code)."""
    try:
        return Runtime.build(args.config, args.database_url)
    except (ConfigError, PluginError, SchemaError) as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from exc
