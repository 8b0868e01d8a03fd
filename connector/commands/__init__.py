"""Subcommands of `connector`; each module has `register(subparsers)`."""

from __future__ import annotations

import sys

from connector.config import ConfigError
from connector.registry import PluginError
from connector.runtime import Runtime


def build_runtime(args) -> Runtime:
    """The runtime for a command, or exit 2 with every configuration problem listed."""
    try:
        return Runtime.build(args.config, args.database_url)
    except (ConfigError, PluginError) as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from exc
