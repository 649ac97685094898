"""The seeding agents: idea text -> research summary -> spec space -> validated, criticised space.

Roles (each a provider call with its own model; see seeds.providers.ModelRoutes):

* **Researcher**: idea text to a structured summary (market, instruments, entry and exit logic,
  risk, timeframe, every number the text mentions).
* **Architect**: summary to a SpecSpace built from the catalogue, ranges around the numbers.
* **Validator** (local code, no model): schema check plus a short dry-run backtest on sample data.
* **Fixer**: the exact validation or runtime error goes back to the architect; bounded retries.
* **Critic**: flags lookahead, unrealistic ranges and spaces too large for the trial budget.

Every space records what became of each clause of its idea (``provenance.clause_map`` and
``provenance.unmapped``, see :mod:`seeds.clause_check`); the validator checks that record against the
idea, the instrument against the tickers the idea names, and the dry run for trades. A model that
drops a clause is sent back with the clause named.

The offline provider answers with :mod:`seeds.idea_parser`, a deterministic rule-based reader, so the
whole pipeline runs with no key and no network and says so in every space it writes. It cannot repair
a space it could not read: offline, a failed validation is a rejection, never a fixer round.
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

from seeds.clause_check import CLAUSE_RECORD_SCHEMA, check_clause_record, numbered_clauses
from seeds.idea_parser import named_symbols, parse_idea, split_clauses
from seeds.providers import LLMProvider, LLMResult, OfflineProvider, OfflineRequest, extract_numbers
from spec_space.catalogue import render as render_catalogue
from spec_space.instruments import InstrumentType, clock_session_minute
from spec_space.space import DefaultSource, SpecSpace, check_space

RESEARCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "market": {"type": "string"},
        "asset_class": {"type": "string", "enum": ["stock", "option", "future", "forex"]},
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
    "required": ["title", "symbols", "numbers"],
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
    "You are the Researcher of a strategy search farm. Summarise one trading idea into JSON: market, "
    "asset class, the symbols the text names (never a word of prose), timeframe, entry and exit logic, "
    "risk, and EVERY number the text mentions with its unit (%, $, time as minutes after midnight, "
    "minutes, delta, dte, pips, points, R, atr) and the words around it. Do not invent numbers."
)

ARCHITECT_SYSTEM = (
    "You are the Architect of a strategy search farm. Write a spec space (JSON) for the idea, using ONLY "
    "the building blocks of the catalogue below. Put every number the research found into the parameter "
    "it belongs to as its default, with a search range around it. Unknown keys are errors. Signal "
    "expressions must use catalogue functions only. Trade only an instrument the idea names. Record in "
    "provenance what became of EVERY numbered clause of the idea: provenance.clause_map lists each clause "
    "you mapped with the spec fields it set (dotted paths like exits.stop_loss.pct, instrument.legs[0].dte, "
    "or params.<name>); provenance.unmapped lists each clause the catalogue cannot express, with the reason. "
    "Invent nothing: a block the idea does not ask for stays out. Return the whole space object.\n\n"
)

FIXER_SYSTEM = (
    "You are the Fixer. The spec space below failed validation, its clause record or its dry-run backtest "
    "with the exact error shown. Return the corrected whole space (JSON) with its provenance clause record, "
    "changing as little as possible.\n\n"
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
    unmapped: list[dict[str, Any]] = field(default_factory=list)


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
    text = _json_block(request.prompt, "idea")
    parsed = parse_idea(text)
    return {
        "title": parsed.title,
        "symbols": parsed.named_symbols,
        **({"asset_class": parsed.asset_class} if parsed.asset_class else {}),
        "timeframe": parsed.timeframe,
        "clauses": split_clauses(text),
        "numbers": [{"value": n.value, "unit": n.unit, "context": n.context} for n in extract_numbers(text)],
    }


def offline_architect(request: OfflineRequest) -> dict[str, Any]:
    """The rule-based reading as a space, or a rejection that names what could not be mapped."""
    text = _json_block(request.prompt, "idea")
    meta = _json_block(request.prompt, "meta")
    parsed = parse_idea(text, name=meta["name"])
    if parsed.space is None:
        return {"rejected": True, "problems": parsed.problems, "unmapped": parsed.unmapped()}
    return parsed.space


def offline_critic(request: OfflineRequest) -> dict[str, Any]:
    space = _json_block(request.prompt, "space")
    budget = int(_json_block(request.prompt, "meta")["trials"])
    return {"issues": critique(space, budget)}


def offline_provider(**kwargs: Any) -> OfflineProvider:
    provider = OfflineProvider(**kwargs)
    provider.register("researcher", offline_researcher)
    provider.register("architect", offline_architect)
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
    # compared as times of the trading session: on forex a 20:00 window end is the evening before a 16:55 flat
    if window_end and flat and _session_minute(window_end, spec.instrument.type) > _session_minute(flat, spec.instrument.type):
        issues.append({"severity": "warning", "message": f"entries allowed until {window_end} but flat at {flat}"})
    for item in (space.provenance or {}).get("unmapped") or []:
        if isinstance(item, dict):
            issues.append({"severity": "info", "message": f"not mapped: {item.get('clause')!r} ({item.get('reason')})"})
    return issues


def _session_minute(clock: str, instrument_type: InstrumentType) -> int:
    t = dt.time.fromisoformat(clock)
    return clock_session_minute(t.hour * 60 + t.minute, instrument_type)


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

    def validate(self, space_dict: dict[str, Any], text: str | None = None) -> Validation:
        """Schema, the clause record against the idea ``text`` (when given), then the dry run."""
        try:
            space = SpecSpace.model_validate(space_dict)
            check_space(space)
        except (ValidationError, ValueError) as exc:
            return Validation(False, None, f"validation: {exc}")
        if text is not None:
            problems = check_clause_record(space_dict, text)
            if problems:
                return Validation(False, space, "clause record: " + "; ".join(problems))
        if self.dry_run is None:
            return Validation(True, space, None)
        try:
            metrics = self.dry_run(space)
        except Exception as exc:  # the runtime error is what the fixer needs to see
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return Validation(False, space, f"dry-run backtest: {detail}")
        if not metrics.get("n_trades"):
            spec = space.build(space.suggest(DefaultSource(space)))
            sessions = int(metrics.get("sessions", 0))
            looks = [int(n) for e in (spec.entry.long, spec.entry.short) if e
                     for n in re.findall(r"\b(?:sma|ema|rsi|highest|lowest)\(\w+, (\d+)\)", e)]
            hint = (f"; its longest look-back ({max(looks)} daily bars) needs more sessions than the data holds"
                    if spec.timeframe == "1d" and looks and max(looks) >= sessions else "")
            return Validation(False, space, (
                f"dry-run backtest: 0 trades on {spec.instrument.symbol} in {sessions} session(s) from "
                f"{space.data.start} at the default parameters: the entry never fires (or every entry is filtered "
                f"out){hint}; a space that cannot trade is not written"), metrics)
        return Validation(True, space, None, metrics)

    def seed_idea(self, text: str, *, source: str, index: int) -> SeedOutcome:
        title = next((line.strip() for line in text.splitlines() if line.strip()), "idea")[:120]
        name = slugify(title)
        outcome = SeedOutcome(source=source, index=index, title=title, accepted=False)
        research = self._ask("researcher", RESEARCHER_SYSTEM, f"<idea>\n{json.dumps(text)}\n</idea>",
                             RESEARCH_SCHEMA, "research_summary").parsed
        meta = {"name": name, "description": title, "trials": self.trials}
        schema = architect_schema()
        base_prompt = (
            f"<meta>\n{json.dumps(meta)}\n</meta>\n<research>\n{json.dumps(research)}\n</research>\n"
            f"<idea>\n{json.dumps(text)}\n</idea>\n<clauses>\n{numbered_clauses(text)}\n</clauses>\n"
            f"Instruments the idea names: {', '.join(named_symbols(text)) or 'none'}."
        )
        answer = self._ask("architect", ARCHITECT_SYSTEM + render_catalogue(), base_prompt, schema, "spec_space")
        candidate = answer.parsed
        offline = self.provider.name == "offline"
        if candidate.get("rejected"):
            outcome.attempts = 1
            outcome.errors += [f"rejected: {p}" for p in candidate.get("problems") or []]
            outcome.unmapped = list(candidate.get("unmapped") or [])
            outcome.errors += [f"not mapped: {u['clause']!r} ({u['reason']})" for u in outcome.unmapped]
            return outcome
        for attempt in range(self.max_fixes + 1):
            outcome.attempts = attempt + 1
            candidate = {**candidate, "name": name}
            check = self.validate(candidate, text)
            if check.ok:
                outcome.accepted, outcome.space, outcome.dry_run = True, check.space, check.dry_run
                break
            outcome.errors.append(check.error or "unknown error")
            if offline:  # a rule-based reading cannot repair itself: reject, never write a guess
                outcome.unmapped = list((candidate.get("provenance") or {}).get("unmapped") or [])
                break
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


def architect_schema() -> dict[str, Any]:
    """The space's JSON schema with the clause record required in its provenance."""
    schema = SpecSpace.model_json_schema()
    schema["properties"]["provenance"] = CLAUSE_RECORD_SCHEMA
    schema["required"] = sorted({*schema.get("required", []), "provenance"})
    return schema


def provenance(outcome: SeedOutcome, *, provider: LLMProvider, text: str, calls: list[LLMResult]) -> dict[str, Any]:
    """What produced a space: never keys, only names, models and hashes."""
    synthetic = bool(outcome.dry_run and outcome.dry_run.get("synthetic_data"))
    return {
        **({"dry_run_data": "SYNTHETIC: generated for this instrument by --synth-missing, not market data"}
           if synthetic else {}),
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
    header = ("# Written by `search seed`" + (" with the OFFLINE provider (deterministic rule-based clause "
              "mapping, no language model)" if prov.get("offline") else f" with {prov['provider']}") + f".\n# Source: "
              f"{prov['source']} idea {prov['idea_index']}: {prov['idea_title']}\n"
              + ("# The dry run used SYNTHETIC data (--synth-missing), not market data.\n"
                 if prov.get("dry_run_data") else ""))
    path = out_dir / f"{space.name}.yaml"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None))
    return path
