"""Listrak OAuth 2.0 client credentials (OAUTH_LISTRAK): form-encoded POST to the token
endpoint through authlib; one cached token per key per process, refreshed early. The token
call goes through the core's transport: no redirect (the client secret never reaches another
host), no proxy variables, a total deadline shared with the delivery's attempt, a 1 MiB answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from marshmallow import fields

from connector.plugin_api import (
    Credentials,
    Http,
    InvalidCredentials,
    KeyAlgorithm,
    KeyConfigSchema,
    OutboundRequest,
    OutboundUrl,
    bounded_session,
    count_token_fetch,
    cut,
    error_code,
    redirect_refused,
    secret_field,
    time_left,
)

#: Refresh this many seconds before `expires_in` runs out (Listrak issues ~3599 s tokens).
LEEWAY = 60
#: After a refusal, threads of this process answer from memory for this long instead of
#: hammering the token endpoint; the store's key breaker spaces out later probes.
REFUSAL_MEMORY = 1.0
INVALID_ERRORS = {"invalid credentials", "invalid_client", "unauthorized_client", "invalid_grant"}


class TokenError(Exception):
    """The token endpoint answered but gave no usable token (transient for the delivery)."""


def refuse_redirect(response):
    """authlib's access_token_response hook: a 3xx is no token (and is not followed)."""
    if 300 <= response.status_code < 400:
        raise TokenError(redirect_refused(response))
    return response


class ListrakKeySchema(KeyConfigSchema):
    client_id = fields.String(required=True)
    key = secret_field(required=True)
    authorization_url = OutboundUrl(required=True)
    scope = fields.String(load_default="")


class ListrakOAuth(Credentials):
    def __init__(self, key_config: Mapping[str, Any], timeout: float):
        self.key_id = key_config["partner_key_id"]
        self.client_secret = key_config["key"]
        self.timeout = timeout
        self.oauth = OAuth2Session(
            key_config["client_id"],
            key_config["key"],
            token_endpoint=key_config["authorization_url"],
            grant_type="client_credentials",
            token_endpoint_auth_method="client_secret_post",
            scope=key_config.get("scope") or None,
            leeway=LEEWAY,
        )
        bounded_session(self.oauth, timeout)
        self.oauth.register_compliance_hook("access_token_response", refuse_redirect)
        self._lock = threading.Lock()
        self._token = None
        self._refused_until = 0.0
        self._refusal = ""
        self._used = threading.local()

    def access_token(self) -> str:
        with self._lock:
            token = self._token
            if token is not None and not token.is_expired(leeway=LEEWAY):
                return token["access_token"]
            if time.monotonic() < self._refused_until:
                raise InvalidCredentials(self._refusal)
            try:
                token = self.oauth.fetch_token(timeout=time_left(self.timeout), allow_redirects=False)
            except OAuthError as exc:
                error = error_code(exc.error) or ""  # any JSON value, as text on one line
                if error.lower() in INVALID_ERRORS:
                    self._refusal = f"token endpoint refused the credentials ({error})"
                    self._refused_until = time.monotonic() + REFUSAL_MEMORY
                    count_token_fetch(self.key_id, "refused")
                    raise InvalidCredentials(self._refusal) from exc
                count_token_fetch(self.key_id, "error")
                raise TokenError(f"token endpoint error: {error or 'no error code'}") from exc
            except RecursionError as exc:  # JSON nested past what the parser reads
                count_token_fetch(self.key_id, "error")
                raise TokenError("token endpoint answer is JSON nested too deep to read") from exc
            except (TypeError, ValueError) as exc:  # not a JSON object, or expires_in not a number
                count_token_fetch(self.key_id, "error")
                raise TokenError(f"token endpoint answer is unreadable: {cut(str(exc), 200)}") from exc
            except Exception:
                count_token_fetch(self.key_id, "error")
                raise
            access = token.get("access_token")
            if not isinstance(access, str) or not access:
                count_token_fetch(self.key_id, "error")
                shown = "no access_token" if not access else "an access_token that is not a string"
                raise TokenError(f"token endpoint response has {shown}")
            count_token_fetch(self.key_id, "ok")
            self._token = token
            return token["access_token"]

    def apply(self, request: OutboundRequest) -> None:
        token = self.access_token()
        self._used.token = token
        request.headers["Authorization"] = f"Bearer {token}"

    def refresh(self) -> None:
        """After a 401: forget the token this thread used, unless another thread already did."""
        used = getattr(self._used, "token", None)
        with self._lock:
            if self._token is not None and self._token.get("access_token") == used:
                self._token = None

    def secrets(self) -> list[str]:
        token = self._token
        return [self.client_secret] + ([token["access_token"]] if token else [])


class ListrakOAuthAlgorithm(KeyAlgorithm):
    name = "OAUTH_LISTRAK"
    config_schema = ListrakKeySchema

    def credentials(self, key_config: Mapping[str, Any], http: Http) -> Credentials:
        return ListrakOAuth(key_config, http.timeout)

    def shown_headers(self, key_config: Mapping[str, Any]) -> dict[str, str]:
        return {"Authorization": "Bearer ***"}
