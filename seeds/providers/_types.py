"""The provider interface and its result type."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import jsonschema


@dataclass(frozen=True)
class LLMResult:
    """One structured answer.

    ``parsed`` is the JSON object the model returned; ``schema_errors`` lists where it breaks the
    requested JSON schema (empty when it conforms; the spec validator still has the final word).
    On a cache hit ``cached`` is True and tokens and cost are 0: nothing was paid for this call.
    """

    parsed: dict[str, Any]
    raw_text: str
    provider: str
    model: str
    role: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False
    attempts: int = 1
    served_model: str | None = None  # the model name the service reported, e.g. a dated snapshot
    schema_errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    cache_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema_errors"] = list(self.schema_errors)
        data["notes"] = list(self.notes)
        return data

    def replayed(self, *, provider: str, model: str, role: str, cache_key: str) -> LLMResult:
        """This stored answer served again from the cache to ``role``: no call made, nothing paid."""
        no_call = {"cached": True, "attempts": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
        return replace(self, provider=provider, model=model, role=role, cache_key=cache_key, **no_call)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMResult:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["schema_errors"] = tuple(values.get("schema_errors", ()))
        values["notes"] = tuple(values.get("notes", ()))
        return cls(**values)


@runtime_checkable
class LLMProvider(Protocol):
    """Anything that turns (role, system, prompt, JSON schema) into a JSON object.

    Guarantees of every implementation: the model is chosen from the role via ``ModelRoutes``;
    transient failures are retried inside the call; any failure that escapes is a
    ``ProviderError`` whose message names provider, model and status and never contains a key;
    every paid call is recorded in the provider's ``UsageLedger``.
    """

    name: str

    def complete_json(self, *, role: str, system: str, prompt: str, schema: dict, schema_name: str) -> LLMResult:
        ...


@dataclass(frozen=True)
class RawAnswer:
    """What a remote call returned, before parsing. ``problem`` set means unusable (cut off, refused)."""

    text: str
    input_tokens: int
    output_tokens: int
    served_model: str | None = None
    problem: str | None = None
    notes: tuple[str, ...] = field(default=())


_FENCE = re.compile(r"^```(?:json|JSON)?\s*\n?(.*?)\n?```$", re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in ``text``; tolerates a Markdown code fence around it.

    Raises ``ValueError`` saying what was wrong (not JSON, or JSON but not an object).
    """
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"the answer is JSON but a {type(value).__name__}, not an object")
    return value


def schema_errors(instance: dict[str, Any], schema: dict[str, Any], *, limit: int = 20) -> tuple[str, ...]:
    """Where ``instance`` breaks ``schema``, as ``"path: message"`` strings (at most ``limit``)."""
    if not schema:
        return ()
    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return (f"<schema>: the JSON schema itself is invalid, answer not checked: {exc.message}",)
    validator = validator_cls(schema)
    found = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    out = []
    for error in found[:limit]:
        path = "/".join(map(str, error.absolute_path)) or "<root>"
        out.append(f"{path}: {error.message}")
    if len(found) > limit:
        out.append(f"... and {len(found) - limit} more")
    return tuple(out)
