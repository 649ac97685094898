"""OpenAI Chat Completions with structured outputs (``response_format`` = ``json_schema``).

``strict`` is False by default, on purpose: strict mode only accepts schemas where every object
lists all its properties as required and sets ``additionalProperties: false``, and it cannot
express open maps (``dict[str, X]``). Pydantic schemas of our specs have optional fields with
defaults and such maps, so a strict-compatible transform would have to change their meaning
(optional -> required-but-nullable, maps dropped). Non-strict keeps the schema exact as guidance;
the answer is then checked against it (``LLMResult.schema_errors``) and the spec validator has the
final word. Pass ``strict=True`` for schemas already written for strict mode.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import httpx
import openai

from seeds.providers._remote import _USE_DEFAULT, RemoteProvider
from seeds.providers._retry import CallFailure, is_retryable_status, parse_retry_after
from seeds.providers._types import RawAnswer


class OpenAIProvider(RemoteProvider):
    name: ClassVar[str] = "openai"
    key_env_vars: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    base_url_env_vars: ClassVar[tuple[str, ...]] = ("OPENAI_BASE_URL",)
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"

    def __init__(self, *, strict: bool = False, cache_dir: str | os.PathLike[str] | None = _USE_DEFAULT,
                 **kwargs: Any) -> None:
        super().__init__(cache_dir=cache_dir, **kwargs)
        self.strict = strict
        # max_retries=0: RemoteProvider owns retries (one policy, Retry-After honoured once).
        self._client = openai.OpenAI(
            api_key=self._api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout
        )

    def _send(self, *, model: str, system: str, prompt: str, schema: dict[str, Any], schema_name: str) -> RawAnswer:
        response = self._client.chat.completions.create(
            model=model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": _schema_name(schema_name), "schema": schema, "strict": self.strict},
            },
        )
        usage = response.usage
        input_tokens = usage.prompt_tokens if usage else 0
        output_tokens = usage.completion_tokens if usage else 0  # includes reasoning tokens
        if not response.choices:
            return RawAnswer("", input_tokens, output_tokens, response.model, "the response has no choices")
        choice = response.choices[0]
        message = choice.message
        problem = None
        if getattr(message, "refusal", None):
            problem = f"the model refused: {message.refusal}"
        elif choice.finish_reason == "length":
            problem = "the answer was cut off at the output token limit (finish_reason=length)"
        elif choice.finish_reason == "content_filter":
            problem = "the answer was withheld by the content filter (finish_reason=content_filter)"
        return RawAnswer(message.content or "", input_tokens, output_tokens, response.model, problem)

    def _classify(self, exc: BaseException) -> CallFailure | None:
        if isinstance(exc, openai.APIStatusError):
            body = exc.body
            # the vendor's own sentence when there is one, not the SDK's "Error code: 500 - {...}"
            detail = str(body["message"]) if isinstance(body, dict) and body.get("message") else exc.message
            return CallFailure(
                retryable=is_retryable_status(exc.status_code),
                status=exc.status_code,
                detail=detail,
                retry_after=parse_retry_after(exc.response.headers),
            )
        if isinstance(exc, openai.APIConnectionError | httpx.TransportError):  # APITimeoutError included
            return CallFailure(retryable=True, status=None, detail=f"{type(exc).__name__}: {exc}")
        return None


def _schema_name(name: str) -> str:
    """OpenAI wants ``^[a-zA-Z0-9_-]{1,64}$`` for the schema name."""
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64]
    return cleaned or "answer"
