"""Outbound requests against real servers that misbehave: a redirect is never followed (nothing
reaches its target), `worker.http_timeout` bounds the whole request however slowly the answer
trickles in, answers over 1 MiB are cut off, proxy variables are ignored; token calls alike.

No test times a window (the machine is shared): a trickling server sends a byte far more often
than any per-read timeout and hangs up after 20 s, so only a whole-request deadline ends such a
request with a timeout; a request without one ends with a broken connection instead."""

from __future__ import annotations

import pytest

from connector.contract import OutboundRequest, State, Verdict
from connector.delivery.outcomes import default_verdict
from connector.http import HttpClient, parse_retry_after
from connector.transport import MAX_RESPONSE_BYTES
from plugins.listrak.oauth import ListrakOAuth
from tests.http_servers import Server, json_answer, trickle

TIMEOUT = 1.0
SECRET = "client-secret-of-the-key"
TOKEN = b'{"access_token": "tok-1", "token_type": "bearer", "expires_in": 3599}'


@pytest.fixture
def serve():
    servers = []

    def start(answer) -> Server:
        servers.append(Server(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def key(token_url: str) -> dict:
    return {
        "partner_key_id": "key-1",
        "client_id": "client-1",
        "key": SECRET,
        "authorization_url": token_url,
        "scope": "",
    }


def post(url: str) -> OutboundRequest:
    return OutboundRequest("POST", f"{url}/List/1/Contact", json={"emailAddress": "jane@example.com"})


# -- redirects --------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_is_dead(serve, status):
    target = serve(json_answer(200))
    partner = serve(json_answer(status, headers={"Location": f"{target.url}/List/1/Contact"}))
    result = HttpClient(timeout=TIMEOUT).send(post(partner.url))
    assert target.requests == []
    assert (result.status, result.error) == (
        status,
        f"partner answered a redirect (HTTP {status} to {target.host}); not followed",
    )
    assert default_verdict(result) == Verdict(
        State.DEAD, f"partner answered a redirect (HTTP {status} to {target.host}); not followed"
    )


def test_a_3xx_without_location_is_dead_too(serve):
    partner = serve(json_answer(300))
    result = HttpClient(timeout=TIMEOUT).send(post(partner.url))
    assert default_verdict(result) == Verdict(
        State.DEAD, "partner answered a redirect (HTTP 300); not followed"
    )


def test_a_token_endpoint_redirect_never_sends_the_client_secret_to_its_target(serve):
    target = serve(json_answer(200, TOKEN))
    token_endpoint = serve(json_answer(307, headers={"Location": f"{target.url}/OAuth2/Token"}))
    partner = serve(json_answer(201))
    client = HttpClient(timeout=TIMEOUT)
    result = client.send(post(partner.url), ListrakOAuth(key(f"{token_endpoint.url}/OAuth2/Token"), TIMEOUT))
    assert target.requests == []
    assert partner.requests == []
    assert SECRET.encode() in token_endpoint.requests[0].body
    assert (result.status, result.error) == (
        None,
        f"token endpoint: answered a redirect (HTTP 307 to {target.host}); not followed",
    )
    assert default_verdict(result).state == State.RETRYING


# -- the deadline -----------------------------------------------------------------------------
def test_a_client_without_a_deadline_sees_the_trickle_hang_up_not_time_out(serve):
    """The control for the tests below: per-read timeouts alone never end a trickle."""
    import requests

    partner = serve(trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", most=10))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # the connection broke mid-body
        requests.get(partner.url, timeout=TIMEOUT)


def test_a_body_trickling_in_is_cut_off_at_the_deadline(serve):
    partner = serve(trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"))
    result = HttpClient(timeout=TIMEOUT).send(post(partner.url))
    assert (result.status, result.error) == (None, "timeout: ReadTimeout")
    assert default_verdict(result).state == State.RETRYING


def test_headers_trickling_in_are_cut_off_at_the_deadline(serve):
    partner = serve(trickle(b"HTTP/1.1 200 OK\r\nX-Slow: "))
    result = HttpClient(timeout=TIMEOUT).send(post(partner.url))
    assert (result.status, result.error) == (None, "timeout: ReadTimeout")


def test_a_slow_token_call_and_the_request_share_one_deadline(serve):
    token_endpoint = serve(trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"))
    partner = serve(json_answer(201))
    credentials = ListrakOAuth(key(f"{token_endpoint.url}/OAuth2/Token"), TIMEOUT)
    result = HttpClient(timeout=TIMEOUT).send(post(partner.url), credentials)
    assert (result.status, result.error) == (None, "token endpoint: the request's deadline passed")
    assert partner.requests == []


def test_the_connection_is_reused_after_a_bounded_answer(serve):
    partner = serve(json_answer(201, b'{"status": 201}'))
    client = HttpClient(timeout=TIMEOUT)
    first, second = client.send(post(partner.url)), client.send(post(partner.url))
    assert (first.status, first.body, second.status, second.body) == (
        201,
        {"status": 201},
        201,
        {"status": 201},
    )


def test_an_answer_read_until_the_connection_closes_is_read_whole(serve):
    def until_closed(handler, _server):
        handler.wfile.write(b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\n")
        handler.wfile.flush()
        handler.wfile.write(b'{"status": 201}')
        handler.close_connection = True

    partner = serve(until_closed)
    result = HttpClient(timeout=TIMEOUT).send(post(partner.url))
    assert (result.status, result.body, result.error) == (201, {"status": 201}, None)


# -- the size cap -----------------------------------------------------------------------------
def test_an_answer_over_1_mib_is_cut_off_and_the_attempt_fails(serve):
    partner = serve(json_answer(200, b" " * (MAX_RESPONSE_BYTES + 1)))
    result = HttpClient(timeout=TIMEOUT).send(post(partner.url))
    assert (result.status, result.error) == (None, "response body over 1 MiB")
    assert default_verdict(result) == Verdict(State.RETRYING, "response body over 1 MiB")


def test_an_answer_over_1_mib_without_a_length_is_cut_off_while_read(serve):
    def chunked(handler, _server):
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b" " * 65536
        for _ in range(MAX_RESPONSE_BYTES // len(chunk) + 2):
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        handler.wfile.write(b"0\r\n\r\n")

    partner = serve(chunked)
    result = HttpClient(timeout=TIMEOUT).send(post(partner.url))
    assert (result.status, result.error) == (None, "response body over 1 MiB")


def test_an_answer_of_exactly_1_mib_is_read(serve):
    partner = serve(json_answer(200, b" " * MAX_RESPONSE_BYTES))
    result = HttpClient(timeout=TIMEOUT).send(post(partner.url))
    assert (result.status, result.error, len(result.body)) == (200, None, MAX_RESPONSE_BYTES)


def test_a_request_may_allow_a_larger_answer_and_is_still_bounded(serve):
    """A pull source reads report pages of a few MiB; its limit is its own, still a limit."""
    big = serve(json_answer(200, b'"' + b"x" * (3 * MAX_RESPONSE_BYTES) + b'"'))
    client = HttpClient(timeout=TIMEOUT)
    read = client.send(OutboundRequest("GET", big.url, max_response_bytes=4 * MAX_RESPONSE_BYTES))
    assert (read.status, read.error, len(read.body)) == (200, None, 3 * MAX_RESPONSE_BYTES)
    smaller = client.send(OutboundRequest("GET", big.url, max_response_bytes=2 * MAX_RESPONSE_BYTES))
    assert (smaller.status, smaller.error) == (None, "response body over 2 MiB")
    default = client.send(OutboundRequest("GET", big.url))
    assert (default.status, default.error) == (None, "response body over 1 MiB")


def test_a_token_answer_over_1_mib_is_no_token(serve):
    token_endpoint = serve(json_answer(200, b" " * (MAX_RESPONSE_BYTES + 1)))
    partner = serve(json_answer(201))
    credentials = ListrakOAuth(key(f"{token_endpoint.url}/OAuth2/Token"), TIMEOUT)
    result = HttpClient(timeout=TIMEOUT).send(post(partner.url), credentials)
    assert (result.status, result.error) == (None, "token endpoint: response body over 1 MiB")
    assert partner.requests == []


# -- proxies ----------------------------------------------------------------------------------
def test_proxy_variables_are_ignored_by_partner_and_token_calls(serve, monkeypatch):
    proxy = serve(json_answer(200, TOKEN))
    token_endpoint = serve(json_answer(200, TOKEN))
    partner = serve(json_answer(201))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    credentials = ListrakOAuth(key(f"{token_endpoint.url}/OAuth2/Token"), TIMEOUT)
    result = HttpClient(timeout=TIMEOUT).send(post(partner.url), credentials)
    assert result.status == 201
    assert (len(proxy.requests), len(token_endpoint.requests), len(partner.requests)) == (0, 1, 1)


# -- Retry-After ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "seconds"), [("120", 120.0), (" 7 ", 7.0), ("²", None), ("１２", None), ("", None)]
)
def test_retry_after_seconds_are_ascii_digits_only(value, seconds):
    assert parse_retry_after(value) == seconds
