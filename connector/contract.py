"""The plugin contract: what a source, a destination and a key algorithm provide.

A plugin package exposes one `Plugin` object through the entry-point group
`connector.plugins`. The core never names a partner: it asks the registry for the source,
destination or key algorithm that a config file names, and talks to it through these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marshmallow import Schema

    from connector.http import HttpResult


class PayloadError(Exception):
    """An inbound payload is invalid. `problems` maps a payload path ("[3].person.email")
    to a list of messages; they go back to the sender as they are."""

    def __init__(self, problems: dict[str, list[str]]):
        super().__init__("; ".join(f"{p}: {', '.join(m)}" for p, m in problems.items()))
        self.problems = problems


class InvalidCredentials(Exception):
    """The partner's token endpoint refused the key itself (not a transient failure).
    Deliveries on that key are paused, never burned into `dead`."""


@dataclass(frozen=True)
class InboundEvent:
    """One accepted event, normalised by its source (email trimmed and lower-cased)."""

    event_id: str
    type: str
    event_time: datetime
    environment: str
    email: str | None
    payload: dict[str, Any]


@dataclass
class PlannedDelivery:
    """What one event asks of one partner. `spec` is JSON data the action needs at send time
    (no secrets). `contact_key` orders consent changes for one contact; None means unordered.
    A delivery with a `skip_reason` is recorded as skipped and never sent."""

    action: str
    spec: dict[str, Any]
    partner_key_id: str | None
    contact_key: str | None = None
    batch_key: str | None = None
    skip_reason: str | None = None


@dataclass
class OutboundRequest:
    """A request a plugin builds; the core's HTTP module sends it and adds the credentials."""

    method: str
    url: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """How one delivery ended one attempt: delivered | skipped | retry | dead."""

    kind: str
    reason: str | None = None


class Source:
    """Parses and validates inbound webhook bodies for one kind of sender."""

    name: str
    #: Schema of `config/sources/<id>.yaml`; subclass `connector.config.SourceConfigSchema`.
    config_schema: type[Schema]

    def parse(self, body: bytes, source_config: dict) -> list[InboundEvent]:
        """Return the events in `body`, or raise `PayloadError` naming every bad path."""
        raise NotImplementedError


class Action:
    """One thing a destination can do for a delivery."""

    name: str
    #: >1 lets the worker hand several due deliveries with one `batch_key` to one request.
    max_batch: int = 1

    def build_request(self, partner: dict, specs: list[dict]) -> OutboundRequest:
        raise NotImplementedError

    def interpret(self, partner: dict, specs: list[dict], result: HttpResult) -> list[Outcome] | None:
        """Partner-specific reading of an answer, one outcome per spec; None leaves the
        core's default (2xx delivered; 408/429/5xx/network retry; other 4xx dead)."""
        return None


class Destination:
    """A partner integration: its config schema, how events become deliveries, its actions."""

    name: str
    #: Schema of `config/partners/<id>.yaml`; subclass `connector.config.PartnerConfigSchema`.
    config_schema: type[Schema]
    actions: dict[str, Action]

    def plan(self, event: InboundEvent, partner: dict) -> list[PlannedDelivery]:
        raise NotImplementedError

    def error_details(self, result: HttpResult) -> tuple[str | None, str | None]:
        """The partner's own error code and message in a response, for the attempt log."""
        return None, None

    def sandbox_app(self):
        """A WSGI app imitating the partner's API for demos and tests, or None."""
        return None

    def verify(self, partner: dict, http, credentials) -> list[tuple[bool, str]]:
        """Live checks for `connector verify`: (ok, line) pairs."""
        return []


class Credentials:
    """Authenticates outbound requests for one configured key; shared across threads."""

    def apply(self, request: OutboundRequest) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        """Called once after a 401: drop any cached token so the next `apply` fetches anew."""

    def secrets(self) -> list[str]:
        """Values that must never be logged or stored (tokens included)."""
        return []


class KeyAlgorithm:
    """How outbound calls authenticate (`algorithm:` in `config/keys/<id>.yaml`)."""

    name: str
    #: Schema of the key file; subclass `connector.config.KeyConfigSchema`.
    config_schema: type[Schema]

    def credentials(self, key_config: dict, http) -> Credentials:
        raise NotImplementedError


@dataclass
class Plugin:
    """What one entry point in `connector.plugins` provides."""

    name: str
    sources: list[Source] = field(default_factory=list)
    destinations: list[Destination] = field(default_factory=list)
    key_algorithms: list[KeyAlgorithm] = field(default_factory=list)
