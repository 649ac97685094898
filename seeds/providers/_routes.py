"""Which model each agent role uses, per provider.

Defaults put the cheap, fast model on the high-volume reading roles (researcher, validator,
critic) and the strong model where the output is the spec itself or a repair of it (architect,
fixer). Environment overrides, most specific first:

* ``FARM_<PROVIDER>_MODEL_<ROLE>``, e.g. ``FARM_GEMINI_MODEL_ARCHITECT=gemini-2.5-flash``;
* ``FARM_MODEL_<ROLE>``, e.g. ``FARM_MODEL_ARCHITECT=gpt-5``. A name that plainly belongs to one
  vendor (``gpt-*``, ``o<digit>*``, ``gemini-*``) only changes that vendor's route, so one variable
  cannot send an OpenAI model name to Gemini; any other name (a model behind an OpenAI-compatible
  ``OPENAI_BASE_URL``) applies to every remote provider.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ROLES: tuple[str, ...] = ("researcher", "architect", "validator", "fixer", "critic")
REMOTE_PROVIDERS: tuple[str, ...] = ("openai", "gemini")
OFFLINE_MODEL = "offline-rules-v1"

DEFAULT_ROUTES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "openai": MappingProxyType(
            {
                "researcher": "gpt-4o-mini",
                "architect": "gpt-4.1",
                "validator": "gpt-4o-mini",
                "fixer": "gpt-4.1",
                "critic": "gpt-4o-mini",
            }
        ),
        "gemini": MappingProxyType(
            {
                "researcher": "gemini-2.5-flash",
                "architect": "gemini-2.5-pro",
                "validator": "gemini-2.5-flash",
                "fixer": "gemini-2.5-pro",
                "critic": "gemini-2.5-flash",
            }
        ),
        "offline": MappingProxyType(dict.fromkeys(ROLES, OFFLINE_MODEL)),
    }
)

_VENDOR_OF_MODEL = (
    (re.compile(r"^(gpt-|o\d|chatgpt-)"), "openai"),
    (re.compile(r"^(models/)?gemini-"), "gemini"),
)


def vendor_of_model(model: str) -> str | None:
    """``"openai"`` / ``"gemini"`` when the name says so, else ``None``."""
    for pattern, vendor in _VENDOR_OF_MODEL:
        if pattern.match(model.lower()):
            return vendor
    return None


@dataclass(frozen=True)
class ModelRoutes:
    """``provider -> role -> model``. Immutable; build variants with ``with_model``."""

    routes: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_ROUTES)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ModelRoutes:
        """The defaults with the ``FARM_*MODEL_*`` environment overrides applied."""
        env = os.environ if environ is None else environ
        table = {provider: dict(roles) for provider, roles in DEFAULT_ROUTES.items()}
        for role in ROLES:
            generic = (env.get(f"FARM_MODEL_{role.upper()}") or "").strip()
            if generic:
                vendor = vendor_of_model(generic)
                for provider in REMOTE_PROVIDERS:
                    if vendor is None or vendor == provider:
                        table[provider][role] = generic
            for provider in REMOTE_PROVIDERS:
                specific = (env.get(f"FARM_{provider.upper()}_MODEL_{role.upper()}") or "").strip()
                if specific:
                    table[provider][role] = specific
        return cls(table)

    def with_model(self, provider: str, role: str, model: str) -> ModelRoutes:
        table = {p: dict(r) for p, r in self.routes.items()}
        table.setdefault(provider, {})[role] = model
        return ModelRoutes(table)

    def model_for(self, provider: str, role: str) -> str:
        roles = self.routes.get(provider)
        if roles is None:
            raise ValueError(f"no model routes for provider {provider!r}; known providers: {sorted(self.routes)}")
        model = roles.get(role)
        if model is None:
            raise ValueError(
                f"unknown agent role {role!r} for provider {provider!r}; known roles: {sorted(roles)}. "
                f"Add it with ModelRoutes.with_model({provider!r}, {role!r}, '<model>')."
            )
        return model
