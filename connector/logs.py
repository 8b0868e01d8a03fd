"""Logging: text or JSON lines, secrets redacted, emails masked. Busy paths (intake, delivery)
write a summary line every few seconds; each event and attempt is a DEBUG line."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

# Also the URL-encoded form (jane%40example.com), as in request lines with ?email= filters.
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(?:@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_emails(text: str) -> str:
    """jane.doe@example.com → j***@example.com: enough to correlate, not to harvest."""
    return _EMAIL.sub(r"\1***@\2", text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str, keep: str = "") -> str:
    """Control characters as escapes (\\n, \\x1b, \\x85), so a value cannot end a log line
    and forge the next one, nor drive the terminal showing it; `keep` are left as they are."""
    return _CONTROL.sub(lambda m: m[0] if m[0] in keep else _ESCAPES.get(m[0], f"\\x{ord(m[0]):02x}"), text)


class SafeFilter(logging.Filter):
    """Every line: secrets redacted, emails masked, control characters escaped (a traceback
    keeps its line breaks, each of its lines indented so none passes for a log line)."""

    def __init__(self, redactor=None):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = escape_controls(self.clean(record.getMessage())), None
        if record.exc_info:  # tracebacks carry values too: format them now, cleaned
            text = escape_controls(self.clean(_TRACEBACKS.formatException(record.exc_info)), keep="\n")
            record.exc_text = "\n".join(f"  {line}" for line in text.split("\n"))
            record.exc_info = None
        return True

    def clean(self, text: str) -> str:
        if self.redactor is not None:
            text = self.redactor.text(text)
        return mask_emails(text)


_TRACEBACKS = logging.Formatter()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry)


def configure(settings: dict, redactor=None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.get("format") == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    safe = SafeFilter(redactor)
    handler.addFilter(safe)
    # Servers' request lines can carry an email (Live View ?email= filter): mask them too.
    for name in ("werkzeug", "gunicorn.access"):
        server_logger = logging.getLogger(name)
        for old in [f for f in server_logger.filters if isinstance(f, SafeFilter)]:
            server_logger.removeFilter(old)
        server_logger.addFilter(safe)
    root = logging.getLogger("connector")
    root.handlers[:] = [handler]
    root.setLevel(settings.get("level", "INFO"))
    root.propagate = False
