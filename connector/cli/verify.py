"""`connector verify <partner>`: live, read-only check of one integration against the partner
(or its sandbox): one line per item, exit 1 if any fails. `check-config` stays the offline one."""

from __future__ import annotations

import sys

from connector.cli.runtimes import build_offline_runtime


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="live check: each key's token, the list, the profile field ids"
    )
    parser.add_argument("partner", help="partner id (the file stem in config/partners/)")
    parser.set_defaults(func=run)


def run(args) -> int:
    runtime = build_offline_runtime(args)
    partner = runtime.config.partners.get(args.partner)
    if partner is None:
        known = ", ".join(sorted(runtime.config.partners)) or "none"
        print(
            f"no partner {args.partner!r} in {runtime.config.directory}/partners (known: {known})",
            file=sys.stderr,
        )
        return 2
    destination = runtime.destination(partner)
    where = partner.get("api_url") or ""
    state = "" if partner["enabled"] else ", disabled"
    print(f"verify {args.partner} (plugin {partner['plugin']}{state}) {where}".rstrip())
    try:
        checks = destination.verify(partner, runtime.http, runtime.credentials)
    except Exception as exc:  # a plugin bug: say so on one line, never a traceback
        print(f"  FAIL  verify itself failed: {runtime.redactor.text(repr(exc))}")
        return 1
    if not checks:
        print(f"  (plugin {partner['plugin']} has no live checks)")
        return 0
    for ok, line in checks:
        print(f"  {'ok  ' if ok else 'FAIL'}  {runtime.redactor.text(line)}")
    failed = sum(1 for ok, _ in checks if not ok)
    print(f"{len(checks) - failed} of {len(checks)} checks passed" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0
