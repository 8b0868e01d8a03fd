"""`connector example-sandbox`: the example plugin's look-alike, registered through the
`connector.commands` entry points."""

from __future__ import annotations

from connector.plugin_api import serve


def register(subparsers) -> None:
    parser = subparsers.add_parser("example-sandbox", help="run the example plugin's look-alike")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8902)
    parser.add_argument("--token", default="example-token-0123456789", help="the bearer token it takes")
    parser.set_defaults(func=run)


def run(args) -> int:
    from plugins.example_webhook.sandbox import create_sandbox_app

    serve(
        create_sandbox_app(args.token),
        args.host,
        args.port,
        8,
        f"example look-alike on http://{args.host}:{args.port}",
    )
    return 0
