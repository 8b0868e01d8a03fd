"""`connector preview <event.json>`: the exact HTTP requests an event would cause for each
partner its source feeds (secrets redacted) and the outcome rules that apply. Nothing is sent:
no token is fetched and the store is not opened."""

from __future__ import annotations

import json
import sys
from urllib.parse import urlencode

from connector.cli.runtimes import build_offline_runtime
from connector.contract import PayloadError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "preview", help="show the requests an event file would cause; nothing is sent"
    )
    parser.add_argument("event_file", metavar="event.json", help="one event or an array (- = stdin)")
    parser.add_argument(
        "--source", help="source id (default: the only source, or the first whose plugin accepts the file)"
    )
    parser.set_defaults(func=run)


def duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:g}s"


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as fh:
        return fh.read()


def _parse(runtime, body: bytes, source_id: str | None):
    """(source_id, events), or raise ValueError saying why no source accepts the file."""
    sources = runtime.config.sources
    if source_id is not None and source_id not in sources:
        raise ValueError(f"no source {source_id!r} (known: {', '.join(sorted(sources)) or 'none'})")
    candidates = [source_id] if source_id else sorted(sources)
    problems: list[str] = []
    for candidate in candidates:
        plugin = runtime.registry.sources[sources[candidate]["plugin"]]
        try:
            return candidate, plugin.parse(body, sources[candidate])
        except PayloadError as exc:
            problems.extend(
                f"{candidate}: {path}: {', '.join(messages)}" for path, messages in exc.problems.items()
            )
    raise ValueError("no source accepts this file:\n  " + "\n  ".join(problems or ["no sources"]))


def _headers(runtime, request, partner_key_id: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", **request.headers}
    if partner_key_id:
        key = runtime.config.keys[partner_key_id]
        headers.update(runtime.registry.key_algorithms[key["algorithm"]].shown_headers(key))
    return dict(sorted(runtime.redactor.headers(headers).items()))


def _request_lines(runtime, action, partner, planned) -> list[str]:
    request = action.build_request(partner, [planned.spec])
    record = runtime.http.request_record(request)
    url = record["url"] + (f"?{urlencode(record['params'])}" if record["params"] else "")
    lines = [f"{record['method']} {url}"]
    lines += [
        f"{name}: {value}" for name, value in _headers(runtime, request, planned.partner_key_id).items()
    ]
    if record["body"] is not None:
        lines.append("")
        lines += json.dumps(json.loads(record["body"]), indent=2, ensure_ascii=False).splitlines()
    return lines


def _rules(runtime, partner, action, planned, event) -> list[str]:
    schedule = ", ".join(duration(s) for s in runtime.config.retry_schedule(partner.id))
    rules = list(action.notes(partner, planned.spec))  # the partner plugin's own, first
    if planned.contact_key:
        event_time = event.event_time.isoformat(timespec="milliseconds")
        rules.append(
            f"superseded (not sent) if this contact already has a queued or delivered "
            f"change with an event_time later than {event_time}"
        )
    if action.max_batch > 1:
        window = duration(runtime.config.settings["worker"]["batch_window"])
        rules.append(
            f"batched: waits up to {window} and goes with other deliveries of batch "
            f"{planned.batch_key!r} in one request of up to {action.max_batch} items"
        )
    rules.append(
        "2xx: delivered (the partner plugin may read some answers otherwise, e.g. "
        "'already unsubscribed' counts as delivered)"
    )
    rules.append(
        f"408, 425, 429, 5xx, timeout, connection error: retrying after {schedule} "
        "(Retry-After honoured), then dead"
    )
    if planned.partner_key_id:
        rules.append(
            "401: one fresh token, then at once again; credentials refused by the "
            f"token endpoint: key {planned.partner_key_id} paused, deliveries wait"
        )
    rules.append("other 4xx: dead (kept at least 7 days, replayable)")
    return rules


def run(args) -> int:
    runtime = build_offline_runtime(args)
    try:
        body = _read(args.event_file)
        source_id, events = _parse(runtime, body, args.source)
    except OSError as exc:
        print(f"cannot read {args.event_file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    out = []
    fed = [p for p in runtime.config.partners.values() if source_id in p.sources]
    for event in events:
        address = event.email or (f"phone {event.phone}" if event.phone else "no email")
        out.append(
            f"event {event.event_id}: {event.type}, {event.environment}, {address} (source {source_id})"
        )
        out += [f"  warning: {warning}" for warning in event.warnings]
        for partner in fed:
            if not partner.enabled:
                out.append(f"  partner {partner.id}: disabled (enabled: false): not sent")
        planned_all = runtime.plan(source_id, event)
        if not planned_all:
            out.append("  no delivery: no enabled partner plans anything for this event")
        for partner_id, planned in planned_all:
            partner = runtime.config.partners[partner_id]
            action = runtime.destination(partner).actions[planned.action]
            key = f"key {planned.partner_key_id}" if planned.partner_key_id else "no key"
            out.append(f"  partner {partner_id}: {planned.action} ({key})")
            if planned.skip_reason:
                out.append(f"    skipped: {planned.skip_reason}; nothing would be sent")
                continue
            out += [f"    {line}".rstrip() for line in _request_lines(runtime, action, partner, planned)]
            out.append("    outcome rules:")
            out += [f"      - {rule}" for rule in _rules(runtime, partner, action, planned, event)]
    out.append("nothing was sent (preview)")
    print("\n".join(runtime.redactor.text(line) for line in out))
    return 0
