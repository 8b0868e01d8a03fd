"""Shared fixtures: a config directory built from the example config, a runtime on a fresh
SQLite store, the Flask app and client, and posting signed events. The helpers they use are
shared with the benchmarks: connector.testing and each plugin's `testing` module."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import pytest

from connector.app import create_app
from connector.delivery.planner import Planner
from connector.migrations import prepare as prepare_schema
from connector.outbox.engine import make_engine
from connector.runtime import Runtime
from connector.testing import ROOT, postgres
from plugins.extole import testing as extole_testing
from plugins.extole.testing import WEBHOOK_SECRET, sign
from plugins.listrak import testing as listrak_testing
from plugins.listrak.testing import ACTIVITY_FLOW, TOKEN_URL
from plugins.segment import testing as segment_testing
from tests.config_files import update_yaml

# What the example config's ${ENV} placeholders need in unit tests.
TEST_ENV = {
    **listrak_testing.TEST_ENV,
    **extole_testing.TEST_ENV,
    **segment_testing.TEST_ENV,
    "CONNECTOR_ADMIN_TOKEN": "test-admin-token",
}


@pytest.fixture
def env(monkeypatch):
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    return TEST_ENV


@pytest.fixture
def config_dir(tmp_path, env) -> Path:
    """The example config, without its activity → Segment flow (ACTIVITY_FLOW: a worker run
    polls nothing); `activity_config` puts it back."""
    target = tmp_path / "config"
    shutil.copytree(ROOT / "config", target)
    for relative in ACTIVITY_FLOW:
        (target / relative).unlink(missing_ok=True)
    return target


@pytest.fixture
def activity_config(config_dir) -> Path:
    """The config directory with the example's activity → Segment flow in it, list membership
    off (most tests read email activity alone; `membership_config` turns it on)."""
    for relative in ACTIVITY_FLOW:
        if (ROOT / "config" / relative).exists():
            shutil.copyfile(ROOT / "config" / relative, config_dir / relative)
    update_yaml(config_dir / ACTIVITY_FLOW[0], set={"membership": False})
    return config_dir


@pytest.fixture
def membership_config(activity_config) -> Path:
    """The example's activity flow as it is: following list membership too."""
    update_yaml(activity_config / ACTIVITY_FLOW[0], set={"membership": True})
    return activity_config


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory) -> bytes:
    """An SQLite store the way the runtime makes one on an empty database (every migration up
    to head), made once per session: migrating costs three times what the rest of a runtime does."""
    path = tmp_path_factory.mktemp("migrated") / "connector.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        prepare_schema(engine)
    finally:
        engine.dispose()  # the last connection to close checkpoints and removes the -wal file
    assert not path.with_name(f"{path.name}-wal").exists()
    return path.read_bytes()


@pytest.fixture
def database_url(tmp_path, migrated_store) -> str:
    """A fresh SQLite store at head for each test: a copy of `migrated_store`, private (0600)
    like every store the engine creates."""
    path = tmp_path / "connector.db"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(migrated_store)
    return f"sqlite:///{path}"


@pytest.fixture
def make_runtime(config_dir, database_url):
    def build(**_) -> Runtime:
        return Runtime.build(str(config_dir), database_url)

    return build


@pytest.fixture
def runtime(make_runtime) -> Runtime:
    return make_runtime()


@pytest.fixture
def app(runtime):
    return create_app({"TESTING": True}, runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def post_events(client, runtime):
    """Post signed events to a webhook, then plan what it accepted as a worker would (a
    worker's planning step: connector.delivery.planner), so the deliveries are there to see."""

    def post(payload, source="extole", secret=WEBHOOK_SECRET, headers=None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = {"Content-Type": "application/json", "X-Extole-Signature": sign(body, secret)}
        sent.update(headers or {})
        answer = client.post(f"/webhooks/{source}", data=body, headers=sent)
        Planner(runtime).plan_all()
        return answer

    return post


@pytest.fixture
def listrak_token(requests_mock):
    return requests_mock.post(
        TOKEN_URL, json={"access_token": "tok-1", "token_type": "bearer", "expires_in": 3599}
    )


class Clock:
    """A fake wall clock: `time.time()` answers `at` until the test moves it."""

    def __init__(self, at: float):
        self.at = at

    def __call__(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Stops `time.time()` (the outbox's `now()`, verifiers, metrics) at the next whole second
    (never before a time already stored), so times in the store are exact;
    `clock.advance(seconds)` moves it on. Code that reads `datetime.now()` still sees the real
    time, at most a second behind."""
    fake = Clock(float(math.ceil(time.time())))
    monkeypatch.setattr(time, "time", fake)
    return fake


POSTGRES_FIXTURES = {"postgres_server", "postgres_url"}


def pytest_collection_modifyitems(items):
    """Every test on the real PostgreSQL carries the `postgres` marker (`-m "not postgres"`)."""
    for item in items:
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A real PostgreSQL started by the project's own script (installed with apt if missing)."""
    return postgres.start()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh database on the test PostgreSQL for each test, dropped afterwards."""
    with postgres.database(postgres_server) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, database_url):
    """The URL of a fresh store at head, once on each database the connector runs on."""
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else database_url
