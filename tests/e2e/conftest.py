from pathlib import Path

import pytest

from connector.testing import example_stack

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    """Every test under tests/e2e/ starts real processes: it carries the `e2e` marker."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def stack(tmp_path):
    """gunicorn + one worker + the sandbox, torn down after the test; logs shown on failure."""
    stack = example_stack(tmp_path / "stack", settings={"retry_schedule": ["200ms", "500ms", "1s"]})
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request):
    """A stack's store, once on each database: None (a SQLite file in the stack's folder) or a
    fresh PostgreSQL database."""
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
