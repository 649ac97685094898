"""Build a provider by name."""

from __future__ import annotations

import os
from typing import Any

from seeds.providers._gemini import GeminiProvider
from seeds.providers._offline import OfflineProvider
from seeds.providers._openai import OpenAIProvider
from seeds.providers._types import LLMProvider

PROVIDERS: dict[str, type] = {"openai": OpenAIProvider, "gemini": GeminiProvider, "offline": OfflineProvider}
PROVIDER_ENV = "FARM_LLM_PROVIDER"


def make_provider(name: str | None = None, **options: Any) -> LLMProvider:
    """``make_provider("gemini", ledger=..., cache_dir=...)``; ``name`` defaults to
    ``$FARM_LLM_PROVIDER``, else ``"offline"`` so a fresh checkout works without keys.
    ``options`` go to the provider's constructor."""
    chosen = (name or os.environ.get(PROVIDER_ENV, "") or "offline").strip().lower()
    cls = PROVIDERS.get(chosen)
    if cls is None:
        raise ValueError(f"unknown LLM provider {chosen!r}; choose one of {sorted(PROVIDERS)} "
                         f"(argument or ${PROVIDER_ENV})")
    provider: LLMProvider = cls(**options)
    return provider
