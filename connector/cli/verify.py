"""`connector verify <partner | pull source>`: live, read-only check of one integration against
the partner (or its sandbox): one line per item, exit 1 if any fails. `check-config` stays the
offline one."""

from __future__ import annotations

import sys

from connector.cli.runtimes import build_offline_runtime


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="live check: each key's token, the list, the profile field ids (or a pull source's reads)",
    )
    parser.add_argument(
        "partner", help="partner id (the file stem in config/partners/) or a pull source id (config/sources/)"
    )
    parser.set_defaults(func=run)


def _subject(runtime, name: str):
    """(heading, plugin name, the checks to run) for a partner or a pull source, or None."""
    partner = runtime.config.partners.get(name)
    if partner is not None:
        state = "" if partner.enabled else ", disabled"
        where = partner.settings.get("api_url") or ""
        destination = runtime.destination(partner)
        heading = f"verify {name} (plugin {partner.plugin}{state}) {where}".rstrip()
        return (
            heading,
            partner.plugin,
            lambda: destination.verify(partner, runtime.http, runtime.credentials),
        )
    source = runtime.config.pull_sources.get(name)
    if source is not None:
        plugin = runtime.registry.pull_sources[source["plugin"]]
        where = source.get("api_url") or ""
        heading = f"verify {name} (pull source, plugin {source['plugin']}) {where}".rstrip()
        return heading, source["plugin"], lambda: plugin.verify(source, runtime.http, runtime.credentials)
    return None


def run(args) -> int:
    runtime = build_offline_runtime(args)
    subject = _subject(runtime, args.partner)
    if subject is None:
        partners = ", ".join(sorted(runtime.config.partners)) or "none"
        pulled = ", ".join(sorted(runtime.config.pull_sources)) or "none"
        print(
            f"no partner {args.partner!r} in {runtime.config.directory}/partners (known: {partners}) "
            f"nor pull source in sources/ (known: {pulled})",
            file=sys.stderr,
        )
        return 2
    heading, plugin_name, checks_of = subject
    print(heading)
    try:
        checks = checks_of()
    except Exception as exc:  # a plugin bug: say so on one line, never a traceback
        print(f"  FAIL  verify itself failed: {runtime.redactor.text(repr(exc))}")
        return 1
    if not checks:
        print(f"  (plugin {plugin_name} has no live checks)")
        return 0
    for ok, line in checks:
        print(f"  {'ok  ' if ok else 'FAIL'}  {runtime.redactor.text(line)}")
    failed = sum(1 for ok, _ in checks if not ok)
    print(f"{len(checks) - failed} of {len(checks)} checks passed" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0
