"""One claimed group (one delivery, or a batch sharing one request) from claim to recorded
result, inside one boundary: whatever raises at any step, the group is settled — recorded as
a failed attempt on the retry schedule, or given back untouched when nothing was tried — and
never left leased until its lease runs out.

Cross-cutting concerns (circuits, paused keys, metrics, logs) sit around the attempt here,
not inside plugins: plugins build requests and read answers; the core sends and decides."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from queue import SimpleQueue
from typing import Any

from connector import jsontext, metrics, storable
from connector.contract import (
    MAX_REQUESTS_PER_ATTEMPT,
    Attempt,
    CircuitScope,
    Delivery,
    HttpResult,
    InvalidCredentials,
    KeyScope,
    OutboundRequest,
    Result,
    Scope,
    State,
    Verdict,
)
from connector.delivery.outcomes import default_verdict, results_for
from connector.delivery.summary import SettledLog
from connector.outbox import breakers, claims
from connector.outbox.engine import now

log = logging.getLogger("connector.worker")


def scopes_of(delivery: Delivery) -> tuple[CircuitScope, KeyScope]:
    return breakers.scopes_of(delivery.partner_id, delivery.partner_key_id)


class WireSlots:
    """At most `size` requests on the wire: `with slots:` waits for one. A queue of tokens,
    taken and given back in C: threading.Semaphore's Python-level condition cost each request
    several microseconds more, and more still with dozens of threads waiting on it."""

    def __init__(self, size: int):
        self._tokens: SimpleQueue[None] = SimpleQueue()
        for _ in range(size):
            self._tokens.put(None)

    def __enter__(self) -> None:
        self._tokens.get()

    def __exit__(self, *exc) -> None:
        self._tokens.put(None)


class _LeaseRunningOut(Exception):
    """The wire's turn came so late that the lease could run out during the request."""


@dataclass
class Breakers:
    """What this worker knows of the breaker table since its last claim round."""

    policy: breakers.BreakerPolicy
    known: set[Scope] = field(default_factory=set)  # every row: a success resets them
    open: set[Scope] = field(default_factory=set)  # paused keys and open circuits

    def refresh(self, states: dict[Scope, str]) -> None:
        self.known = set(states)
        self.open = {scope for scope, state in states.items() if state != "closed"}


class Boundary:
    """Settles claimed groups for one worker. `record(results, attempt)` stores them (at
    once, or through the Recorder thread)."""

    def __init__(
        self,
        runtime,
        owner: str,
        settings: dict,
        known: Breakers,
        record: Callable[[list[Result], Attempt], None],
        settled: SettledLog | None = None,
    ):
        self.runtime = runtime
        self.owner = owner
        self.settings = settings
        self.breakers = known
        self.record = record
        self.settled = settled or SettledLog()
        #: Each partner's (and outcome's) metric, looked up once: `labels()` takes the metric's
        #: lock and builds its key at every call.
        self._latency: dict[str, Any] = {}
        self._attempts: dict[tuple[str, str], Any] = {}
        #: At most `threads` requests on the wire at once, however many groups are under way.
        self.in_flight = WireSlots(settings["threads"])

    def deliver(self, group: list[Delivery]) -> None:
        first = group[0]
        started_at = now()
        if set(scopes_of(first)) & self.breakers.open and not first.probe:
            # Claimed ahead, but the circuit opened (or the key paused) since: not a request
            # more to a failing partner; the deliveries wait for the probe's verdict.
            claims.release(self.runtime.engine, self.owner, [d.id for d in group])
            return
        if started_at > first.leased_until - 2 * self.settings["http_timeout"]:
            # Waited so long for a thread that the lease could run out mid-request and let
            # another worker (or a newer change for the contact) go at the same time.
            claims.release(self.runtime.engine, self.owner, [d.id for d in group])
            return
        attempt = Attempt(started_at=started_at)
        result: HttpResult | None = None
        try:
            verdicts, result = self._attempt(group, attempt)
        except InvalidCredentials as exc:
            self._pause_key(group, str(exc), started_at)
            return
        except _LeaseRunningOut:  # nothing sent: back to the queue untouched, as above
            claims.release(self.runtime.engine, self.owner, [d.id for d in group])
            return
        except Exception as exc:  # a bug (ours or a plugin's) must not strand the group
            log.exception(
                "delivery %s: %s at %s",
                first.id,
                type(exc).__name__,
                "sending" if attempt.sent else "preparing",
            )
            attempt.error_code = "INTERNAL_ERROR"
            attempt.error_message = self.runtime.redactor.text(f"{type(exc).__name__}: {exc}")[:1000]
            verdicts = [Verdict(State.RETRYING, f"internal error: {type(exc).__name__}")] * len(group)
            result = None
        self._settle(group, verdicts, attempt, result)

    # -- the attempt itself: every step may raise ------------------------------------------
    def _attempt(self, group: list[Delivery], attempt: Attempt) -> tuple[list[Verdict], HttpResult | None]:
        first = group[0]
        partner = self.runtime.config.partners.get(first.partner_id)
        if partner is None or not partner.enabled:
            return [Verdict(State.DEAD, "partner is no longer configured or enabled")] * len(group), None
        destination = self.runtime.destination(partner)
        action = destination.actions[first.action]
        refused = {
            i: reason for i, d in enumerate(group) if (reason := action.refuse(partner, d.spec)) is not None
        }
        if refused:  # never sent; whatever is left of the batch goes on without them
            rest = [d for i, d in enumerate(group) if i not in refused]
            verdicts, result = self._attempt(rest, attempt) if rest else ([], None)
            attempt.request_by_delivery.update(
                {group[i].id: storable.record({"not sent": reason}) for i, reason in refused.items()}
            )
            sent = iter(verdicts)
            return [
                Verdict(State.DEAD, refused[i]) if i in refused else next(sent) for i in range(len(group))
            ], result
        specs = [d.spec for d in group]
        credentials = self.runtime.credentials(first.partner_key_id) if first.partner_key_id else None
        answers: list[HttpResult] = []

        def send(request: OutboundRequest) -> HttpResult:
            if len(answers) >= MAX_REQUESTS_PER_ATTEMPT:
                raise RuntimeError(f"{first.action} asked for more than {MAX_REQUESTS_PER_ATTEMPT} requests")
            with self.in_flight:
                # Checked once on the wire's turn: a slot may have been long in coming.
                if now() > first.leased_until - self.settings["http_timeout"] * (1 if answers else 2):
                    if not answers:
                        raise _LeaseRunningOut
                    raise RuntimeError(
                        "the lease could run out during a follow-up request; tried again later"
                    )
                attempt.sent = True
                answers.append(self.runtime.http.send(request, credentials))
            return answers[-1]

        verdicts = action.exchange(partner, specs, send)
        if not answers:
            raise ValueError(f"{first.action} sent no request")
        result = answers[-1]
        attempt.status = result.status
        attempt.latency_ms = round(sum(a.latency_ms for a in answers), 1)
        attempt.request = result.request_record or None
        attempt.response = result.response_record or None
        if len(answers) > 1 and attempt.request is not None:
            # The answers that led to the last request, so the attempt log tells the whole story.
            attempt.request = {
                **attempt.request,
                "before": [
                    {"request": a.request_record, "response": a.response_record} for a in answers[:-1]
                ],
            }
        if verdicts is None:
            verdicts = [default_verdict(result)] * len(group)
        if len(verdicts) != len(group):
            raise ValueError(f"{first.action} gave {len(verdicts)} verdicts for {len(group)} deliveries")
        code, message = destination.error_details(result)
        attempt.error_code, attempt.error_message = self._partner_error(code, message, result.error)
        if len(group) > 1 and result.request_record:
            # Each delivery of a batch keeps its own part of the body, not 500 copies of all.
            attempt.request = {**(attempt.request or {}), "batch_size": len(group)}
            redact = self.runtime.redactor.text
            # JSON text holds no NUL and no lone surrogate (both escaped): only its length
            # needs bounding before it is stored.
            attempt.body_by_delivery = {
                d.id: storable.cut(
                    redact(jsontext.dumps(action.part_of_request(partner, d.spec))), storable.MAX_FIELD
                )
                for d in group
            }
        return verdicts, result

    def _partner_error(self, code, message, fallback: str | None) -> tuple[str | None, str | None]:
        """A plugin's reading of the partner's error code and message (any shape: an object,
        a list, a number) as redacted text within the attempt log's limits. Redacted whole,
        then cut: a cut must never leave part of a secret behind."""
        redact = self.runtime.redactor.text
        code_text = storable.readable(code, storable.CODE_KEYS)
        message_text = storable.readable(message, storable.MESSAGE_KEYS) or fallback
        return (
            storable.error_code(redact(code_text)) if code_text else None,
            storable.error_message(redact(message_text)) if message_text else None,
        )

    # -- settling ----------------------------------------------------------------------------
    def _record(self, results: list[Result], attempt: Attempt) -> None:
        """Hand the results over with every string of the attempt storable and bounded, whatever
        a plugin or a partner put there: nothing an answer holds may stop the recording. (Each
        delivery's own record or part of a batch is made storable where it is built.)"""
        attempt.status = attempt.status if type(attempt.status) is int else None
        attempt.error_code = storable.error_code(attempt.error_code)
        attempt.error_message = storable.error_message(attempt.error_message)
        attempt.request = storable.record(attempt.request)
        attempt.response = storable.record(attempt.response)
        self.record(
            [r if r.reason is None else replace(r, reason=storable.text(r.reason)) for r in results], attempt
        )

    def _settle(self, group, verdicts, attempt: Attempt, result: HttpResult | None) -> None:
        schedule = self.runtime.config.retry_schedule(group[0].partner_id)
        retry_after = result.retry_after if result is not None else None
        try:
            results = results_for(group, verdicts, schedule, retry_after, now())
        except ValueError as exc:  # a verdict an action may not give
            attempt.error_code = "INTERNAL_ERROR"
            attempt.error_message = str(exc)
            result = None
            results = results_for(
                group, [Verdict(State.RETRYING, "internal error")] * len(group), schedule, None, now()
            )
        self._record(results, attempt)
        try:
            self._observe(group, results, attempt)
            # Only the partner's own answers move its breakers: a failure of ours (result is
            # None) says nothing about the partner.
            if result is not None:
                self._move_breakers(group[0], verdicts, results, attempt)
        except Exception:  # the results are recorded; metrics or breakers may lag a round
            log.exception("after delivery %s", group[0].id)

    def _observe(self, group, results: list[Result], attempt: Attempt) -> None:
        partner_id = group[0].partner_id
        if attempt.request and attempt.latency_ms is not None:
            latency = self._latency.get(partner_id)
            if latency is None:
                latency = self._latency[partner_id] = metrics.ATTEMPT_LATENCY.labels(partner=partner_id)
            latency.observe(attempt.latency_ms / 1000)
        outcomes = Counter(r.state for r in results)
        for state, count in outcomes.items():
            counted = self._attempts.get((partner_id, state))
            if counted is None:
                counted = self._attempts[partner_id, state] = metrics.ATTEMPTS.labels(
                    partner=partner_id, outcome=state
                )
            counted.inc(count)
        self.settled.add(partner_id, outcomes, requests=1 if attempt.request else 0)
        if not log.isEnabledFor(logging.DEBUG):
            return
        for delivery, r in zip(group, results, strict=True):
            log.debug(
                "delivery %s to %s, attempt %d: %s%s%s%s",
                r.delivery_id,
                partner_id,
                delivery.attempts + 1,
                r.state,
                f", HTTP {attempt.status}" if attempt.status else "",
                f", {attempt.latency_ms:.0f} ms" if attempt.latency_ms is not None else "",
                f" ({r.reason})" if r.reason else "",
            )

    def _move_breakers(
        self, first: Delivery, verdicts: list[Verdict], results: list[Result], attempt: Attempt
    ) -> None:
        """A transient failure of the whole request counts towards opening the circuit; any
        success closes the circuit and the key's pause."""
        engine, policy = self.runtime.engine, self.breakers.policy
        circuit, key = scopes_of(first)
        transient = any(v.state == State.RETRYING for v in verdicts)
        if transient and all(r.state in (State.RETRYING, State.DEAD) for r in results):
            if breakers.trip(
                engine,
                circuit,
                "open",
                attempt.error_message or "failing",
                threshold=policy.threshold,
                policy=policy,
            ):
                self.breakers.open.add(circuit)
                log.warning("circuit open for %s", circuit)
            return
        scopes = [s for s in (circuit, key) if s in self.breakers.known]
        if scopes:
            breakers.reset(engine, scopes)
            self.breakers.known -= set(scopes)
            self.breakers.open -= set(scopes)

    def _pause_key(self, group: list[Delivery], reason: str, started_at: float) -> None:
        key_id = group[0].partner_key_id
        assert key_id is not None  # only a key's credentials can be refused
        refusal = self.runtime.redactor.text(f"credentials refused for key {key_id}: {reason}")
        message = storable.error_message(refusal) or refusal
        self._record(
            [Result(d.id, State.PAUSED, message, now(), count_attempt=False) for d in group],
            Attempt(started_at, error_code="INVALID_CREDENTIALS", error_message=message),
        )
        breakers.trip(self.runtime.engine, KeyScope(key_id), "paused", message, policy=self.breakers.policy)
        self.breakers.open.add(KeyScope(key_id))
        log.warning("key %s paused: %s", key_id, reason)
