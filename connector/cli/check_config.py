"""`connector check-config`: the offline check; prints every problem at once."""

from __future__ import annotations

import sys

from connector.config import ConfigError, load_config
from connector.registry import PluginError, load_registry
from connector.runtime import config_dir


def register(subparsers) -> None:
    parser = subparsers.add_parser("check-config", help="validate the config directory offline")
    parser.set_defaults(func=run)


def run(args) -> int:
    directory = args.config or config_dir()
    try:
        config = load_config(directory, load_registry())
    except (ConfigError, PluginError) as exc:
        problems = getattr(exc, "problems", [str(exc)])
        print(f"{len(problems)} problem(s) in {directory}:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    pulled = f" ({len(config.pull_sources)} pulled)" if config.pull_sources else ""
    print(
        f"{directory}: OK — {len(config.keys)} key(s), {len(config.all_sources)} source(s)"
        f"{pulled}, {len(config.partners)} partner(s)"
    )
    return 0
