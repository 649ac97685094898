"""Gemini ``generateContent`` with a JSON response schema, through google-genai.

Findings from the installed google-genai (2.34) source:

* ``GenerateContentConfig.response_json_schema`` takes a raw JSON Schema dict and sends it as
  ``generationConfig.responseJsonSchema`` unchanged (``_transformers.t_json_schema`` is the
  identity); ``response_schema`` instead wants the SDK's OpenAPI-subset ``Schema``. We use the
  former so the same pydantic JSON schema goes to both vendors.
* The service documents that a sub-schema with ``$ref`` may carry no other keywords except
  ``$``-prefixed ones, while pydantic writes ``{"$ref": ..., "description": ...}``; ``gemini_schema``
  drops those siblings.
* ``HttpOptions(base_url=..., timeout=<milliseconds>, retry_options=HttpRetryOptions(attempts=1))``:
  with ``retry_options`` unset the SDK already makes one attempt, and with it set the SDK's
  implicit sleep-and-retry on connection errors (async path) is also off; we set it explicitly so
  our ``RetryPolicy`` stays the only retry layer even if the SDK default changes.
* ``vertexai=False`` is passed so ``GOOGLE_GENAI_USE_VERTEXAI`` in the environment cannot switch
  the client to Vertex AI.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from seeds.providers._remote import _USE_DEFAULT, RemoteProvider
from seeds.providers._retry import CallFailure, is_retryable_status, parse_retry_after
from seeds.providers._types import RawAnswer


class GeminiProvider(RemoteProvider):
    name: ClassVar[str] = "gemini"
    # GEMINI_API_KEY first: it is what Google AI Studio tells users to set.
    key_env_vars: ClassVar[tuple[str, ...]] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    base_url_env_vars: ClassVar[tuple[str, ...]] = ("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL")
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com/"

    def __init__(self, *, cache_dir: str | os.PathLike[str] | None = _USE_DEFAULT, **kwargs: Any) -> None:
        super().__init__(cache_dir=cache_dir, **kwargs)
        self._client = genai.Client(
            api_key=self._api_key,
            vertexai=False,
            http_options=types.HttpOptions(
                base_url=self.base_url,
                timeout=int(self.timeout * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    def _send(self, *, model: str, system: str, prompt: str, schema: dict[str, Any], schema_name: str) -> RawAnswer:
        response = self._client.models.generate_content(
            model=model,
            contents=prompt,
            config=types.GenerateContentConfig(
                system_instruction=system,
                response_mime_type="application/json",
                response_json_schema=gemini_schema(schema),
            ),
        )
        usage = response.usage_metadata
        input_tokens = (usage.prompt_token_count or 0) if usage else 0
        # thinking tokens are billed as output
        output_tokens = ((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0
        served = response.model_version
        if not response.candidates:
            feedback = response.prompt_feedback
            reason = feedback.block_reason if feedback and feedback.block_reason else "no reason given"
            return RawAnswer("", input_tokens, output_tokens, served, f"no candidates returned (prompt blocked: {reason})")
        candidate = response.candidates[0]
        parts = candidate.content.parts if candidate.content and candidate.content.parts else []
        text = "".join(p.text for p in parts if p.text and not p.thought)
        finish = candidate.finish_reason
        problem = None
        if finish == types.FinishReason.MAX_TOKENS:
            problem = "the answer was cut off at the output token limit (finishReason=MAX_TOKENS)"
        elif finish not in (None, types.FinishReason.STOP, types.FinishReason.FINISH_REASON_UNSPECIFIED):
            problem = f"generation stopped early (finishReason={finish})"
        return RawAnswer(text, input_tokens, output_tokens, served, problem)

    def _classify(self, exc: BaseException) -> CallFailure | None:
        if isinstance(exc, genai_errors.APIError):
            headers = getattr(getattr(exc, "response", None), "headers", None)
            detail = exc.message or str(exc.details)
            status = int(exc.code) if exc.code else None
            return CallFailure(
                retryable=status is None or is_retryable_status(status),
                status=status,
                detail=f"{exc.status or ''} {detail}".strip(),
                retry_after=parse_retry_after(headers),
            )
        if isinstance(exc, httpx.TransportError):  # connect errors, read timeouts...
            return CallFailure(retryable=True, status=None, detail=f"{type(exc).__name__}: {exc}")
        return None


def gemini_schema(schema: Any) -> Any:
    """A copy of ``schema`` without the non-``$`` keywords beside a ``$ref``, which Gemini rejects."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return {k: gemini_schema(v) for k, v in schema.items() if k.startswith("$")}
        return {k: gemini_schema(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [gemini_schema(v) for v in schema]
    return schema
