"""Fixtures of the Listrak activity source's tests: the Listrak sandbox behind requests_mock,
the source with a recording `sleep`, and one poll at a fixed time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from plugins.listrak.sandbox import create_sandbox_app
from plugins.listrak_activity.source import ListrakActivitySource
from plugins.listrak_activity.testing import UNIT_CLIENTS, InProcessListrak

POLLED_AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def listrak(requests_mock) -> InProcessListrak:
    return InProcessListrak(requests_mock, create_sandbox_app(clients=UNIT_CLIENTS))


@pytest.fixture
def waits() -> list[float]:
    """Every pause the activity source took (its `sleep`), in seconds."""
    return []


@pytest.fixture
def activity_source(waits) -> ListrakActivitySource:
    return ListrakActivitySource(sleep=waits.append)


class Poller:
    """Polls of the example `listrak-activity` source at POLLED_AT (or `at`), from a cursor,
    with config overrides; `restart()` is another process (the source remembers nothing)."""

    def __init__(self, source: ListrakActivitySource, runtime):
        self.source, self.runtime = source, runtime
        self.config = runtime.config.pull_sources["listrak-activity"]

    def iterate(self, cursor=None, at: datetime = POLLED_AT, **overrides):
        since = at.timestamp() - self.config["lookback"]
        config = {**self.config, **overrides}
        return self.source.poll(config, cursor, since, self.runtime.http, self.runtime.credentials)

    def __call__(self, cursor=None, at: datetime = POLLED_AT, **overrides) -> list:
        return list(self.iterate(cursor, at, **overrides))

    def restart(self) -> None:
        self.source.__init__(sleep=self.source.sleep)


@pytest.fixture
def poll(activity_config, runtime, activity_source) -> Poller:
    return Poller(activity_source, runtime)
