"""The seeding agents: idea text -> research summary -> spec space -> validated, criticised space.

Roles (each a provider call with its own model; see seeds.providers.ModelRoutes):

* **Researcher**: idea text to a structured summary (market, instruments, entry and exit logic,
  risk, timeframe, every number the text mentions).
* **Architect**: summary to a SpecSpace built from the catalogue, ranges around the numbers.
* **Validator** (local code, no model): schema check plus a short dry-run backtest on sample data.
* **Fixer**: the exact validation or runtime error goes back to the architect; bounded retries.
* **Critic**: flags lookahead, unrealistic ranges and spaces too large for the trial budget.

The offline provider answers every role deterministically from the catalogue templates, so the
whole pipeline runs with no key and no network, and says so in every space it writes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from seeds.providers import LLMProvider, LLMResult, OfflineProvider, OfflineRequest, extract_facts
from seeds.templates import TEMPLATE_FILES, fill_template, template_text
from spec_space.catalogue import render as render_catalogue
from spec_space.space import DefaultSource, SpecSpace, check_space

RESEARCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "template": {"type": "string", "enum": sorted(TEMPLATE_FILES)},
        "market": {"type": "string"},
        "symbols": {"type": "array", "items": {"type": "string"}},
        "timeframe": {"type": "string"},
        "entry_logic": {"type": "string"},
        "exit_logic": {"type": "string"},
        "risk": {"type": "string"},
        "numbers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"value": {"type": "number"}, "unit": {"type": "string"}, "context": {"type": "string"}},
                "required": ["value", "unit", "context"],
            },
        },
    },
    "required": ["title", "template", "symbols", "numbers"],
}

CRITIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "issues": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "severity": {"type": "string", "enum": ["info", "warning", "error"]},
                    "message": {"type": "string"},
                },
                "required": ["severity", "message"],
            },
        }
    },
    "required": ["issues"],
}

RESEARCHER_SYSTEM = (
    "You are the Researcher of a strategy search farm. Summarise one trading idea into JSON: the "
    "catalogue template it is closest to, market, instruments, symbols, timeframe, entry and exit logic, "
    "risk, and EVERY number the text mentions with its unit (%, $, time as minutes after midnight, "
    "minutes, delta, dte, pips, points, R, atr) and the words around it. Do not invent numbers."
)

ARCHITECT_SYSTEM = (
    "You are the Architect of a strategy search farm. Write a spec space (JSON) for the idea, using ONLY "
    "the building blocks of the catalogue below. Put every number the research found into the parameter "
    "it belongs to as its default, with a search range around it. Unknown keys are errors. Signal "
    "expressions must use catalogue functions only. Return the whole space object.\n\n"
)

FIXER_SYSTEM = (
    "You are the Fixer. The spec space below failed validation or its dry-run backtest with the exact "
    "error shown. Return the corrected whole space (JSON), changing as little as possible.\n\n"
)

CRITIC_SYSTEM = (
    "You are the Critic. Flag lookahead (anything using future bars), unrealistic ranges (stops or "
    "targets impossible for the instrument, costs ignored) and spaces too large for the trial budget."
)


@dataclass
class SeedOutcome:
    """One idea's way through the agents."""

    source: str
    index: int
    title: str
    accepted: bool
    path: Path | None = None
    space: SpecSpace | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    critic: list[dict[str, str]] = field(default_factory=list)
    dry_run: dict[str, float] | None = None


@dataclass
class Validation:
    ok: bool
    space: SpecSpace | None
    error: str | None
    dry_run: dict[str, float] | None = None


def slugify(text: str, limit: int = 48) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return (slug[:limit].rstrip("_") or "idea")


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------- offline answers


def _json_block(prompt: str, label: str) -> Any:
    match = re.search(rf"<{label}>\n(.*?)\n</{label}>", prompt, re.DOTALL)
    if match is None:
        raise ValueError(f"offline provider: no <{label}> block in the prompt")
    return json.loads(match.group(1))


def offline_researcher(request: OfflineRequest) -> dict[str, Any]:
    return extract_facts(_json_block(request.prompt, "idea"))


def offline_architect(request: OfflineRequest) -> dict[str, Any]:
    facts = _json_block(request.prompt, "research")
    meta = _json_block(request.prompt, "meta")
    space, notes = fill_template(facts, name=meta["name"], description=meta["description"])
    space["provenance"] = {"offline_mapping": notes}
    return json.loads(json.dumps(space, default=str))  # YAML dates -> ISO strings, as a model would answer


def offline_fixer(request: OfflineRequest) -> dict[str, Any]:
    """Without understanding the error, the safe repair is the template with no customisation."""
    facts = dict(_json_block(request.prompt, "research"))
    meta = _json_block(request.prompt, "meta")
    facts["numbers"] = []
    space, notes = fill_template(facts, name=meta["name"], description=meta["description"])
    space["provenance"] = {"offline_mapping": [*notes, "fixer: reverted to the plain template"]}
    return json.loads(json.dumps(space, default=str))


def offline_critic(request: OfflineRequest) -> dict[str, Any]:
    space = _json_block(request.prompt, "space")
    budget = int(_json_block(request.prompt, "meta")["trials"])
    return {"issues": critique(space, budget)}


def offline_provider(**kwargs: Any) -> OfflineProvider:
    provider = OfflineProvider(**kwargs)
    provider.register("researcher", offline_researcher)
    provider.register("architect", offline_architect)
    provider.register("fixer", offline_fixer)
    provider.register("critic", offline_critic)
    return provider


def critique(space_dict: dict[str, Any], trials: int) -> list[dict[str, str]]:
    """Rule-based review, also run on answers from remote models (their critic adds to it)."""
    issues: list[dict[str, str]] = []
    try:
        space = SpecSpace.model_validate(space_dict)
    except ValidationError as exc:
        return [{"severity": "error", "message": f"space does not validate: {exc.errors()[0]['msg']}"}]
    # TPE and NSGA-II need roughly ten trials per searched dimension before they beat random search
    if trials < 10 * len(space.params):
        issues.append({"severity": "warning", "message": (
            f"{len(space.params)} parameters for a budget of {trials} trials: fix some of them or raise --trials "
            f"to at least {10 * len(space.params)}")})
    for name, param in space.params.items():
        bounds = getattr(param, "float_range", None)
        if bounds and bounds[0] > 0 and bounds[1] / bounds[0] > 50 and not param.log:
            issues.append({"severity": "info", "message": f"{name}: range spans x{bounds[1] / bounds[0]:.0f}; "
                                                          "a log scale searches it more evenly"})
    spec = space.build(space.suggest(DefaultSource(space)))
    for level_name in ("stop_loss", "take_profit"):
        level = getattr(spec.exits, level_name)
        if level is not None and level.pct is not None and spec.instrument.type == "stock" and level.pct > 0.3:
            issues.append({"severity": "warning", "message": f"{level_name} {level.pct:.0%} is wide for a stock"})
    if spec.instrument.type == "option" and spec.costs.option_half_spread == 0 and spec.costs.commission_per_contract == 0:
        issues.append({"severity": "warning", "message": "option trades without spread or commission: costs ignored"})
    window_end, flat = spec.entry.window_end, spec.exits.eod_flat_time
    if window_end and flat and window_end > flat:
        issues.append({"severity": "warning", "message": f"entries allowed until {window_end} but flat at {flat}"})
    return issues


# --------------------------------------------------------------------------- the pipeline


class SeedPipeline:
    """Runs the agents over ideas; the validator is local code with an injected dry-run."""

    def __init__(self, provider: LLMProvider, *, dry_run: Callable[[SpecSpace], dict[str, float]] | None,
                 max_fixes: int = 2, trials: int = 500) -> None:
        self.provider = provider
        self.dry_run = dry_run
        self.max_fixes = max_fixes
        self.trials = trials
        self.calls: list[LLMResult] = []

    def _ask(self, role: str, system: str, prompt: str, schema: dict[str, Any], schema_name: str) -> LLMResult:
        result = self.provider.complete_json(role=role, system=system, prompt=prompt, schema=schema,
                                             schema_name=schema_name)
        self.calls.append(result)
        return result

    def validate(self, space_dict: dict[str, Any]) -> Validation:
        try:
            space = SpecSpace.model_validate(space_dict)
            check_space(space)
        except (ValidationError, ValueError) as exc:
            return Validation(False, None, f"validation: {exc}")
        if self.dry_run is None:
            return Validation(True, space, None)
        try:
            metrics = self.dry_run(space)
        except Exception as exc:  # the runtime error is what the fixer needs to see
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return Validation(False, space, f"dry-run backtest: {detail}")
        return Validation(True, space, None, metrics)

    def seed_idea(self, text: str, *, source: str, index: int) -> SeedOutcome:
        title = next((line.strip() for line in text.splitlines() if line.strip()), "idea")[:120]
        name = slugify(title)
        outcome = SeedOutcome(source=source, index=index, title=title, accepted=False)
        research = self._ask("researcher", RESEARCHER_SYSTEM, f"<idea>\n{json.dumps(text)}\n</idea>",
                             RESEARCH_SCHEMA, "research_summary").parsed
        meta = {"name": name, "description": title, "trials": self.trials}
        schema = SpecSpace.model_json_schema()
        base_prompt = (
            f"<meta>\n{json.dumps(meta)}\n</meta>\n<research>\n{json.dumps(research)}\n</research>\n"
            f"<idea>\n{json.dumps(text)}\n</idea>\nA close template from the catalogue, as YAML:\n"
            f"{template_text(str(research.get('template', 'sma_cross')))}"
        )
        answer = self._ask("architect", ARCHITECT_SYSTEM + render_catalogue(), base_prompt, schema, "spec_space")
        candidate = answer.parsed
        for attempt in range(self.max_fixes + 1):
            outcome.attempts = attempt + 1
            candidate = {**candidate, "name": name}
            check = self.validate(candidate)
            if check.ok:
                outcome.accepted, outcome.space, outcome.dry_run = True, check.space, check.dry_run
                break
            outcome.errors.append(check.error or "unknown error")
            if attempt == self.max_fixes:
                break
            fix_prompt = (f"{base_prompt}\n<space>\n{json.dumps(candidate)}\n</space>\n"
                          f"<error>\n{check.error}\n</error>")
            fixed = self._ask("fixer", FIXER_SYSTEM + render_catalogue(), fix_prompt, schema, "spec_space").parsed
            if {**fixed, "name": name} == candidate:
                outcome.errors.append("the fixer returned the same space unchanged; giving up on this idea")
                break
            candidate = fixed
        if outcome.space is not None:
            critic = self._ask("critic", CRITIC_SYSTEM, f"<meta>\n{json.dumps(meta)}\n</meta>\n<space>\n"
                               f"{json.dumps(outcome.space.model_dump(mode='json', by_alias=True))}\n</space>",
                               CRITIC_SCHEMA, "critique").parsed
            outcome.critic = list(critic.get("issues", []))
            if self.provider.name != "offline":  # the rules also run on remote answers
                outcome.critic += critique(outcome.space.model_dump(mode="json", by_alias=True), self.trials)
        return outcome


def provenance(outcome: SeedOutcome, *, provider: LLMProvider, text: str, calls: list[LLMResult]) -> dict[str, Any]:
    """What produced a space: never keys, only names, models and hashes."""
    return {
        "source": outcome.source,
        "idea_index": outcome.index,
        "idea_title": outcome.title,
        "idea_sha256": _hash(text),
        "provider": provider.name,
        "offline": provider.name == "offline",
        "models": {call.role: call.model for call in calls},
        "prompt_hashes": {call.role: call.cache_key for call in calls if call.cache_key},
        "fix_attempts": outcome.attempts - 1,
        "critic": outcome.critic,
        "dry_run": outcome.dry_run,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def write_space(space: SpecSpace, prov: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = space.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    data["provenance"] = {**(data.get("provenance") or {}), **prov}
    header = ("# Written by `search seed`" + (" with the OFFLINE provider (deterministic template mapping, "
              "no language model)" if prov.get("offline") else f" with {prov['provider']}") + f".\n# Source: "
              f"{prov['source']} idea {prov['idea_index']}: {prov['idea_title']}\n")
    path = out_dir / f"{space.name}.yaml"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None))
    return path
