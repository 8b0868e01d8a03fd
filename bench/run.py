"""`make bench`: every benchmark in one run, each printing its figures as JSON.

The machine is noisy: compare the ratios each benchmark measures side by side, not absolute
figures across runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ("intake: connector vs bare Flask (wrk)", "ingest.py"),
    ("delivery: one worker, partner answering in 50 ms", "delivery.py"),
    ("profile fields: bulk route vs one Contact POST per event", "profile_fields.py"),
    ("reliability: SIGKILLed workers, partner outage, shuffled consent", "reliability.py"),
    ("activity: 100,000 Listrak activity rows to the Segment look-alike", "activity.py"),
    ("operator view: Live View, /metrics and purge over 1,000,000 stored attempts", "operator_view.py"),
]


def main() -> int:
    failed = []
    for title, script in BENCHMARKS:
        print(f"\n== {title} ({script})", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE.parent).returncode:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
