"""The typed records that flow between the core and plugins, with one vocabulary of delivery
states. Plugins import them from `connector.contract`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any


# -- one vocabulary ---------------------------------------------------------------------------
class State(StrEnum):
    """Where a delivery stands. The first three are pending, the rest finished."""

    QUEUED = "queued"
    RETRYING = "retrying"
    PAUSED = "paused"
    DELIVERED = "delivered"
    SKIPPED = "skipped"
    SUPERSEDED = "superseded"
    DEAD = "dead"


PENDING = (State.QUEUED, State.RETRYING, State.PAUSED)
FINISHED = (State.DELIVERED, State.SKIPPED, State.SUPERSEDED, State.DEAD)
STATES = PENDING + FINISHED


# -- records ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PartnerKeys:
    """`keys:` of a partner file: the partner_key_id each environment's calls use."""

    production: str | None = None
    staging: str | None = None

    def for_environment(self, environment: str) -> str | None:
        """The key of `environment` ("production", "staging"), None when none is configured."""
        return {"production": self.production, "staging": self.staging}.get(environment)

    def configured(self) -> dict[str, str]:
        """{environment: partner_key_id} of the environments that have a key."""
        return {env: key for env, key in (("production", self.production), ("staging", self.staging)) if key}


#: The fields every partner file has (`PartnerConfigSchema`); the rest are its plugin's.
_COMMON_PARTNER_FIELDS = frozenset({"id", "plugin", "enabled", "sources", "keys", "retry_schedule"})


@dataclass(frozen=True, eq=False)
class Partner:
    """One `config/partners/<id>.yaml` as its destination's `config_schema` loaded it: the
    fields every partner has, typed, and the plugin's own fields in `settings` (read-only)."""

    id: str
    plugin: str = ""
    sources: tuple[str, ...] = ()
    keys: PartnerKeys = PartnerKeys()
    enabled: bool = True
    retry_schedule: tuple[float, ...] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, partner_id: str, loaded: Mapping[str, Any]) -> Partner:
        """A partner from what its schema loaded (the common fields may be left out)."""
        keys = loaded.get("keys") or {}
        schedule = loaded.get("retry_schedule")
        return cls(
            id=partner_id,
            plugin=loaded.get("plugin", ""),
            sources=tuple(loaded.get("sources") or ()),
            keys=PartnerKeys(keys.get("production"), keys.get("staging")),
            enabled=loaded.get("enabled", True),
            retry_schedule=None if schedule is None else tuple(schedule),
            settings=MappingProxyType({k: v for k, v in loaded.items() if k not in _COMMON_PARTNER_FIELDS}),
        )

    def key_for(self, environment: str) -> str | None:
        return self.keys.for_environment(environment)


@dataclass(frozen=True)
class InboundEvent:
    """One accepted event, normalised by its source (email trimmed and lower-cased, a phone
    number as its digits with the country code), whether it was pushed to a webhook or pulled
    by a pull source. `email` and `phone` are the person's addresses the event carries (the
    store finds a person's events by them). `warnings` name what the source left out of it (an
    optional field that did not fit: "person.funnel: …"); they are stored with the event and
    shown beside it."""

    event_id: str
    type: str
    event_time: datetime
    environment: str
    email: str | None
    payload: dict[str, Any]
    warnings: tuple[str, ...] = ()
    phone: str | None = None


@dataclass(frozen=True)
class ReplayGuard:
    """What an inbound verifier may return: the request is accepted only if no request from
    its source used `key` before (a message id the signature covers). The store remembers the
    key until `expires_at` (UNIX seconds; when the signature stops being accepted anyway), in
    the transaction that stores the request's events; a key used again is refused with
    `refusal` (401)."""

    key: str
    expires_at: float
    refusal: str


@dataclass
class PlannedDelivery:
    """What one event asks of one partner. `spec` is JSON data the action needs at send time
    (no secrets). `contact_key` orders consent changes for one contact; None means unordered
    (facts such as activity, which no later event can contradict). A delivery with a
    `skip_reason` is recorded as skipped and never sent."""

    action: str
    spec: dict[str, Any]
    partner_key_id: str | None
    contact_key: str | None = None
    batch_key: str | None = None
    skip_reason: str | None = None


@dataclass
class Delivery:
    """A delivery claimed by a worker under a lease that runs until `leased_until`."""

    id: int
    event_pk: int
    partner_id: str
    action: str
    environment: str
    partner_key_id: str | None
    contact_key: str | None
    batch_key: str | None
    event_time: float
    spec: dict
    attempts: int
    state: str
    probe: bool = False  # sent to test a paused key or an open circuit
    leased_until: float = 0.0


@dataclass
class OutboundRequest:
    """A request a plugin builds; the core's HTTP module sends it and adds the credentials."""

    method: str
    url: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: The largest answer accepted. Deliveries keep the default (1 MiB); a pull source
    #: reading pages of reports may allow more.
    max_response_bytes: int = 1024 * 1024


@dataclass
class HttpResult:
    """What came back from one request (or why nothing did), with redacted records of both
    sides for the attempt log."""

    status: int | None
    latency_ms: float
    body: Any = None
    error: str | None = None  # "timeout: …", "connection: …", "token endpoint: …"
    retry_after: float | None = None
    request_record: dict = field(default_factory=dict)
    response_record: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Verdict:
    """An action's reading of one delivery's answer: delivered, skipped, retrying or dead."""

    state: State
    reason: str | None = None


@dataclass
class Attempt:
    """One try at a request (one delivery, or a batch sharing the request), as logged."""

    started_at: float
    status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    latency_ms: float | None = None
    request: dict | None = None
    response: dict | None = None
    #: A delivery's own request record instead of `request` (one of a batch never sent).
    request_by_delivery: dict[int, dict] = field(default_factory=dict)
    #: For a batch: each delivery's own part of the request body (storable text). Its record
    #: is `request` with this body: the whole batch's body is not kept once per delivery.
    body_by_delivery: dict[int, str] = field(default_factory=dict)
    sent: bool = False  # did a request leave (so the partner's circuit may count it)


@dataclass(frozen=True)
class Result:
    """Where one attempt left one delivery."""

    delivery_id: int
    state: State
    reason: str | None = None
    next_attempt_at: float | None = None
    count_attempt: bool = True


@dataclass(frozen=True)
class KeyScope:
    """A key whose credentials were refused: its deliveries wait (paused)."""

    partner_key_id: str

    def __str__(self) -> str:
        return f"key:{self.partner_key_id}"


@dataclass(frozen=True)
class CircuitScope:
    """A (partner, key) failing continuously: its circuit opens."""

    partner_id: str
    partner_key_id: str | None

    def __str__(self) -> str:
        return f"circuit:{self.partner_id}|{self.partner_key_id or '-'}"


Scope = KeyScope | CircuitScope


def parse_scope(stored: str) -> Scope:
    """The record behind a breaker row's `scope` column (the only place it is taken apart)."""
    kind, _, rest = stored.partition(":")
    if kind == "key":
        return KeyScope(rest)
    partner_id, _, key_id = rest.partition("|")
    return CircuitScope(partner_id, None if key_id == "-" else key_id)


@dataclass
class Poll:
    """One page of what a pull source read: its events and the cursor to resume after it.
    The core stores each page's events and cursor in one transaction, so a poll that dies
    half-way resumes after its last stored page."""

    events: list[InboundEvent]
    cursor: dict[str, Any]
    rows_read: int = 0
    #: What the poll has read so far, in one line of the source's words, for the Live View
    #: (the last page's line stands for the poll); None keeps the line of an earlier page.
    summary: str | None = None


# -- one person's consent story -----------------------------------------------------------------
@dataclass(frozen=True)
class ContactAddress:
    """Whom a consent story is about: an email address (normalised) or a phone number (its
    digits with the country code)."""

    kind: str  # "email" | "phone"
    value: str

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ContactState:
    """What a partner holds now for one address in one place (a list), read live from its API
    by `Destination.read_contact`. `contact_key` is the key the destination's deliveries to that
    place carry (so the story puts the partner's answer beside the connector's last word);
    `state` is the partner's own word ("Subscribed", "not on the list"), None when it could not
    be read (`error` says why); `facts` are dates and flags worth showing, as the partner gave
    them; `request` is the redacted request that read it ("GET https://…")."""

    place: str
    contact_key: str | None
    state: str | None
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    request: str | None = None
    #: Whether the partner would reach the person there now (None: cannot tell), so the story
    #: can say whether it agrees with the connector's last word there.
    subscribed: bool | None = None
