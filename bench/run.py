"""`make bench`: every benchmark in one run, each printing its figures as JSON, then one table
of the figures DESIGN and the speed issue name, with their goals. Delivery and activity are
ratios to yardsticks run against the same look-alikes in the same run (bench/bare_sender.py,
bench/bare_pipeline.py), as intake is to bare Flask.

The machine is noisy: compare the ratios each benchmark measures side by side, not absolute
figures across runs. `python bench/run.py [--only ingest.py,delivery.py]`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ("intake: connector vs bare Flask (wrk), SQLite and PostgreSQL", "ingest.py"),
    ("delivery: one worker, partner answering in 50 ms", "delivery.py"),
    ("backlog: 3,000 and 200,000 queued, SQLite and PostgreSQL", "backlog.py"),
    ("profile fields: bulk route vs one Contact POST per event", "profile_fields.py"),
    ("reliability: SIGKILLed workers, partner outage, shuffled consent", "reliability.py"),
    ("activity: 100,000 Listrak activity rows to the Segment look-alike", "activity.py"),
    (
        "membership: a list of 100,000 subscribers to the Segment look-alike, vs a bare pipeline",
        "membership.py",
    ),
    ("operator view: Live View, /metrics and purge over 1,000,000 stored attempts", "operator_view.py"),
]


def last_json(output: str) -> dict:
    """The figures a benchmark printed last: the JSON object starting at the last `{` line
    (a line of text may follow it)."""
    lines = output.splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start] == "{":
            try:
                return json.JSONDecoder().raw_decode("\n".join(lines[start:]))[0]
            except ValueError:
                return {}
    return {}


def run(script: str) -> tuple[int, dict]:
    """Run one benchmark, its output shown as it comes; (exit status, its figures)."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / script)], cwd=HERE.parent, stdout=subprocess.PIPE, text=True
    )
    output = []
    for line in process.stdout:
        print(line, end="", flush=True)
        output.append(line)
    return process.wait(), last_json("".join(output))


def get(figures: dict, *path, default=None):
    for key in path:
        if not isinstance(figures, dict) or key not in figures:
            return default
        figures = figures[key]
    return figures


def rows(f: dict) -> list[tuple[str, str, str, str]]:
    """(figure, SQLite, PostgreSQL, goal) for the table."""
    ingest, delivery, backlog = f.get("ingest.py", {}), f.get("delivery.py", {}), f.get("backlog.py", {})
    fields, activity = f.get("profile_fields.py", {}), f.get("activity.py", {})
    membership = f.get("membership.py", {})

    def intake(store):
        figures = get(ingest, store)
        if not figures:
            return "—"
        rate, p99, ratio = figures["requests_per_second"], figures["p99"], figures["ratio_to_bare"]
        return f"{rate:,.0f} req/s, p99 {p99} = {ratio}× bare"

    def drain(store):
        figures = get(backlog, store)
        if not figures:
            return "—"
        return (
            f"{figures['small']['contacts_per_second']:,.0f} / {figures['large']['contacts_per_second']:,.0f}"
            f" contacts/s; {figures['large']['drain_seconds']:,.0f} s"
        )

    def delivered(figures):
        if not figures:
            return "—"
        drained, bare = figures["drain_contacts_per_second"], figures.get("bare_sender")
        if not bare:
            return f"{drained:,.0f} contacts/s"
        return (
            f"{drained:,.0f} contacts/s = {figures['ratio_to_bare']}× bare"
            f" ({bare['contacts_per_second']:,.0f})"
            f"; CPU {figures['worker_cpu_ms_per_contact']:.2f} ms/contact"
            f" = {figures['cpu_ratio_to_bare']}× bare ({bare['cpu_ms_per_contact']:.2f})"
        )

    def rss(store):
        growth = get(backlog, store, "large", "worker_rss_growth_mb")
        return "—" if growth is None else f"{growth} MB"

    bare = get(ingest, "bare_flask")
    return [
        (
            "intake, 2 sync gunicorn workers"
            + (f" (bare Flask {bare['requests_per_second']:,.0f} req/s, p99 {bare['p99']})" if bare else ""),
            intake("sqlite"),
            intake("postgresql"),
            "≥ 0.5× bare",
        ),
        (
            "yardstick: bare Flask + HMAC + one committed SQLite row per event (`bench/one_row_app.py`)",
            intake("one_row"),
            "—",
            "—",
        ),
        (
            "drain at 50 ms, 32 in flight per worker (SQLite 1, PostgreSQL 2) vs a bare sender",
            delivered(delivery),
            delivered(get(delivery, "postgresql", default={})),
            "≥ 0.9× bare; CPU ≤ 1.5× bare",
        ),
        (
            "token fetches (one per key per worker process)",
            str(get(delivery, "token_fetches", default="—")),
            str(get(delivery, "postgresql", "token_fetches", default="—")),
            "1 per process",
        ),
        (
            "drain at latency 0: backlog 3,000 / 200,000; time for 200,000",
            drain("sqlite"),
            drain("postgresql"),
            "same rate; < 600 s",
        ),
        ("worker peak RSS growth over the 200,000 backlog", rss("sqlite"), rss("postgresql"), "< 50 MB"),
        (
            "profile fields: bulk route / one Contact POST per event",
            (
                f"{fields['bulk_contacts_per_second']:,} / {fields['contact_contacts_per_second']:,}"
                f" contacts/s = {fields['ratio']}×"
            )
            if fields
            else "—",
            "—",
            "bulk route",
        ),
        (
            "activity: 100,000 rows to Segment vs a bare pipeline",
            (
                f"{activity['events_per_second']:,} events/s = {activity['ratio_to_bare']}× bare"
                f" ({activity['bare_pipeline']['events_per_second']:,}); {activity['seconds_to_complete']} s,"
                f" {activity['listrak_requests']} Listrak + {activity['segment_requests']} Segment requests"
            )
            if activity
            else "—",
            "—",
            "≥ 0.5× bare; ≤ 60 + ≤ 400",
        ),
        (
            "membership: 100,000 subscribers backfilled to Segment"
            + (f" (bare pipeline {membership['bare_seconds']} s)" if membership else ""),
            (
                f"{membership['seconds_to_complete']} s = {membership['ratio_to_bare']}× bare, "
                f"{membership['listrak_requests']} Listrak + {membership['segment_requests']} Segment"
                " requests"
            )
            if membership
            else "—",
            "—",
            "≤ 25 + ≤ 110 requests",
        ),
    ]


def table(figures: dict) -> str:
    lines = [("figure", "SQLite", "PostgreSQL", "goal"), *rows(figures)]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    out = []
    for n, line in enumerate(lines):
        out.append(" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            out.append("-+-".join("-" * width for width in widths))
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated script names")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b[1] in args.only.split(",")]
    failed, figures = [], {}
    for title, script in chosen:
        print(f"\n== {title} ({script})", flush=True)
        status, figures[script] = run(script)
        if status:
            failed.append(script)
    print("\n== summary\n" + table(figures))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
