"""Delivery fixtures: the store on SQLite and, marked `postgres`, on PostgreSQL."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, database_url):
    """The URL of a fresh store at head, once on each database the connector runs on."""
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else database_url
