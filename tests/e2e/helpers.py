"""Reading the store and the sandbox from end-to-end tests."""

from __future__ import annotations

from sqlalchemy import select

from connector.outbox.engine import make_engine
from connector.outbox.tables import attempts, breakers, deliveries, events


class StoreReader:
    def __init__(self, database_url: str):
        self.engine = make_engine(database_url)

    def deliveries_for(self, event_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(deliveries).join(events, deliveries.c.event_pk == events.c.id)
                .where(events.c.event_id == event_id).order_by(deliveries.c.id))]

    def delivery(self, event_id: str) -> dict:
        (row,) = self.deliveries_for(event_id)
        return row

    def attempts_for(self, delivery_id: int) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(attempts).where(attempts.c.delivery_id == delivery_id)
                .order_by(attempts.c.id))]

    def breakers(self) -> dict[str, dict]:
        with self.engine.connect() as conn:
            return {r.scope: dict(r._mapping) for r in conn.execute(select(breakers))}

    def all_deliveries(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(deliveries))]

    def close(self) -> None:
        self.engine.dispose()
