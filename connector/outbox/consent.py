"""The consent-order rule, written once as one pure function: `decide(stored, arriving, at)`.
Intake (new deliveries), claims (a candidate about to be sent) and replay (a finished delivery
queued again) only read a contact's changes (`contacts.py`) and apply the decision.

For one contact (a delivery's `contact_key`: partner, environment, list, email), changes are
ordered by (event_time, delivery id): on equal times the later arrival wins, except against a
contact's mark whose delivery was purged, which wins every tie (below). A change is sent
only while no *live* change for that contact (pending, or already delivered) is newer; the older
one is `superseded` and never sent, so a late opt-in cannot undo a newer opt-out. Deliveries
without a contact key (facts, not consent) are never ordered.

Each contact's newest change ever queued is also remembered in `consent_marks`, which purge
never deletes: the mark counts as a live change, so an event older than what the contact said
last never changes the partner, even once every delivery that said it has been purged (a
captured request sent again much later). On equal times such a purged mark beats any arrival:
once its id is forgotten a captured request is a new arrival, and the later-arrival rule would
let an opt-in replayed after its tied opt-out resubscribe the contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connector.contract import PENDING, State

#: Changes that still count for a contact: pending ones and delivered ones.
LIVE = (*PENDING, State.DELIVERED)
#: A purged mark's place among equal times: after every stored id and every arriving stamp
#: (intake numbers a request's new deliveries from 2**62).
_AFTER_EVERY_ARRIVAL = 2**63


class Reason(StrEnum):
    """Why a change was superseded, as its delivery records it."""

    #: A newer change for the contact is live: queued, retrying, paused or delivered.
    NEWER_LIVE = "a newer event for this contact is queued or delivered"
    #: The contact's mark is newer: a change received before, remembered after its purge.
    NEWER_REMEMBERED = "a newer event for this contact was received before (remembered after its purge)"
    #: A pending change that a newer one, arrived or claimed since, takes the place of.
    NEWER_ARRIVED = "a newer event for this contact arrived"


@dataclass(frozen=True)
class Change:
    """One live delivery for a contact, as the rule sees it."""

    id: int
    contact_key: str
    event_time: float
    state: str
    lease_expires_at: float | None = None
    #: A contact's mark: its newest change ever queued, which may be purged since.
    remembered: bool = False
    #: The mark's delivery is gone from the store: it wins every tie (see the module's doc).
    purged: bool = False

    @property
    def stamp(self) -> tuple[float, int]:
        return (self.event_time, _AFTER_EVERY_ARRIVAL if self.purged else self.id)

    def in_flight(self, at: float) -> bool:
        """Claimed by a worker whose lease still runs: it may be on the wire right now."""
        return (
            self.state != State.DELIVERED
            and self.lease_expires_at is not None
            and self.lease_expires_at >= at
        )

    def supersedable(self, at: float) -> bool:
        return self.state != State.DELIVERED and not self.in_flight(at)


@dataclass(frozen=True)
class Superseded:
    """A change that loses: `id` is superseded by the change `by`, for `reason`."""

    id: int
    by: int
    reason: Reason


@dataclass(frozen=True)
class Decision:
    """The rule's word on one contact's arriving changes."""

    #: The arriving change that goes (is queued, or sent by a claim), if any does.
    goes: Change | None = None
    #: Every change that loses now: arriving ones a newer change beats, and pending stored ones
    #: older than the one that goes (none in flight: one on the wire is left to finish).
    superseded: tuple[Superseded, ...] = ()
    #: A stored change of the contact is in flight: the one that goes must not be sent yet.
    waits: bool = False


def decide(stored: list[Change], arriving: list[Change], at: float) -> Decision:
    """The consent rule for one contact. `stored`: its live changes and its mark, as read from
    the store; `arriving`: the changes to decide (a request's new ones, a claim's candidate,
    a replayed one; any among `stored` count once). The newest of all goes if it is arriving;
    every other arriving change is superseded by it."""
    arriving_ids = {change.id for change in arriving}
    others = [change for change in stored if change.id not in arriving_ids]
    newest = max([*others, *arriving], key=lambda change: change.stamp)
    reason = Reason.NEWER_REMEMBERED if newest.remembered else Reason.NEWER_LIVE
    superseded = [Superseded(change.id, newest.id, reason) for change in arriving if change.id != newest.id]
    if newest.id not in arriving_ids:
        return Decision(superseded=tuple(superseded))
    superseded += [
        Superseded(change.id, newest.id, Reason.NEWER_ARRIVED)
        for change in others
        if change.stamp < newest.stamp and change.supersedable(at)
    ]
    return Decision(newest, tuple(superseded), waits=any(change.in_flight(at) for change in others))
