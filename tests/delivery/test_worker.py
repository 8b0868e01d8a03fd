"""Retry timing and the worker's refusal to send on a lease that may run out mid-request."""

import dataclasses

from connector.delivery.outcomes import retry_delay
from connector.delivery.worker import Worker
from plugins.extole.testing import referral_event
from plugins.listrak.testing import API
from tests.store_rows import stored_deliveries


def test_retry_after_is_a_floor_on_the_schedule_not_a_replacement():
    assert retry_delay([600.0], 1, retry_after=1.0) >= 480.0
    assert retry_delay([1.0], 1, retry_after=120.0) == 120.0
    assert 0.8 <= retry_delay([1.0, 10.0], 1, retry_after=None) <= 1.2


def test_schedule_running_out_gives_no_delay():
    assert retry_delay([1.0, 10.0], 3, retry_after=None) is None


def test_claim_whose_lease_is_nearly_gone_is_released_not_sent(post_events, runtime,
                                                               requests_mock, listrak_token):
    contact = requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={})
    assert post_events(referral_event("w-1")).status_code == 202
    worker = Worker(runtime)
    (group,) = worker.claim_groups(1)
    stale = [dataclasses.replace(group[0], leased_until=group[0].leased_until - 3600)]
    worker.deliver_group(stale)
    assert contact.call_count == 0
    (delivery,) = stored_deliveries(runtime)
    assert delivery["state"] == "queued" and delivery["lease_owner"] is None
    assert worker.run_once() == 1 and contact.call_count == 1
