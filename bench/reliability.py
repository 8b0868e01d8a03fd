"""Reliability figures (issue 3): `python bench/reliability.py [--people 300 --per-person 4]`.

Real processes: gunicorn, workers SIGKILLed and restarted, a partner outage (503 on every
request), shuffled opt-ins/opt-outs. Prints events sent, faults injected, events lost,
partner requests per delivered event, wrong final contact states, and request rates during the
outage (from the attempt log).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from connector.testing import example_stack
from plugins.extole.testing import referral_event
from plugins.listrak import testing as reliability


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--per-person", type=int, default=4)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds of partner outage")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        stack = example_stack(
            Path(tmp),
            settings=reliability.RELIABILITY_SETTINGS,
            partner_overrides={"listrak": {"resubscribe": True}},
        )
        try:
            stack.start(workers=0)
            stack.part("listrak").request("POST", "/_sandbox/latency", json={"ms": 20})
            figures = reliability.run(
                stack,
                referral_event,
                people=args.people,
                per_person=args.per_person,
                kill_rounds=args.kills,
                outage_seconds=args.outage,
                workers=args.workers,
            )
        finally:
            stack.stop()
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
