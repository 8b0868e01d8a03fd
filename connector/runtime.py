"""Everything a process needs, built once at start-up: config, plugins, store, HTTP, keys."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from connector.config import Config, load_config
from connector.contract import Credentials, Destination, InboundEvent, Partner, PlannedDelivery
from connector.http import HttpClient, Redactor
from connector.migrations import prepare as prepare_schema
from connector.outbox.engine import default_database_url, make_engine
from connector.records import ReplayGuard
from connector.registry import Registry, load_registry


def config_dir() -> str:
    return os.environ.get("CONNECTOR_CONFIG_DIR", "config")


@dataclass
class Runtime:
    config: Config
    registry: Registry
    engine: object
    http: HttpClient
    redactor: Redactor
    _credentials: dict[str, Credentials] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(
        cls, config_path: str | None = None, database_url: str | None = None, registry: Registry | None = None
    ) -> Runtime:
        registry = registry or load_registry()
        config = load_config(config_path or config_dir(), registry)
        redactor = Redactor(config.secrets)
        worker = config.settings["worker"]
        http = HttpClient(
            timeout=worker["http_timeout"], redactor=redactor, pool_size=max(4, worker["threads"])
        )
        engine = make_engine(database_url or default_database_url())
        prepare_schema(engine)  # empty: create it; behind the code: SchemaError
        return cls(config=config, registry=registry, engine=engine, http=http, redactor=redactor)

    def credentials(self, partner_key_id: str) -> Credentials:
        """One Credentials object per key per process, so tokens are shared by all threads."""
        with self._lock:
            creds = self._credentials.get(partner_key_id)
            if creds is None:
                key = self.config.keys[partner_key_id]
                algorithm = self.registry.key_algorithms[key["algorithm"]]
                creds = algorithm.credentials(key, self.http)
                self._credentials[partner_key_id] = creds
            return creds

    @property
    def due_delays(self) -> dict[str, float]:
        """Batchable actions wait `worker.batch_window` after intake so a burst gathers."""
        window = self.config.settings["worker"]["batch_window"]
        return {
            action.name: window
            for destination in self.registry.destinations.values()
            for action in destination.actions.values()
            if action.max_batch > 1
        }

    def destination(self, partner: Partner) -> Destination:
        return self.registry.destinations[partner.plugin]

    def plan(self, source_id: str, event: InboundEvent) -> list[tuple[str, PlannedDelivery]]:
        """(partner id, planned delivery) for every enabled partner the source feeds."""
        return self.plan_each(source_id, [event])[0]

    def plan_each(
        self, source_id: str, events: Sequence[InboundEvent]
    ) -> list[list[tuple[str, PlannedDelivery]]]:
        """`plan` for each of a page's events, the source's partners looked up once."""
        fed = [(partner, self.destination(partner).plan) for partner in self.config.partners_for(source_id)]
        return [
            [(partner.id, delivery) for partner, plan in fed for delivery in plan(event, partner)]
            for event in events
        ]

    def verify_inbound(self, source_config: dict, headers, body: bytes) -> ReplayGuard | None:
        """Raise Unauthorized unless the request carries valid credentials for this source;
        the verifier's ReplayGuard, if it gives one, goes to intake with the events. Options
        the source's `auth:` holds beside algorithm and secrets go to the verifier by name."""
        auth = source_config["auth"]
        options = {k: v for k, v in auth.items() if k not in ("algorithm", "secrets")}
        return self.registry.verifiers[auth["algorithm"]].verify(auth["secrets"], headers, body, **options)
