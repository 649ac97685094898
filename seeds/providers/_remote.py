"""What the OpenAI and Gemini providers share: key lookup, routing, cache, retries, accounting.

A subclass only says how to make one call (``_send``) and how to read the vendor's exceptions
(``_classify``); everything a caller can rely on lives here, once.
"""

from __future__ import annotations

import os
import random
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from seeds.providers._cache import ResponseCache, cache_key, default_cache_dir
from seeds.providers._errors import MissingAPIKeyError, ProviderError, ProviderResponseError
from seeds.providers._ledger import UsageLedger
from seeds.providers._pricing import cost_usd
from seeds.providers._retry import CallFailure, RetryPolicy
from seeds.providers._routes import ModelRoutes
from seeds.providers._secrets import mask, resolve_secret
from seeds.providers._types import LLMResult, RawAnswer, parse_json_object, schema_errors

_USE_DEFAULT: Any = object()  # sentinel: "the default cache directory", distinct from None = "no cache"


class RemoteProvider(ABC):
    name: ClassVar[str]
    #: Environment variables holding the key, in order of preference.
    key_env_vars: ClassVar[tuple[str, ...]]
    #: Environment variables that may hold a base URL (first non-empty wins).
    base_url_env_vars: ClassVar[tuple[str, ...]]
    default_base_url: ClassVar[str]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        routes: ModelRoutes | None = None,
        ledger: UsageLedger | None = None,
        cache_dir: str | os.PathLike[str] | None = _USE_DEFAULT,
        retry: RetryPolicy | None = None,
        timeout: float = 120.0,
        env_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if api_key is None:
            api_key, _where = resolve_secret(self.key_env_vars, env_file=env_file)
        if not api_key:
            names = " or ".join(self.key_env_vars)
            raise MissingAPIKeyError(
                f"{self.name}: no API key. Set {names} in the environment or in a .env file "
                f"(searched from {Path.cwd()} upwards), or use the offline provider, which needs no key.",
                provider=self.name,
            )
        self._api_key = api_key
        if base_url is None:
            base_url = next((os.environ[v] for v in self.base_url_env_vars if os.environ.get(v, "").strip()), None)
        self.base_url = base_url or self.default_base_url
        self.routes = routes if routes is not None else ModelRoutes.from_env()
        self.ledger = ledger if ledger is not None else UsageLedger()
        if cache_dir is _USE_DEFAULT:
            cache_dir = default_cache_dir()
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.retry = retry if retry is not None else RetryPolicy.from_env()
        self.timeout = timeout
        self._rng = random.Random()

    def __repr__(self) -> str:  # the key must not show up in reprs or logs
        return f"{type(self).__name__}(base_url={self.base_url!r}, cache={self.cache and self.cache.directory})"

    # -- what a vendor subclass provides ---------------------------------------------------------
    @abstractmethod
    def _send(self, *, model: str, system: str, prompt: str, schema: dict[str, Any], schema_name: str) -> RawAnswer:
        """One HTTP call, no retries."""

    @abstractmethod
    def _classify(self, exc: BaseException) -> CallFailure | None:
        """Translate a vendor/transport exception; ``None`` for anything that is not a call failure."""

    # -- the interface ---------------------------------------------------------------------------
    def complete_json(self, *, role: str, system: str, prompt: str, schema: dict, schema_name: str) -> LLMResult:
        model = self.routes.model_for(self.name, role)
        key = cache_key(provider=self.name, model=model, system=system, prompt=prompt, schema=schema)
        if self.cache is not None:
            stored = self.cache.get(key)
            if stored is not None:
                result = LLMResult.from_dict(stored).replayed(
                    provider=self.name, model=model, role=role, cache_key=key
                )
                self.ledger.add(provider=self.name, model=model, role=role, input_tokens=0, output_tokens=0,
                                cost_usd=0.0, cached=True)
                return result

        answer, attempts = self._call_with_retries(
            model=model, role=role, system=system, prompt=prompt, schema=schema, schema_name=schema_name
        )
        cost, price_note = cost_usd(answer.served_model or model, answer.input_tokens, answer.output_tokens)
        if price_note and answer.served_model and answer.served_model != model:
            # the dated snapshot may be unpriced while the configured name is priced
            cost, price_note = cost_usd(model, answer.input_tokens, answer.output_tokens)
        notes = tuple(n for n in (*answer.notes, price_note) if n)

        try:
            if answer.problem:
                raise ValueError(answer.problem)
            parsed = parse_json_object(answer.text)
        except ValueError as exc:
            # paid for even though unusable: account for it before failing
            self.ledger.add(provider=self.name, model=model, role=role, input_tokens=answer.input_tokens,
                            output_tokens=answer.output_tokens, cost_usd=cost, failed=True)
            snippet = mask(answer.text[:300], [self._api_key])
            raise ProviderResponseError(
                f"{self.name} model {model!r} (role {role}) returned an unusable answer for schema "
                f"{schema_name!r}: {exc}. First 300 characters: {snippet!r}. Re-run to ask again (unusable "
                "answers are not cached), or route this role to a stronger model.",
                provider=self.name,
                model=model,
                raw_text=answer.text,
                attempts=attempts,
            ) from None

        self.ledger.add(provider=self.name, model=model, role=role, input_tokens=answer.input_tokens,
                        output_tokens=answer.output_tokens, cost_usd=cost)
        result = LLMResult(
            parsed=parsed,
            raw_text=answer.text,
            provider=self.name,
            model=model,
            role=role,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            cost_usd=cost,
            cached=False,
            attempts=attempts,
            served_model=answer.served_model,
            schema_errors=schema_errors(parsed, schema),
            notes=notes,
            cache_key=key,
        )
        # An answer that breaks the schema is not stored, so a re-run asks again instead of
        # replaying the same mistake forever.
        if self.cache is not None and not result.schema_errors:
            self.cache.put(
                key,
                result.to_dict(),
                request={"provider": self.name, "model": model, "role": role, "schema_name": schema_name,
                         "system": system, "prompt": prompt},
            )
        return result

    # -- retries ---------------------------------------------------------------------------------
    def _call_with_retries(self, *, model: str, role: str, **request: Any) -> tuple[RawAnswer, int]:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send(model=model, **request), attempt
            except Exception as exc:  # translated below; anything unknown is re-raised untouched
                failure = self._classify(exc)
                if failure is None:
                    raise
                if failure.retryable and attempt < self.retry.max_attempts:
                    self.retry.sleep(self.retry.delay(attempt, failure.retry_after, self._rng))
                    continue
                error = self._provider_error(failure, model=model, role=role, attempts=attempt)
                # Keep the vendor exception as the cause only when it cannot leak the key.
                cause = None if self._api_key in repr(exc) or self._api_key in str(exc) else exc
                raise error from cause

    def _provider_error(self, failure: CallFailure, *, model: str, role: str, attempts: int) -> ProviderError:
        status = failure.status
        where = f"HTTP {status}" if status is not None else "no HTTP response (connection error or timeout)"
        detail = mask(failure.detail, [self._api_key]).strip()
        if len(detail) > 500:
            detail = detail[:500] + "..."
        env_names = " or ".join(self.key_env_vars)
        if status is None:
            hint = f"Could not reach {self.base_url}: check the network, the base URL and the timeout ({self.timeout} s)."
        elif status == 429:
            hint = ("Rate limited or out of quota: wait and re-run (answers already received are cached), "
                    "raise FARM_LLM_MAX_ATTEMPTS, or check the account's quota and billing.")
        elif status >= 500 or status == 408:
            hint = ("The service kept failing on its side: re-run later (answers already received are cached), "
                    f"route role {role!r} to another model (FARM_MODEL_{role.upper()}), or use another provider.")
        elif status in (401, 403):
            hint = f"The API key was rejected: check that {env_names} holds a valid key for {self.base_url}."
        elif status == 404:
            hint = (f"Model {model!r} was not found: set FARM_{self.name.upper()}_MODEL_{role.upper()} "
                    f"to a model this account can use, or check the base URL {self.base_url}.")
        else:
            hint = "The request was rejected; the detail above says why (often a JSON-schema feature the service does not support)."
        retried = "" if attempts == 1 else f" after {attempts} attempts"
        return ProviderError(
            f"{self.name} call failed for model {model!r} (role {role}){retried}: {where}: {detail or 'no detail'}. {hint}",
            provider=self.name,
            model=model,
            status=status,
            attempts=attempts,
        )
