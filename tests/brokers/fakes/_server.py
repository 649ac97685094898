"""A tiny threaded HTTP server with request recording and fault injection, shared by the fakes.

Subclasses implement ``route(request) -> Response``. Faults are queued with :meth:`FakeServer.inject`:

* ``when="before"``: answer with ``status`` without touching state (the broker never saw the order);
* ``when="after"``: run the route first (the order *is* recorded), then sleep ``delay`` seconds and/or
  answer ``status`` instead of the real response. A delay longer than the client's timeout makes the
  client give up after the server recorded the order, the worst case for duplicates.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass
class Fault:
    method: str
    path_pattern: str
    when: str = "before"  # "before" | "after"
    status: int | None = 500
    delay: float = 0.0
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and re.search(self.path_pattern, path) is not None


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        response = self.server.fake.dispatch(request)
        payload, content_type = response.encode()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left: expected in the timeout tests

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep pytest output clean


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped connections after client timeouts are part of the tests


class FakeServer:
    prefix = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> str:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.root_url + self.prefix

    @property
    def root_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.root_url + self.prefix

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ------------------------------------------------------------ faults
    def inject(
        self,
        method: str,
        path_pattern: str,
        *,
        when: str = "before",
        status: int | None = 500,
        delay: float = 0.0,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        fault = Fault(method, path_pattern, when, status, delay, times, headers or {})
        with self.lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    def dispatch(self, request: RecordedRequest) -> Response:
        with self.lock:
            self.requests.append(request)
        fault = self._take_fault(request.method, request.path)
        if fault is not None and fault.when == "before":
            return self.fault_response(fault)
        with self.lock:
            response = self.route(request)
        if fault is not None and fault.when == "after":
            if fault.delay:
                time.sleep(fault.delay)  # outside the lock: lookups must be served meanwhile
            if fault.status is not None:
                return self.fault_response(fault)
        return response

    def fault_response(self, fault: Fault) -> Response:
        return Response(fault.status or 500, "Internal Server Error", dict(fault.headers))

    def route(self, request: RecordedRequest) -> Response:
        raise NotImplementedError

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.method == method and re.search(path_pattern, r.path)]
