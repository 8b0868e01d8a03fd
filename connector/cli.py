"""The `connector` command: each subcommand lives in connector/commands/<name>.py."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ["serve", "worker", "check_config", "sandbox", "replay", "purge", "verify",
            "preview"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="connector", description=__doc__)
    parser.add_argument("--config", help="config directory (default $CONNECTOR_CONFIG_DIR or ./config)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default $CONNECTOR_DATABASE_URL)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"connector.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
