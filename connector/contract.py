"""The plugin contract: what a plugin provides and the typed records that flow between them.

A plugin package exposes one `Plugin` object through the entry-point group `connector.plugins`.
It may provide push sources (parse inbound webhooks), pull sources (read a partner's API on a
schedule), destinations (plan deliveries and build their requests), key algorithms (how outbound
calls authenticate) and inbound verifiers (how inbound webhooks authenticate). The core never
names a partner: it asks the registry for what a config file names and talks to it through the
classes below. Config schemas subclass the base schemas (`connector.schemas`, re-exported
here; `connector.fields` holds the field types they are built from). Plugins import all of
it, and the helpers they share, from `connector.plugin_api`.

An event walks one way: web → source → `InboundEvent` → destination.plan → `PlannedDelivery` →
outbox → `Delivery` (claimed) → action.build_request → `OutboundRequest` → http → `HttpResult`
→ action.interpret → `Verdict` → `Result` + `Attempt` recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connector.fields import (
    MAX_EMAIL,
    Duration,
    Email,
    OutboundUrl,
    StrictSchema,
    normalise_email,
    secret_field,
    valid_email,
)
from connector.records import (
    FINISHED,
    PENDING,
    STATES,
    Attempt,
    CircuitScope,
    ContactAddress,
    ContactState,
    Delivery,
    HttpResult,
    InboundEvent,
    KeyScope,
    OutboundRequest,
    Partner,
    PartnerKeys,
    PlannedDelivery,
    Poll,
    ReplayGuard,
    Result,
    Scope,
    State,
    Verdict,
    parse_scope,
)
from connector.schemas import (
    InboundAuthSchema,
    KeyConfigSchema,
    PartnerConfigSchema,
    PartnerKeysSchema,
    PullSourceConfigSchema,
    SourceConfigSchema,
)
from connector.services import Configuration, CredentialsFor, Http

if TYPE_CHECKING:
    from marshmallow import Schema

# Records and field types re-exported, so a plugin imports the contract and nothing else.
__all__ = [
    "State",
    "PENDING",
    "FINISHED",
    "STATES",
    "InboundEvent",
    "PlannedDelivery",
    "Partner",
    "PartnerKeys",
    "Delivery",
    "OutboundRequest",
    "HttpResult",
    "Verdict",
    "Attempt",
    "Result",
    "KeyScope",
    "CircuitScope",
    "Scope",
    "parse_scope",
    "Poll",
    "ReplayGuard",
    "ContactAddress",
    "ContactState",
    "MAX_EMAIL",
    "Duration",
    "Email",
    "OutboundUrl",
    "StrictSchema",
    "normalise_email",
    "secret_field",
    "valid_email",
    "KeyConfigSchema",
    "InboundAuthSchema",
    "SourceConfigSchema",
    "PullSourceConfigSchema",
    "PartnerKeysSchema",
    "PartnerConfigSchema",
]


# -- errors -----------------------------------------------------------------------------------
class PayloadError(Exception):
    """An inbound payload is invalid. `problems` maps a payload path ("[3].person.email")
    to a list of messages; they go back to the sender as they are."""

    def __init__(self, problems: dict[str, list[str]]):
        super().__init__("; ".join(f"{p}: {', '.join(m)}" for p, m in problems.items()))
        self.problems = problems


class Unauthorized(Exception):
    """An inbound request does not carry valid credentials for its source (401)."""


class PollFailed(Exception):
    """A poll could not finish (the partner is down, or asked us to slow down). Pages already
    stored stay stored; the next poll resumes from the last cursor, not before
    `retry_after` seconds (when the partner said so) nor before the next interval."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PageBudgetSpent(Exception):
    """Raised by the `http` a poll was given once the poll has sent `max_pages_per_poll`
    requests (pages read). Let it propagate: the core ends the poll early (not a failure),
    every page stored so far stays, and the next poll goes on from the last stored cursor, so
    a partner's endless cursors cannot hold a worker."""


class InvalidCredentials(Exception):
    """The partner's token endpoint refused the key itself (not a transient failure).
    Deliveries on that key are paused, never burned into `dead`."""


# -- what plugins provide ---------------------------------------------------------------------
#: How many requests one attempt of an action may send (`Action.exchange`).
MAX_REQUESTS_PER_ATTEMPT = 3


class Source:
    """Parses and validates inbound webhook bodies for one kind of sender."""

    name: str
    #: Schema of `config/sources/<id>.yaml`; subclass `SourceConfigSchema`.
    config_schema: type[Schema]

    #: Routes under `/webhooks/<source_id>/` shaped like the sender's own API, each path
    #: (e.g. "v1/batch") naming a call kind for `parse_call`; empty: no such routes (404).
    calls: Mapping[str, str] = {}
    #: The status and JSON body that acknowledge a committed call on those routes.
    call_accepted: tuple[int, dict] = (202, {"accepted": True})
    #: For /openapi.json, generated from them: the marshmallow schema one event of a webhook
    #: body is loaded with (None: described as any JSON), how many events a body may carry
    #: (more than 1: an array of them too) and the field of an object holding that array
    #: ({"batch": [...]}), each call kind's schema, and the schema of `call_error`'s answers.
    event_schema: type[Schema] | None = None
    max_events: int = 1
    batch_field: str | None = None
    call_schemas: Mapping[str, type[Schema]] = {}
    call_error_schema: type[Schema] | None = None

    def parse(self, body: bytes, source_config: Mapping[str, Any]) -> list[InboundEvent]:
        """Return the events in `body`, or raise `PayloadError` naming every bad path."""
        raise NotImplementedError

    def parse_call(self, kind: str, body: bytes, source_config: Mapping[str, Any]) -> list[InboundEvent]:
        """The events of one call of `kind` (a value of `calls`), as `parse` does."""
        raise NotImplementedError

    def call_error(self, status: int, message: str, problems: dict[str, list[str]] | None = None) -> dict:
        """The JSON body refusing a call on those routes, in the sender's own error shape."""
        return {"error": message, **({"problems": problems} if problems else {})}


class PullSource:
    """Reads events from a partner's API on a schedule (one poller per source across all
    workers). The cursor is JSON the source alone understands; the core stores it."""

    name: str
    #: Schema of `config/sources/<id>.yaml`; subclass `PullSourceConfigSchema`.
    config_schema: type[Schema]

    def poll(
        self,
        source_config: Mapping[str, Any],
        cursor: dict | None,
        since: float,
        http: Http,
        credentials: CredentialsFor,
    ) -> Iterable[Poll]:
        """Read what happened after `cursor` (None on the first poll: from `since`, a UNIX
        time), yielding pages. `http` is the core's HttpClient (its `send` raises
        PageBudgetSpent past the source's `max_pages_per_poll`); `credentials(partner_key_id)`
        gives a key's Credentials. Raise `PollFailed` (or anything) to fail the poll; it is
        tried again at the next interval from the last stored cursor."""
        raise NotImplementedError

    def check(self, source_config: Mapping[str, Any], config: Configuration) -> list[str]:
        """Cross-file problems (e.g. a key of the wrong algorithm), as `field: message`."""
        return []

    def verify(
        self, source_config: Mapping[str, Any], http: Http, credentials: CredentialsFor
    ) -> list[tuple[bool, str]]:
        """Live checks for `connector verify <source_id>`: (ok, line) pairs."""
        return []


class Action:
    """One thing a destination can do for a delivery."""

    name: str
    #: >1 lets the worker hand several due deliveries with one `batch_key` to one request.
    max_batch: int = 1
    #: Its deliveries subscribe or unsubscribe a person: they make up a consent story.
    consent: bool = False

    def build_request(self, partner: Partner, specs: list[dict]) -> OutboundRequest:
        raise NotImplementedError

    def interpret(self, partner: Partner, specs: list[dict], result: HttpResult) -> list[Verdict] | None:
        """Partner-specific reading of an answer, one verdict per spec; None leaves the
        core's default (2xx delivered; 408/429/5xx/network retrying; other 4xx dead)."""
        return None

    def exchange(
        self, partner: Partner, specs: list[dict], send: Callable[[OutboundRequest], HttpResult]
    ) -> list[Verdict] | None:
        """The requests of one attempt, returning `interpret`'s kind of answer. By default one
        request: `build_request`, `send`, `interpret`. Override for a short conversation (read
        a record, then write): `send` goes through the core (credentials, timeouts, redaction)
        at most MAX_REQUESTS_PER_ATTEMPT times; the last answer is the attempt's, the earlier
        ones are logged with it, and None leaves the core's default reading of the last."""
        return self.interpret(partner, specs, send(self.build_request(partner, specs)))

    def notes(self, partner: Partner, spec: dict) -> list[str]:
        """What `connector preview` should say about this delivery beyond its first request
        (e.g. a follow-up request some answers lead to)."""
        return []

    def batches(self, partner: Partner, specs: list[dict]) -> list[list[int]]:
        """How due deliveries sharing a batch key split into requests (indexes into `specs`,
        every index once): by default chunks of `max_batch`. Override for size limits."""
        return [
            list(range(i, min(i + self.max_batch, len(specs)))) for i in range(0, len(specs), self.max_batch)
        ]

    def refuse(self, partner: Partner, spec: dict) -> str | None:
        """Why this delivery can never be sent (it goes dead at once, the rest of its batch
        is still sent), or None."""
        return None

    def part_of_request(self, partner: Partner, spec: dict) -> Any:
        """One delivery's share of a batch request body, kept in its attempt log."""
        return self.build_request(partner, [spec]).json

    def describe(self, spec: dict) -> tuple[str, str] | None:
        """Where a delivery changes what, in an operator's words, for a person's consent story:
        (place, change), e.g. ("email list 12345", "subscribe"). A consent action's change is
        "subscribe" or "unsubscribe". None: the action's name for both."""
        return None


class Destination:
    """A partner integration: its config schema, how events become deliveries, its actions."""

    name: str
    #: Schema of `config/partners/<id>.yaml`; subclass `PartnerConfigSchema`.
    config_schema: type[Schema]
    actions: dict[str, Action]

    def plan(self, event: InboundEvent, partner: Partner) -> list[PlannedDelivery]:
        raise NotImplementedError

    def error_details(self, result: HttpResult) -> tuple[str | None, str | None]:
        """The partner's own error code and message in a response, for the attempt log."""
        return None, None

    def verify(self, partner: Partner, http: Http, credentials: CredentialsFor) -> list[tuple[bool, str]]:
        """Live checks for `connector verify`: (ok, line) pairs."""
        return []

    def check(self, partner: Partner, config: Configuration) -> list[str]:
        """Cross-file problems (e.g. a source it must not be fed by), as `field: message`."""
        return []

    def read_contact(
        self, partner: Partner, address: ContactAddress, http: Http, credentials: CredentialsFor
    ) -> list[ContactState]:
        """What the partner holds now for `address` in each place this partner's deliveries
        change (read live, read-only, for a person's consent story); [] when it keeps nothing
        the connector changes for such an address. A place that cannot be read is a
        ContactState with `error` set, never an exception."""
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
    #: Schema of the key file; subclass `KeyConfigSchema`.
    config_schema: type[Schema]

    def credentials(self, key_config: Mapping[str, Any], http: Http) -> Credentials:
        raise NotImplementedError

    def shown_headers(self, key_config: Mapping[str, Any]) -> dict[str, str]:
        """The headers `apply` adds, with every secret part as *** (for `connector preview`)."""
        return {"Authorization": "***"}


class InboundVerifier:
    """How a push source's requests authenticate (`auth.algorithm` in its config file)."""

    name: str
    #: For /openapi.json: an OpenAPI Security Scheme object naming the header (or HTTP scheme)
    #: the credential travels in. Empty: described as a credential of unknown shape.
    security_scheme: Mapping = {}

    def verify(self, secrets: list[str], headers: Mapping[str, str], body: bytes) -> ReplayGuard | None:
        """Raise `Unauthorized` unless the request is signed or carries a valid secret.
        Signatures are over the raw body bytes, compared in constant time. The keys a
        source's `auth:` holds beside algorithm and secrets (its config schema allows them)
        come as keyword arguments: a verifier with options takes them with defaults. Return a
        `ReplayGuard` to have the request accepted only once (a message id its signature
        covers), else None."""
        raise NotImplementedError

    def check_secrets(self, secrets: list[str]) -> dict[int, str]:
        """Problems with configured secrets, by index (shown as `auth.secrets.<i>`); an HMAC
        key under 16 bytes is one (`connector.verifiers.short_hmac_secrets`)."""
        return {}


@dataclass
class Plugin:
    """What one entry point in `connector.plugins` provides."""

    name: str
    sources: list[Source] = field(default_factory=list)
    pull_sources: list[PullSource] = field(default_factory=list)
    destinations: list[Destination] = field(default_factory=list)
    key_algorithms: list[KeyAlgorithm] = field(default_factory=list)
    verifiers: list[InboundVerifier] = field(default_factory=list)
