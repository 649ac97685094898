"""Errors of the LLM provider layer.

Hierarchy::

    ProviderError                 a call failed; says provider, model, HTTP status and what to do
     ├── MissingAPIKeyError       no key in the environment or .env; names the variable(s) to set
     └── ProviderResponseError    the service answered but the answer is unusable (not JSON, cut off,
                                  refused); the tokens were still spent and are in the ledger

Messages never contain an API key: every text taken from a vendor error goes through ``mask``.
"""

from __future__ import annotations


class ProviderError(RuntimeError):
    """A provider call failed after our retries (or was not retryable)."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str | None = None,
        status: int | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status = status
        self.attempts = attempts


class MissingAPIKeyError(ProviderError):
    """No API key for a provider that needs one."""


class ProviderResponseError(ProviderError):
    """The service answered 200 but the content cannot be used as a JSON object."""

    def __init__(self, message: str, *, provider: str, model: str, raw_text: str, attempts: int = 1) -> None:
        super().__init__(message, provider=provider, model=model, status=200, attempts=attempts)
        self.raw_text = raw_text
