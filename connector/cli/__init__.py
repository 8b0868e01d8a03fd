"""The `connector` command: each built-in subcommand is a module here with
`register(subparsers)`; plugins add theirs through the `connector.commands` entry points."""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

BUILT_IN = ["serve", "worker", "check_config", "replay", "purge", "verify", "preview", "poll", "db"]
PLUGIN_GROUP = "connector.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="connector", description=__doc__)
    parser.add_argument("--config", help="config directory (default $CONNECTOR_CONFIG_DIR or ./config)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default $CONNECTOR_DATABASE_URL)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in BUILT_IN:
        importlib.import_module(f"connector.cli.{name}").register(subparsers)
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        try:
            register = ep.load()
        except Exception as exc:  # an installed command that cannot load is an error
            raise SystemExit(f"command {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
