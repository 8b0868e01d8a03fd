"""Secrets out of everything logged or stored: config secrets for good, the most recent live
tokens (older ones have expired, so the set stays small however long we run). Every secret is
covered whatever its length, also as it appears URL-encoded or escaped inside JSON."""

from __future__ import annotations

import json
import threading
from collections import deque
from urllib.parse import quote, quote_plus

#: Headers whose whole value is a credential: only the scheme ("Bearer") is kept.
SENSITIVE_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}


def _forms(secret: str) -> set[str]:
    """A secret as it may appear: as is, in a query or form body, inside a JSON string."""
    return {secret, quote(secret), quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


class Redactor:
    """Replaces known secret values with ***."""

    def __init__(self, secrets=(), recent_tokens: int = 32):
        self._secrets: frozenset[str] = frozenset(s for s in secrets if s)
        self._tokens: deque[str] = deque(maxlen=recent_tokens)
        self._lock = threading.Lock()
        self._all: tuple[str, ...] = self._ordered()

    def _ordered(self) -> tuple[str, ...]:
        forms = set().union(*(_forms(s) for s in self._secrets | set(self._tokens)))
        return tuple(sorted(forms, key=len, reverse=True))  # longest first: no partial leftovers

    @property
    def _longest(self) -> int:
        return len(self._all[0]) if self._all else 0

    def keep(self, *secrets: str) -> None:
        """Secrets redacted for as long as the process runs (config-like, e.g. admin token)."""
        with self._lock:
            self._secrets = self._secrets | {s for s in secrets if s}
            self._all = self._ordered()

    def add(self, *secrets: str) -> None:
        """Live tokens: the most recent ones are redacted."""
        fresh = [s for s in secrets if s and s not in self._secrets and s not in self._tokens]
        if not fresh:
            return
        with self._lock:
            self._tokens.extend(fresh)
            self._all = self._ordered()

    def text(self, value: str) -> str:
        for secret in self._all:
            if secret in value:
                value = value.replace(secret, "***")
        return value

    def head(self, value: str, limit: int) -> str:
        """`self.text(value)[:limit]`, reading no more of `value` than that needs: a 330 KB
        batch body recorded as its first 16 KB was scanned whole, once per secret form. The
        part read ends at least a secret's length past the limit once redacted, so no secret
        that starts before the limit is cut in two, and none is left partly unredacted."""
        margin = self._longest
        window = limit + margin
        while True:
            part = value[:window]
            redacted = self.text(part)
            if len(part) == len(value) or len(redacted) >= limit + margin:
                return redacted[:limit]
            window *= 2

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, value in headers.items():
            if name.lower() in SENSITIVE_HEADERS:
                scheme = value.split(" ", 1)[0] if " " in value else ""
                out[name] = f"{scheme} ***".strip()
            else:
                out[name] = self.text(value)
        return out
