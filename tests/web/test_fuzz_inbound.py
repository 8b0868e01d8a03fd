"""Generated inputs (hypothesis) to every inbound route: POST /webhooks/<source> for a referral
source (HS256), a Segment source (SEGMENT_SIGNATURE), a Standard Webhooks source, and the
tracking-API routes of a Segment source (/v1/batch, /v1/track, /v1/identify and the short
forms). Whatever is sent, the answer is 2xx or 4xx (never 5xx, nor a redirect); a refused request stores
nothing; an optional field never refuses a referral event; nothing non-finite is stored; and every
Live View page and admin API answer about what was accepted is a 200 (the API's, strict JSON),
also once a worker has delivered it. Bodies are mostly mutated valid events (so they reach
planning and the store), also random JSON and bytes, gzip or not, with good and bad credentials;
values include odd optional fields, numbers no double holds and nesting past 64 levels."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import itertools
import json
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from connector.app import create_app
from connector.delivery.planner import Planner
from connector.delivery.worker import Worker
from connector.outbox.tables import deliveries, events
from connector.runtime import Runtime
from plugins.extole.testing import referral_event, sign
from plugins.listrak.testing import API
from plugins.segment.source import TRACKING_CALLS
from plugins.segment.testing import audience_event, identify_event, segment_signature, write_key_headers
from tests import fuzzing

#: Examples per route; all of them together stay well under 30 s.
EXAMPLES = {
    route: fuzzing.examples(count)
    for route, count in {
        "referral": 100,
        "segment": 70,
        "tracking": 70,
        "standard": 40,
        "postgres": 40,
    }.items()
}
SW_KEY = b"standard-webhooks-key-32-bytes!!"
BEARER = {"Authorization": "Bearer test-admin-token"}
RUN = settings(
    max_examples=1,  # replaced per test
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- what is sent ----------------------------------------------------------------------------
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates too
#: Placeholders `encoded` writes as raw JSON text no Python value makes: numbers no double
#: holds, and arrays nested around the 64-level limit and past json's own recursion limit.
RAW = {
    "<1e400>": "1e400",
    "<-1e400>": "-1e400",
    "<400 digits>": "9" * 400,
    "<1e308>": "1e308",
    **{f"<{n} deep>": "[" * n + "]" * n for n in (60, 63, 64, 65, 971, 3000)},
}
INTERESTING = st.sampled_from(
    [
        "",
        " ",
        "\ud800",
        "x\udfff",
        "\n",
        "e\r\n1",
        "\x00",
        "\x1b[2K",
        "\x85",
        "²",
        "9" * 400,
        "x" * 129,
        "2026-11-22T05:44:22Z",
        "2026-11-22T05:44:22",
        "9999-12-31T23:59:59Z",
        "opt_in",
        "opt_out",
        "staging",
        "track",
        "identify",
        "Audience Entered",
        "my_audience",
        "jane@example.com",
        " Jane.Doe@Example.COM ",
        "jane@localhost",
        "@",
        "a" * 250 + "@example.com",
        "advocate",
        "friend and advocate",
        "Friend",
        "f" * 65,
        "+1 (555) 555-5555",
        "555-1234",
        "NaN",
        *RAW,
        -1,
        0,
        2**64,
        1.5e300,
        True,
        None,
        [],
        {},
    ]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT | INTERESTING,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(ANY_TEXT | INTERESTING.filter(lambda v: isinstance(v, str)), children, max_size=3)
    ),
    max_leaves=8,
)
REFERRAL_PATHS = ["event_id"] * 3 + ["type", "event_time", "environment", "client_id", "person", "extra"]
OPTIONAL_PERSON = ("first_name", "last_name", "funnel", "share_link", "phone_number", "partner_user_id")
REFERRAL_PATHS += [f"person.{name}" for name in ("email", *OPTIONAL_PERSON)] + ["person.funnel"] * 2
SEGMENT_PATHS = ["messageId"] * 3 + ["type", "event", "userId", "timestamp", "sentAt", "properties", "traits"]
SEGMENT_PATHS += ["context", "context.traits", "context.traits.email", "context.personas.computation_key"]
SEGMENT_PATHS += ["properties.my_audience", "traits.email", "traits.my_audience"]


def mutated(base: dict, paths: list[str]):
    """`base` with a few of its paths set to generated values or removed."""
    values = {"odd": INTERESTING, "text": ANY_TEXT, "json": JSON_VALUES, "removed": st.just(KeyError)}
    value = st.sampled_from(["odd"] * 4 + ["text"] * 2 + ["json", "removed"]).flatmap(values.__getitem__)
    change = st.tuples(st.sampled_from(paths), value)
    return st.lists(change, max_size=2).map(lambda changes: _apply(base, changes))


def _apply(base: dict, changes) -> dict:
    document = json.loads(json.dumps(base))
    for path, value in changes:
        *parents, last = path.split(".")
        node = document
        for name in parents:
            node = node.get(name) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if value is KeyError:
            node.pop(last, None)
        else:
            node[last] = value
    return document


def documents(single):
    """Mostly one generated event or an array of them; sometimes any JSON at all."""
    kinds = {"one": single, "array": st.lists(single, min_size=1, max_size=3), "any": JSON_VALUES}
    return st.sampled_from(["one"] * 5 + ["array"] * 3 + ["any"]).flatmap(kinds.__getitem__)


def encoded(document) -> st.SearchStrategy[bytes]:
    """The JSON text as bytes: escaped, or raw (a lone surrogate then is not UTF-8); RAW's
    placeholders become their text."""

    def text(ascii: bool) -> bytes:
        written = json.dumps(document, ensure_ascii=ascii)
        for placeholder, raw in RAW.items():
            written = written.replace(json.dumps(placeholder), raw)
        return written.encode("utf-8", "surrogatepass")

    return st.booleans().map(text)


def bodies(single):
    kinds = {"json": documents(single).flatmap(encoded), "bytes": st.binary(max_size=64)}
    return st.sampled_from(["json"] * 9 + ["bytes"]).flatmap(kinds.__getitem__)


HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"))
CONTENT_TYPES = st.sampled_from(
    ["application/json"] * 24 + ["application/json; charset=utf-8", "text/plain", "", "application/xml"]
)
ENCODINGS = st.sampled_from([None] * 16 + ["gzip", "gzip", "identity", "br", "x-gzip"])
_FRESH = itertools.count()
IDS = st.just("id").map(lambda prefix: f"{prefix}-{next(_FRESH)}")  # new events, not duplicates
EMAILS = st.sampled_from(
    [
        "jane@example.com",
        "joe@example.org",
        " Mixed.Case@Example.COM ",
        "ja\x00ne@example.com",
        "jo\x85@example.com",
    ]
)
REFERRALS = st.builds(referral_event, IDS, st.sampled_from(["opt_in", "opt_out"]), EMAILS).flatmap(
    lambda event: mutated(event, REFERRAL_PATHS)
)
TRACKS = st.builds(audience_event, IDS, EMAILS, st.booleans()).flatmap(lambda e: mutated(e, SEGMENT_PATHS))
IDENTIFIES = st.builds(identify_event, IDS, EMAILS, st.booleans()).flatmap(
    lambda e: mutated(e, SEGMENT_PATHS)
)
SEGMENT_EVENTS = st.one_of(TRACKS, IDENTIFIES)
BATCHES = st.lists(SEGMENT_EVENTS, min_size=1, max_size=3).map(lambda batch: {"batch": batch})


@st.composite
def requests_to(draw, single, credentials):
    """(path suffix, headers, body) for one request."""
    body = draw(bodies(single))
    headers = {"Content-Type": draw(CONTENT_TYPES), **draw(credentials(body))}  # signed as sent
    encoding = draw(ENCODINGS)
    if encoding:
        headers["Content-Encoding"] = encoding
        if encoding in ("gzip", "x-gzip") and draw(st.booleans()):
            body = gzip.compress(body)
    return headers, body


def one_of_credentials(good, **bad):
    """Mostly good credentials for the body, sometimes none or made-up ones."""

    def for_body(body):
        made_up = st.dictionaries(st.sampled_from(sorted(bad) or ["X-Any"]), HEADER_TEXT, max_size=3)
        choices = {"good": st.just(good(body)), "none": st.just({}), "made up": made_up}
        return st.sampled_from(["good"] * 8 + ["none", "made up"]).flatmap(choices.__getitem__)

    return for_body


# -- what must hold --------------------------------------------------------------------------
class Store:
    def __init__(self, runtime):
        self.engine = runtime.engine

    def counts(self) -> tuple[int, int, int]:
        with self.engine.connect() as conn:
            return (
                conn.execute(select(func.count()).select_from(events)).scalar(),
                conn.execute(select(func.count()).select_from(deliveries)).scalar(),
                conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar(),
            )

    def payloads_after(self, last_id: int) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(events.c.payload).where(events.c.id > last_id)).scalars())

    def events_after(self, last_id: int) -> list[tuple[int, str | None, str]]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(events.c.id, events.c.email, events.c.source_id).where(events.c.id > last_id)
                )
            )


def assert_pages_answer(client, accepted) -> None:
    """Every page and admin answer about these events is a 200."""
    pages = ["/live", "/live?partial=1", "/admin/api/events", "/admin/api/summary"]
    for pk, email, source in accepted:
        pages += [f"/live/events/{pk}", f"/live/events/{pk}?partial=1", f"/admin/api/events/{pk}"]
        pages += [f"/live?source={source}", f"/live?email={email or ''}&partial=1"]
    for page in pages:
        response = client.get(page, headers=BEARER)
        assert response.status_code == 200, (page, response.get_data(as_text=True)[:500])
        if page.startswith("/admin/api/"):
            strict_json(response.get_data(as_text=True))


def strict_json(text: str):
    """JSON as the standard has it: no NaN, Infinity or -Infinity."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))


#: A referral event refused for one of these paths would have cost a consent change.
_OPTIONAL_PATH = re.compile(rf"(^|\.|\])(person\.({'|'.join(OPTIONAL_PERSON)})|client_id)$")


#: What refuses a whole body wherever it is (the Security and Robustness contracts).
_DOCUMENT_LIMITS = ("invalid Unicode", "a number outside the range", "nested deeper than")


def no_optional_field_refused(response) -> None:
    if response.status_code == 400 and response.json and "problems" in response.json:
        refused_for_the_field = [
            path
            for path, messages in response.json["problems"].items()
            if _OPTIONAL_PATH.search(path) and not all(m.startswith(_DOCUMENT_LIMITS) for m in messages)
        ]
        assert refused_for_the_field == [], response.json


def fuzz_target(config_dir, requests_mock, database_url: str):
    """The example config plus a Standard Webhooks source; partners answer 201."""
    (config_dir / "sources" / "standard.yaml").write_text(
        "plugin: extole\nauth:\n  algorithm: STANDARD_WEBHOOKS\n"
        f'  secrets: ["whsec_{base64.b64encode(SW_KEY).decode()}"]\n'
    )
    requests_mock.post(f"{API}/List/12345/Contact", status_code=201, json={"status": 201})
    requests_mock.post(f"{API}/List/12345/Contact/SegmentationField", status_code=200, json={"status": 200})
    runtime = Runtime.build(str(config_dir), database_url)
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    return client, runtime


@pytest.fixture
def fuzzed(config_dir, database_url, requests_mock, listrak_token):
    return fuzz_target(config_dir, requests_mock, database_url)


@pytest.fixture
def fuzzed_postgres(config_dir, postgres_url, requests_mock, listrak_token):
    return fuzz_target(config_dir, requests_mock, postgres_url)


def run(fuzzed, route: str, examples: int, strategy, check=lambda response: None) -> int:
    """Post `examples` generated requests to `route`; check each (and with `check`), then
    deliver and check again."""
    client, runtime = fuzzed
    store = Store(runtime)
    ran = []

    @settings(RUN, max_examples=examples)
    @given(strategy)
    def one(request):
        suffix, (headers, body) = request if isinstance(request[0], str) else ("", request)
        before = store.counts()
        response = client.post(f"{route}{suffix}", data=body, headers=headers)
        ran.append(response.status_code)
        assert response.status_code // 100 in (2, 4), response.get_data(as_text=True)
        check(response)
        if response.status_code >= 300:
            assert store.counts() == before, "a refused request stored something"
        else:
            Planner(runtime).plan_all()
            for payload in store.payloads_after(before[2]):
                strict_json(payload)
            assert_pages_answer(client, store.events_after(before[2]))

    one()
    Worker(runtime).run_once()
    assert_pages_answer(client, store.events_after(0))
    return len(ran)


# -- the routes ------------------------------------------------------------------------------


def test_referral_route_never_answers_5xx(fuzzed):
    credentials = one_of_credentials(
        lambda body: {"X-Extole-Signature": sign(body)}, **{"X-Extole-Signature": 1}
    )
    assert (
        run(
            fuzzed,
            "/webhooks/extole",
            EXAMPLES["referral"],
            requests_to(REFERRALS, credentials),
            no_optional_field_refused,
        )
        == (EXAMPLES["referral"])
    )


def test_segment_route_never_answers_5xx(fuzzed):
    credentials = one_of_credentials(
        lambda body: {"X-Signature": segment_signature(body)}, **{"X-Signature": 1}
    )
    batches = st.one_of(SEGMENT_EVENTS, BATCHES)
    assert (
        run(fuzzed, "/webhooks/segment", EXAMPLES["segment"], requests_to(batches, credentials))
        == (EXAMPLES["segment"])
    )


def test_tracking_api_routes_never_answer_5xx(fuzzed):
    credentials = one_of_credentials(lambda body: write_key_headers(), Authorization=1)
    routes = sorted(TRACKING_CALLS) * 4 + ["v1/other", "V1/BATCH", "v1/batch/", "/v1/batch", "v1/../v1/batch"]
    calls = {"batch": BATCHES, "track": TRACKS, "identify": IDENTIFIES}

    @st.composite
    def call(draw):
        route = draw(st.sampled_from(routes))
        matching = calls[TRACKING_CALLS.get(route, "batch")]
        return f"/{route}", draw(
            requests_to(draw(st.sampled_from([matching] * 8 + list(calls.values()))), credentials)
        )

    assert run(fuzzed, "/webhooks/segment-library", EXAMPLES["tracking"], call()) == EXAMPLES["tracking"]


def standard_signature(body: bytes, msg_id: str, timestamp: str) -> str:
    signed = f"{msg_id}.{timestamp}.".encode("latin-1") + body
    return "v1," + base64.b64encode(hmac.new(SW_KEY, signed, hashlib.sha256).digest()).decode()


@st.composite
def standard_headers(draw, body: bytes):
    """Mostly a fresh, signed delivery; else odd ids, timestamps (² among them) or signatures."""
    msg_id = draw(st.sampled_from(["fresh"] * 8 + ["text", "used"]))
    msg_id = {"fresh": draw(IDS), "used": "id-used", "text": draw(HEADER_TEXT)}[msg_id]
    timestamp = draw(st.sampled_from(["now"] * 8 + ["²", "1²", "", "-1", "text"]))
    timestamp = {"now": str(int(time.time())), "text": draw(HEADER_TEXT)}.get(timestamp, timestamp)
    signature = standard_signature(body, msg_id, timestamp)
    if draw(st.sampled_from([False] * 8 + [True])):
        signature = draw(HEADER_TEXT)
    return {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}


def test_standard_webhooks_route_never_answers_5xx(fuzzed):
    strategy = requests_to(REFERRALS, standard_headers)
    assert run(fuzzed, "/webhooks/standard", EXAMPLES["standard"], strategy) == EXAMPLES["standard"]


def test_referral_and_segment_routes_never_answer_5xx_on_postgres(fuzzed_postgres):
    """PostgreSQL refuses what SQLite stores (U+0000 in text): the same routes on it."""
    referral = one_of_credentials(
        lambda body: {"X-Extole-Signature": sign(body)}, **{"X-Extole-Signature": 1}
    )
    segment = one_of_credentials(lambda body: {"X-Signature": segment_signature(body)}, **{"X-Signature": 1})
    examples = EXAMPLES["postgres"]
    assert run(fuzzed_postgres, "/webhooks/extole", examples, requests_to(REFERRALS, referral)) == examples
    batches = st.one_of(SEGMENT_EVENTS, BATCHES)
    assert run(fuzzed_postgres, "/webhooks/segment", examples, requests_to(batches, segment)) == examples
