"""The one module of the core a plugin imports (as a pytest plugin imports pluggy's hookspec and
nothing else of pytest): the contract (`connector.contract`: what a plugin provides, the typed
records that flow between plugin and core, the base config schemas) and the few helpers plugins
share. A plugin's `testing` module and its sandbox may also use `connector.testing`. Anything
else of the core may change without notice; tests/test_architecture.py holds plugins to this.

Why a module beside the contract and not the contract widened: the contract is what the core
relies on (the registry checks plugins against it); this is the toolkit around it, and keeping
the two apart keeps the contract short enough to read in one sitting.
"""

from __future__ import annotations

from connector import jsontext, transport
from connector.contract import (
    FINISHED,
    MAX_EMAIL,
    MAX_REQUESTS_PER_ATTEMPT,
    PENDING,
    STATES,
    Action,
    Attempt,
    Configuration,
    ContactAddress,
    ContactState,
    Credentials,
    CredentialsFor,
    Delivery,
    Destination,
    Duration,
    Email,
    Http,
    HttpResult,
    InboundAuthSchema,
    InboundEvent,
    InboundVerifier,
    InvalidCredentials,
    KeyAlgorithm,
    KeyConfigSchema,
    OutboundRequest,
    OutboundUrl,
    PageBudgetSpent,
    Partner,
    PartnerConfigSchema,
    PartnerKeys,
    PartnerKeysSchema,
    PayloadError,
    PlannedDelivery,
    Plugin,
    Poll,
    PollFailed,
    PullSource,
    PullSourceConfigSchema,
    ReplayGuard,
    Source,
    SourceConfigSchema,
    State,
    StrictSchema,
    Unauthorized,
    Verdict,
    normalise_email,
    secret_field,
    valid_email,
)
from connector.fields import a_phone_number, no_control_characters, phone_digits, text_up_to
from connector.inbound_json import parse_json
from connector.payloads import check_event_time, load_each, plain_loader, problems_at
from connector.services import Redacts
from connector.storable import CODE_KEYS, MAX_CODE, MAX_MESSAGE, MESSAGE_KEYS, cut, error_code, readable
from connector.verifiers import any_equal, hmac_hex, short_hmac_secrets

__all__ = [
    # the contract: what a plugin provides
    "Plugin",
    "Source",
    "PullSource",
    "Destination",
    "Action",
    "KeyAlgorithm",
    "Credentials",
    "InboundVerifier",
    "MAX_REQUESTS_PER_ATTEMPT",
    # what the core hands to plugins
    "Partner",
    "PartnerKeys",
    "Http",
    "Redacts",
    "CredentialsFor",
    "Configuration",
    # records
    "State",
    "PENDING",
    "FINISHED",
    "STATES",
    "InboundEvent",
    "PlannedDelivery",
    "Delivery",
    "OutboundRequest",
    "HttpResult",
    "Verdict",
    "Attempt",
    "Poll",
    "ReplayGuard",
    "ContactAddress",
    "ContactState",
    # errors a plugin raises
    "PayloadError",
    "Unauthorized",
    "PollFailed",
    "PageBudgetSpent",
    "InvalidCredentials",
    # config schemas and field types
    "StrictSchema",
    "KeyConfigSchema",
    "InboundAuthSchema",
    "SourceConfigSchema",
    "PullSourceConfigSchema",
    "PartnerConfigSchema",
    "PartnerKeysSchema",
    "Duration",
    "Email",
    "OutboundUrl",
    "secret_field",
    "MAX_EMAIL",
    "normalise_email",
    "valid_email",
    "a_phone_number",
    "phone_digits",
    "no_control_characters",
    "text_up_to",
    # reading inbound payloads
    "parse_json",
    "check_event_time",
    "load_each",
    "plain_loader",
    "problems_at",
    # signatures
    "any_equal",
    "hmac_hex",
    "short_hmac_secrets",
    # partner answers as storable text
    "CODE_KEYS",
    "MESSAGE_KEYS",
    "MAX_CODE",
    "MAX_MESSAGE",
    "cut",
    "error_code",
    "readable",
    # request bodies as the core writes them
    "body_bytes",
    # a plugin's own sessions (an OAuth token endpoint) and commands
    "bounded_session",
    "time_left",
    "redirect_refused",
    "count_token_fetch",
    "serve",
]


def body_bytes(value) -> int:
    """The bytes `value` takes in a request body, written as the core's client writes an
    `OutboundRequest.json` (compact UTF-8 JSON): for limits on a body's or an item's size."""
    return len(jsontext.body(value))


def bounded_session(session, timeout: float):
    """Make a plugin's own `requests.Session` (authlib's `OAuth2Session` for a token endpoint)
    send as the core does: one deadline per request, shared with the delivery's attempt when
    called inside one, a 1 MiB answer, no redirect followed, no proxy variables read."""
    return transport.bounded(session, timeout)


def time_left(seconds: float) -> float:
    """`seconds`, or less when the current attempt's deadline ends sooner (pass it as the
    `timeout` of a call made with a bounded session)."""
    return transport.time_left(seconds)


def redirect_refused(response) -> str:
    """Why a 3xx answer fails: "answered a redirect (HTTP 302 to host); not followed"."""
    return transport.redirect_refused(response)


def count_token_fetch(partner_key_id: str, result: str) -> None:
    """Count one token fetch of a key in `connector_token_fetches_total` (`result`: ok,
    refused or error)."""
    from connector import metrics  # the store-reading metrics module, only when a token is fetched

    metrics.TOKEN_FETCHES.labels(key=partner_key_id, result=result).inc()


def serve(app, host: str, port: int, threads: int, ready_message: str) -> None:
    """Serve a plugin's WSGI app from a command it adds (a sandbox): one gunicorn process with
    `threads` threads and keep-alive; prints `ready_message` once it listens."""
    from connector.cli.serving import serve as serve_with_gunicorn  # gunicorn only for commands

    serve_with_gunicorn(app, host, port, threads, ready_message)
