"""Fake OpenAI and Gemini HTTP servers speaking the real wire protocol, for the provider tests.

Each fake is a threaded ``http.server`` bound to 127.0.0.1 on a free port. Tests script a queue of
replies (status, JSON body, headers): 429-then-200, persistent 500, a schema-breaking answer...
Every request received is recorded (path, headers, parsed body) so tests can assert that the API
key was sent and the JSON schema was passed. When the queue runs dry the fake asks its ``responder``
(a function of the request body, like a local model server answering any prompt) if it has one, and
otherwise answers HTTP 418 with a message saying so: a status no client retries, so an unexpected
extra call fails loudly.

The module name is deliberately specific: pytest puts test folders on ``sys.path`` and other
test packages have fakes of their own.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: dict[str, Any] | str = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it was not JSON


class _FakeServer:
    """Common machinery: the scripted queue, the request log, start/stop."""

    #: Regex of the one path this fake answers; anything else is a 404 in the vendor's error format.
    path_re: re.Pattern[str]

    def __init__(self, replies: Iterable[Reply] = (), *, responder: Callable[[Any], Reply] | None = None) -> None:
        self._replies: deque[Reply] = deque(replies)
        self.responder = responder
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ---------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def _next_reply(self, body: Any = None) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        if self.responder is not None:
            return self.responder(body)
        return Reply(418, self.error_body(418, "fake server: no scripted reply left for this request"))

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def fill_model(self, reply: dict[str, Any], path: str, request: Any) -> dict[str, Any]:
        """A scripted answer without a model name reports the model that was asked for, as the real
        services do."""
        return reply

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> _FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                try:
                    body: Any = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw
                path = self.path.split("?", 1)[0]
                with fake._lock:
                    fake.requests.append(
                        RecordedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                if not fake.path_re.fullmatch(path):
                    reply = Reply(404, fake.error_body(404, f"fake server: no route for POST {path}"))
                else:
                    reply = fake._next_reply(body)
                payload = reply.body if isinstance(reply.body, str) else json.dumps(fake.fill_model(reply.body, path, body))
                data = payload.encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature of the base)
                pass  # keep test output clean

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # a short poll interval makes stop() return at once instead of after up to 0.5 s
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> _FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------- OpenAI


class FakeOpenAIServer(_FakeServer):
    """``POST /v1/chat/completions``, as the openai SDK calls it with ``base_url=<root>/v1``."""

    path_re = re.compile(r"/v1/chat/completions")

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return _openai_error_body(status, message)

    def fill_model(self, reply: dict[str, Any], path: str, request: Any) -> dict[str, Any]:
        if "choices" in reply and reply.get("model") is None and isinstance(request, dict):
            return {**reply, "model": request.get("model")}
        return reply


def _openai_error_body(status: int, message: str) -> dict[str, Any]:
    kind = "rate_limit_exceeded" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def openai_ok(
    content: dict[str, Any] | str,
    *,
    model: str | None = None,
    prompt_tokens: int = 100,
    completion_tokens: int = 50,
    finish_reason: str = "stop",
) -> Reply:
    """A real ``ChatCompletion`` JSON whose message content is ``content`` (a dict is JSON-encoded).
    ``model=None`` reports the model named in the request."""
    text = content if isinstance(content, str) else json.dumps(content)
    return Reply(
        200,
        {
            "id": "chatcmpl-fake0001",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
        {"x-request-id": "req_fake"},
    )


def openai_error(status: int, message: str = "fake failure", headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, _openai_error_body(status, message), headers or {})


# ------------------------------------------------------------------------------------- Gemini


_GEMINI_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  418: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class FakeGeminiServer(_FakeServer):
    """``POST /v1beta/models/{model}:generateContent``, as google-genai calls it with ``base_url=<root>``."""

    path_re = re.compile(r"/v1beta/models/[^/:]+:generateContent")

    @property
    def base_url(self) -> str:
        return self.root_url

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return _gemini_error_body(status, message)

    def fill_model(self, reply: dict[str, Any], path: str, request: Any) -> dict[str, Any]:
        if "candidates" in reply and reply.get("modelVersion") is None:
            return {**reply, "modelVersion": path.split("/models/", 1)[1].split(":", 1)[0]}
        return reply


def _gemini_error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _GEMINI_STATUS.get(status, "UNKNOWN")}}


def gemini_ok(
    content: dict[str, Any] | str,
    *,
    model: str | None = None,
    prompt_tokens: int = 100,
    output_tokens: int = 50,
    thoughts_tokens: int = 0,
    finish_reason: str = "STOP",
) -> Reply:
    """A real ``GenerateContentResponse`` JSON with the answer in ``candidates[0].content.parts[0].text``.
    ``model=None`` reports the model named in the request path."""
    text = content if isinstance(content, str) else json.dumps(content)
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": prompt_tokens + output_tokens + thoughts_tokens,
    }
    if thoughts_tokens:
        usage["thoughtsTokenCount"] = thoughts_tokens
    return Reply(
        200,
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish_reason, "index": 0}
            ],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": "fake-response-1",
        },
    )


def gemini_error(status: int, message: str = "fake failure", headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, _gemini_error_body(status, message), headers or {})
