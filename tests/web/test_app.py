"""The app factory's error handling: client mistakes are 4xx, never 500."""

import pytest

#: As a WSGI server hands over raw bytes that are not UTF-8 (decoded as latin-1).
NOT_UTF8 = {"QUERY_STRING": "next=\xff\xfe&email=\xc3"}
ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.mark.parametrize("path", ["/live/login", "/live"])
def test_login_and_its_redirect_refuse_a_query_string_that_is_not_utf8(client, path):
    response = client.get(path, environ_overrides=NOT_UTF8)
    assert response.status_code == 400
    assert response.json == {"error": "bad request", "message": "the request is not valid UTF-8"}


def test_live_view_page_refuses_a_query_string_that_is_not_utf8(client):
    response = client.get("/live", environ_overrides=NOT_UTF8, headers=ADMIN)
    assert response.status_code == 400
    assert "the query string is not UTF-8" in response.get_data(as_text=True)


def test_admin_api_query_string_that_is_not_utf8_is_a_400(client):
    response = client.get("/admin/api/events", environ_overrides=NOT_UTF8, headers=ADMIN)
    assert response.status_code == 400
    assert response.json == {"error": "bad request", "message": "the query string is not UTF-8"}
