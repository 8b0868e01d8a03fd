"""`connector sandbox`: the local Listrak look-alike (with fault injection) for demos, tests and
benchmarks, registered through the `connector.commands` entry points."""

from __future__ import annotations

from connector.plugin_api import serve


def register(subparsers) -> None:
    parser = subparsers.add_parser("sandbox", help="run the local Listrak sandbox")
    parser.add_argument(
        "which",
        nargs="?",
        default="listrak",
        choices=["listrak"],
        help="which look-alike to serve (default listrak)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument(
        "--threads", type=int, default=64, help="concurrent requests (hanging faults hold one each)"
    )
    parser.add_argument(
        "--demo", action="store_true", help="seed email activity on the example list (make run does)"
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from plugins.listrak.sandbox import create_sandbox_app

    serve(
        create_sandbox_app(demo=args.demo),
        args.host,
        args.port,
        args.threads,
        f"listrak sandbox on http://{args.host}:{args.port}",
    )
    return 0
