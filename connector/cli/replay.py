"""`connector replay`: queue finished deliveries again, through the consent-order rule."""

from __future__ import annotations

from datetime import datetime

from connector.cli.runtimes import build_runtime
from connector.fields import parse_duration
from connector.outbox.engine import now
from connector.outbox.replay import replay


def register(subparsers) -> None:
    parser = subparsers.add_parser("replay", help="send dead (or chosen) deliveries again")
    parser.add_argument("ids", nargs="*", type=int, help="delivery ids")
    parser.add_argument("--dead", action="store_true", help="every dead delivery (with filters)")
    parser.add_argument("--partner", help="only this partner id")
    parser.add_argument("--since", help="finished since: ISO time or a duration ago (e.g. 2h)")
    parser.set_defaults(func=run)


def _since(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return now() - parse_duration(value)
    except ValueError:
        return datetime.fromisoformat(value).timestamp()


def run(args) -> int:
    if not args.ids and not args.dead:
        print("name delivery ids, or --dead (optionally with --partner/--since)")
        return 2
    try:
        since = _since(args.since)
    except ValueError:
        print(f"--since: {args.since!r} is neither a duration like 2h nor an ISO time")
        return 2
    runtime = build_runtime(args)
    counts = replay(
        runtime.engine, args.ids or None, dead=args.dead, partner=args.partner, since=since, runtime=runtime
    )
    print(f"queued {counts['queued']}, superseded {counts['superseded']}, unchanged {counts['unchanged']}")
    return 0
