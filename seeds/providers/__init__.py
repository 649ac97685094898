"""LLM providers for the seed agents: OpenAI, Gemini and an offline, deterministic one.

One interface (``LLMProvider.complete_json``) returning an ``LLMResult``; models routed per agent
role (``ModelRoutes``), retries with backoff (``RetryPolicy``), an answer cache on disk and a
``UsageLedger`` of tokens and dollars.
"""

from seeds.providers._cache import DEFAULT_CACHE_DIR, ResponseCache, cache_key, default_cache_dir
from seeds.providers._errors import MissingAPIKeyError, ProviderError, ProviderResponseError
from seeds.providers._extract import (
    TEMPLATE_KEYWORDS,
    ExtractedNumber,
    classify_idea,
    extract_facts,
    extract_numbers,
    find_symbols,
    idea_keywords,
    split_ideas,
)
from seeds.providers._factory import PROVIDERS, make_provider
from seeds.providers._gemini import GeminiProvider, gemini_schema
from seeds.providers._ledger import UsageLedger, UsageRow
from seeds.providers._offline import OfflineProvider, OfflineRequest, Responder, default_responder
from seeds.providers._openai import OpenAIProvider
from seeds.providers._pricing import PRICES_PER_MTOK, cost_usd, price_for
from seeds.providers._remote import RemoteProvider
from seeds.providers._retry import RetryPolicy
from seeds.providers._routes import DEFAULT_ROUTES, ROLES, ModelRoutes
from seeds.providers._secrets import mask
from seeds.providers._types import LLMProvider, LLMResult

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_ROUTES",
    "PRICES_PER_MTOK",
    "PROVIDERS",
    "ROLES",
    "TEMPLATE_KEYWORDS",
    "ExtractedNumber",
    "GeminiProvider",
    "LLMProvider",
    "LLMResult",
    "MissingAPIKeyError",
    "ModelRoutes",
    "OfflineProvider",
    "OfflineRequest",
    "OpenAIProvider",
    "ProviderError",
    "ProviderResponseError",
    "RemoteProvider",
    "Responder",
    "ResponseCache",
    "RetryPolicy",
    "UsageLedger",
    "UsageRow",
    "cache_key",
    "classify_idea",
    "cost_usd",
    "default_cache_dir",
    "default_responder",
    "extract_facts",
    "extract_numbers",
    "find_symbols",
    "gemini_schema",
    "idea_keywords",
    "make_provider",
    "mask",
    "price_for",
    "split_ideas",
]
