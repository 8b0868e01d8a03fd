"""Intake speed: signed, validated, durably committed events per second through gunicorn,
against a bare Flask endpoint answering 202 under the same gunicorn settings (`-w 2`, the
default sync workers, as DESIGN measures it), measured with wrk in one run, on SQLite and on
PostgreSQL (no worker runs: the request commits the event, a worker plans it); the store says
how many were committed. A second yardstick, `one_row_app`, commits
one row per event to SQLite: between the two lies what a durable write costs at all.
`python bench/ingest.py [--seconds 10 --connections 32 --no-postgres]`."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from connector.testing import example_stack, free_port, postgres, wait_until
from plugins.extole import testing as extole_testing
from plugins.extole.testing import referral_event, sign

HERE = Path(__file__).resolve().parent
SECRET = extole_testing.STACK_ENV["EXTOLE_WEBHOOK_SECRET"]
GUNICORN = ["--workers", "2", "--log-level", "warning"]


def write_bodies(path: Path, count: int, secret: str) -> None:
    with path.open("w") as out:
        for i in range(count):
            body = json.dumps(referral_event(f"ing-{i}", email=f"p{i}@example.com"), separators=(",", ":"))
            out.write(f"{sign(body.encode(), secret)} {body}\n")


def wrk(url: str, bodies: Path, seconds: int, connections: int, threads: int = 2) -> dict:
    done = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(HERE / "ingest.lua"),
            url,
            "--",
            str(bodies),
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))
    non202 = int(re.search(r"non202=(\d+)", done.stdout).group(1))
    # The latency distribution's line, not a "…99%" that ends the thread stats' Stdev column.
    p99 = re.search(r"^\s+99%\s+(\S+)", done.stdout, re.MULTILINE)
    return {"requests_per_second": rate, "non_202": non202, "p99": p99.group(1) if p99 else None}


def measure_connector(tmp: Path, bodies: Path, args, database_url: str | None = None) -> dict:
    stack = example_stack(tmp, database_url=database_url)
    stack.web_workers = 2
    try:
        stack.start(workers=0)
        figures = wrk(f"{stack.base_url}/webhooks/extole", bodies, args.seconds, args.connections)
        # No worker runs here: every event committed is still waiting to be planned.
        figures["events_committed"] = stack.waiting_to_plan()
    finally:
        stack.stop()
    return figures


def measure_yardstick(app: str, bodies: Path, args, env: dict) -> dict:
    """wrk against a yardstick app (`bench.bare_app:app`, `bench.one_row_app:app`) under the
    connector's gunicorn settings."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *GUNICORN, "--bind", f"127.0.0.1:{port}", app],
        cwd=HERE.parent,
        env={**os.environ, **env},
    )
    try:
        wait_until(
            lambda: requests.post(f"http://127.0.0.1:{port}/webhooks/x", timeout=1).status_code in (202, 401),
            message=app,
        )
        return wrk(f"http://127.0.0.1:{port}/webhooks/extole", bodies, args.seconds, args.connections)
    finally:
        server.terminate()
        server.wait()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-postgres", dest="postgres", action="store_false")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bodies = tmp / "bodies.txt"
        write_bodies(bodies, 80_000, SECRET)
        bare_figures = measure_yardstick("bench.bare_app:app", bodies, args, {})
        one_row_env = {"ONE_ROW_DB": str(tmp / "one_row.db"), "ONE_ROW_SECRET": SECRET}
        one_row = measure_yardstick("bench.one_row_app:app", bodies, args, one_row_env)
        figures = {"gunicorn": " ".join(GUNICORN), "bare_flask": bare_figures, "one_row": one_row}
        figures["sqlite"] = measure_connector(tmp / "sqlite", bodies, args)
        if args.postgres:
            with postgres.bench_database() as url:
                figures["postgresql"] = measure_connector(tmp / "postgresql", bodies, args, url)
    bare_rate = bare_figures["requests_per_second"]
    for store in ("one_row", "sqlite", "postgresql"):
        if store in figures:
            figures[store]["ratio_to_bare"] = round(figures[store]["requests_per_second"] / bare_rate, 2)
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
