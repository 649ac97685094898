"""Our one retry loop for remote providers: 429, 408, 5xx, connection errors and timeouts.

The vendor SDKs' own retries are switched off (openai ``max_retries=0``; google-genai
``HttpRetryOptions(attempts=1)``) so a call is tried exactly ``max_attempts`` times, the delays are
ours, and ``Retry-After`` is honoured the same way for both vendors.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CallFailure:
    """A vendor exception translated into what the retry loop needs to know."""

    retryable: bool
    status: int | None  # HTTP status; None for connection errors and timeouts
    detail: str  # the vendor's message, not yet masked
    retry_after: float | None = None  # seconds the server asked us to wait


def is_retryable_status(status: int) -> bool:
    return status in (408, 429) or 500 <= status <= 599


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI) or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _env_number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from exc


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter.

    Attempt ``n`` (1-based) that fails with a retryable error waits
    ``min(max_delay, base_delay * 2**(n-1)) * (1 + jitter * U[0,1))`` seconds, or the server's
    ``Retry-After`` (capped at ``max_retry_after``) when it sent one. ``sleep`` is injectable so
    tests can record the delays instead of waiting.
    """

    max_attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.25
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if min(self.base_delay, self.max_delay, self.jitter, self.max_retry_after) < 0:
            raise ValueError("RetryPolicy delays and jitter must be >= 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> RetryPolicy:
        """Defaults, then ``FARM_LLM_MAX_ATTEMPTS``, ``FARM_LLM_RETRY_BASE_DELAY``,
        ``FARM_LLM_RETRY_MAX_DELAY`` from the environment, then keyword ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "max_attempts": int(_env_number(env, "FARM_LLM_MAX_ATTEMPTS", cls.max_attempts)),
            "base_delay": _env_number(env, "FARM_LLM_RETRY_BASE_DELAY", cls.base_delay),
            "max_delay": _env_number(env, "FARM_LLM_RETRY_MAX_DELAY", cls.max_delay),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return backoff * (1.0 + self.jitter * rng.random())
