"""What the core hands a plugin, as Protocols: the outbound HTTP client, the credentials of a
configured key, and the loaded configuration (read-only). Plugins reach them through
`connector.plugin_api`; the core's own classes (`connector.http.HttpClient`,
`connector.config.Config`) fit them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from connector.records import HttpResult, OutboundRequest, Partner

if TYPE_CHECKING:
    from connector.contract import Credentials


class Redacts(Protocol):
    def text(self, value: str) -> str:
        """`value` with every configured secret (and every token seen) as ***."""
        ...


class Http(Protocol):
    """The core's outbound HTTP client (`connector.http.HttpClient`): pooled sessions, one
    deadline per request, no redirects, a 1 MiB answer, secrets redacted in every record."""

    @property
    def timeout(self) -> float: ...

    @property
    def redactor(self) -> Redacts: ...

    def send(self, request: OutboundRequest, credentials: Credentials | None = None) -> HttpResult:
        """Send once (on a 401, refresh `credentials` and send once more)."""
        ...


#: `credentials(partner_key_id)`: the Credentials of a configured key (one per key per process).
CredentialsFor = Callable[[str], "Credentials"]


class Configuration(Protocol):
    """The loaded configuration, as a plugin's `check` sees it (read-only)."""

    @property
    def directory(self) -> Path: ...

    @property
    def keys(self) -> Mapping[str, Mapping[str, Any]]: ...

    @property
    def partners(self) -> Mapping[str, Partner]: ...

    @property
    def pull_sources(self) -> Mapping[str, Mapping[str, Any]]: ...
