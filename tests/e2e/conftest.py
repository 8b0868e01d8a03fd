import pytest

from tests.e2e.stack import Stack


@pytest.fixture
def stack(tmp_path):
    """gunicorn + one worker + the sandbox, torn down after the test; logs shown on failure."""
    stack = Stack(tmp_path / "stack", settings={"retry_schedule": ["200ms", "500ms", "1s"]})
    try:
        yield stack.start()
    finally:
        stack.stop()
