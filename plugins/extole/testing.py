"""Test helpers for Extole's referral webhooks (signed HS256, `X-Extole-Signature`): referral
events as Extole sends them and their signatures, for tests and benchmarks."""

from __future__ import annotations

import hashlib
import hmac

from connector.testing import Part

WEBHOOK_SECRET = "test-webhook-secret"
TEST_ENV = {"EXTOLE_WEBHOOK_SECRET": WEBHOOK_SECRET}  # unit tests (the Flask test client)
STACK_ENV = {"EXTOLE_WEBHOOK_SECRET": "e2e-webhook-secret"}  # real processes


def sign(body: bytes, secret: str = WEBHOOK_SECRET, algorithm: str = "sha256") -> str:
    """The `X-Extole-Signature` value for `body`: "sha256=<hex>" (or "sha1=<hex>")."""
    digest = hashlib.sha256 if algorithm == "sha256" else hashlib.sha1
    return f"{algorithm}={hmac.new(secret.encode(), body, digest).hexdigest()}"


def signature_headers(secret: str):
    """A signer for connector.testing.Stack: body → {"X-Extole-Signature": ...}."""
    return lambda body: {"X-Extole-Signature": sign(body, secret)}


class StackPart(Part):
    """Extole in a connector.testing stack: the referral program is the primary sender (events
    posted without a source are Extole's), signed with STACK_ENV's secret."""

    def __init__(self):
        secret = STACK_ENV["EXTOLE_WEBHOOK_SECRET"]
        super().__init__(
            env=dict(STACK_ENV), signers={"extole": signature_headers(secret)}, primary_source=True
        )


def referral_event(
    event_id="e-1",
    type="opt_in",
    email="Jane.Doe@Example.com ",
    event_time="2026-11-22T05:44:22.123Z",
    environment="production",
    **person,
):
    """One referral event; `person` keys replace or add to Jane Doe's."""
    base_person = {
        "email": email,
        "first_name": "Jane",
        "last_name": "Doe",
        "phone_number": "+15555555555",
        "share_link": "refer.example.com/jdoe",
        "funnel": "advocate",
        "partner_user_id": "u-829",
    }
    base_person.update(person)
    return {
        "event_id": event_id,
        "type": type,
        "event_time": event_time,
        "client_id": "1890234",
        "environment": environment,
        "person": base_person,
    }
