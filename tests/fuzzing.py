"""How many examples a generated (hypothesis, schemathesis) test runs: every one in `make test`,
a quarter in `make test-fast` (CONNECTOR_FUZZ=quick), the inner loop that must stay under a
minute; the whole suite is the check."""

from __future__ import annotations

import os

QUICK = os.environ.get("CONNECTOR_FUZZ") == "quick"


def examples(full: int) -> int:
    return max(5, full // 4) if QUICK else full
