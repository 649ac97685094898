"""The offline provider: no network, no key, no cost, same answer for the same input.

It has no language model, so it answers with a deterministic function of the request. By
default that is ``extract_facts(prompt)`` (symbols, numbers with units); the agents plug their own
per-role responders, which read the idea clause by clause with ``seeds.idea_parser``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from seeds.providers._extract import extract_facts
from seeds.providers._ledger import UsageLedger
from seeds.providers._routes import ModelRoutes
from seeds.providers._types import LLMResult, schema_errors


@dataclass(frozen=True)
class OfflineRequest:
    role: str
    system: str
    prompt: str
    schema: dict[str, Any]
    schema_name: str


#: A responder turns a request into the JSON object to return. It must be deterministic.
Responder = Callable[[OfflineRequest], dict[str, Any]]


def default_responder(request: OfflineRequest) -> dict[str, Any]:
    return extract_facts(request.prompt)


class OfflineProvider:
    name: ClassVar[str] = "offline"

    def __init__(
        self,
        *,
        responders: Mapping[str, Responder] | None = None,
        fallback: Responder = default_responder,
        routes: ModelRoutes | None = None,
        ledger: UsageLedger | None = None,
    ) -> None:
        self.responders = dict(responders or {})
        self.fallback = fallback
        self.routes = routes if routes is not None else ModelRoutes()
        self.ledger = ledger if ledger is not None else UsageLedger()

    def register(self, role: str, responder: Responder) -> None:
        """Use ``responder`` for ``role`` from now on."""
        self.responders[role] = responder

    def complete_json(self, *, role: str, system: str, prompt: str, schema: dict, schema_name: str) -> LLMResult:
        model = self.routes.model_for(self.name, role)
        request = OfflineRequest(role, system, prompt, schema, schema_name)
        responder = self.responders.get(role, self.fallback)
        parsed = responder(request)
        if not isinstance(parsed, dict):
            raise TypeError(f"offline responder for role {role!r} returned {type(parsed).__name__}, not a dict")
        # the round trip makes ``parsed`` exactly what a remote provider would hand back
        raw = json.dumps(parsed, sort_keys=True, ensure_ascii=False)
        parsed = json.loads(raw)
        self.ledger.add(provider=self.name, model=model, role=role, input_tokens=0, output_tokens=0, cost_usd=0.0)
        return LLMResult(
            parsed=parsed,
            raw_text=raw,
            provider=self.name,
            model=model,
            role=role,
            schema_errors=schema_errors(parsed, schema),
            notes=("offline provider: rule-based reading, no language model",),
        )
