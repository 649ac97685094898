"""Fixtures for the seeds tests: the fake LLM servers and a clean, key-free environment."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fakes"))

from seeds_llm_fakes import (  # noqa: E402 (needs the path above)
    FakeGeminiServer,
    FakeOpenAIServer,
    gemini_error,
    gemini_ok,
    openai_error,
    openai_ok,
)
from seeds_llm_kit import SleepRecorder, VendorKit  # noqa: E402

from seeds.providers import GeminiProvider, OpenAIProvider  # noqa: E402

_ENV_VARS = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI", "FARM_LLM_PROVIDER", "FARM_LLM_CACHE_DIR",
    "FARM_LLM_MAX_ATTEMPTS", "FARM_LLM_RETRY_BASE_DELAY", "FARM_LLM_RETRY_MAX_DELAY",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real keys, base URLs or FARM_* settings leak in; the working directory has no .env."""
    import os

    for name in list(os.environ):
        if name in _ENV_VARS or name.startswith("FARM_MODEL_") or (name.startswith("FARM_") and "_MODEL_" in name):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=["openai", "gemini"])
def vendor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VendorKit]:
    if request.param == "openai":
        server: FakeOpenAIServer | FakeGeminiServer = FakeOpenAIServer()
        kit = VendorKit("openai", server, OpenAIProvider, openai_ok, openai_error, SleepRecorder(),
                        tmp_path / "cache", "gpt-4o-mini", "gpt-4.1")
    else:
        server = FakeGeminiServer()
        kit = VendorKit("gemini", server, GeminiProvider, gemini_ok, gemini_error, SleepRecorder(),
                        tmp_path / "cache", "gemini-2.5-flash", "gemini-2.5-pro")
    server.start()
    try:
        yield kit
    finally:
        server.stop()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
