"""Test helpers around the fake LLM servers: one vendor's server, provider class and wire format.

Kept out of conftest.py so test modules can import them by a name no other test folder uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seeds_llm_fakes import FakeGeminiServer, FakeOpenAIServer, RecordedRequest, Reply

from seeds.providers import RemoteProvider, RetryPolicy

TEST_KEY = "test-key-SECRET-9f8e7d6c"


class SleepRecorder:
    """Stands in for time.sleep: records the delays the retry loop asked for, waits for none."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class VendorKit:
    """One vendor's fake server plus the helpers to script it and read what it received."""

    name: str
    server: FakeOpenAIServer | FakeGeminiServer
    provider_cls: type[RemoteProvider]
    ok: Callable[..., Reply]
    error: Callable[..., Reply]
    sleeps: SleepRecorder
    cache_dir: Path
    researcher_model: str
    architect_model: str

    def make(self, **overrides: Any) -> RemoteProvider:
        options: dict[str, Any] = {
            "api_key": TEST_KEY,
            "base_url": self.server.base_url,
            "cache_dir": self.cache_dir,
            "retry": RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, sleep=self.sleeps),
            "timeout": 10.0,
        }
        options.update(overrides)
        return self.provider_cls(**options)

    def key_sent(self, request: RecordedRequest) -> str | None:
        if self.name == "openai":
            auth = request.headers.get("authorization", "")
            return auth.removeprefix("Bearer ") if auth else None
        return request.headers.get("x-goog-api-key")

    def schema_sent(self, request: RecordedRequest) -> Any:
        if self.name == "openai":
            return request.body["response_format"]["json_schema"]["schema"]
        return request.body["generationConfig"]["responseJsonSchema"]

    def texts_sent(self, request: RecordedRequest) -> tuple[str, str]:
        """(system, prompt) as they went over the wire."""
        if self.name == "openai":
            messages = request.body["messages"]
            return messages[0]["content"], messages[1]["content"]
        return (request.body["systemInstruction"]["parts"][0]["text"],
                request.body["contents"][0]["parts"][0]["text"])

    def model_in_request(self, request: RecordedRequest) -> str:
        if self.name == "openai":
            return request.body["model"]
        return request.path.split("/models/", 1)[1].split(":", 1)[0]
