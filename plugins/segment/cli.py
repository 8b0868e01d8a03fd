"""`connector segment-sandbox`: the local look-alike of Segment's tracking API (records what it
receives, injects faults) for demos, tests and benchmarks, registered through the
`connector.commands` entry points."""

from __future__ import annotations

from connector.plugin_api import serve


def register(subparsers) -> None:
    parser = subparsers.add_parser("segment-sandbox", help="run the local Segment tracking-API look-alike")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument(
        "--write-key",
        action="append",
        dest="write_keys",
        metavar="KEY",
        help="a write key it accepts (repeat for more; default the example config's demo key)",
    )
    parser.add_argument(
        "--any-write-key",
        action="store_true",
        help="accept any non-empty write key, as Segment's API does",
    )
    parser.add_argument("--threads", type=int, default=32, help="concurrent requests")
    parser.set_defaults(func=run)


def run(args) -> int:
    from plugins.segment.sandbox import DEMO_WRITE_KEY, create_sandbox_app

    keys = None if args.any_write_key else (args.write_keys or [DEMO_WRITE_KEY])
    serve(
        create_sandbox_app(keys),
        args.host,
        args.port,
        args.threads,
        f"segment look-alike on http://{args.host}:{args.port}",
    )
    return 0
