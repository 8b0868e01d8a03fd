"""Real HTTP servers for outbound tests: each runs in a thread on 127.0.0.1, records every
request it gets and answers through a function given by the test (which may write raw bytes,
slowly, to play a misbehaving partner)."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Server:
    """`answer(handler, server)` writes the response; `requests` is what arrived."""

    def __init__(self, answer):
        self.answer = answer
        self.requests: list[Received] = []
        self.stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(Received(self.command, self.path, dict(self.headers), body))
                # The client gave up: what the slow answers are for.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    outer.answer(self, outer)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # close() waits for the loop's next poll: every 50 ms rather than serve_forever's 0.5 s.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    def close(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def json_answer(status: int, body: bytes = b"{}", headers: dict[str, str] | None = None):
    def answer(handler, _server):
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def trickle(head: bytes, every: float = 0.05, most: int = 400):
    """Writes `head` at once, then one byte every `every` seconds, each read well inside any
    per-read timeout: a partner that never finishes its answer. After `most` bytes (20 s by
    default) it hangs up mid-answer, so a client without a whole-request deadline ends with a
    broken connection rather than a timeout, and a test sees the difference without a clock."""

    def answer(handler, server):
        handler.wfile.write(head)
        handler.wfile.flush()
        for _ in range(most):
            if server.stopping.wait(every):
                return
            handler.wfile.write(b"x")
            handler.wfile.flush()
        handler.close_connection = True

    return answer
