"""The offline architect: map an idea's facts onto a catalogue template, deterministically.

It cannot read, so it does what a careful junior would with a highlighter: pick the template the
idea's words point to, then put every number the text mentions into the parameter it belongs to
(the default) with a search range around it. Everything else stays as in the shipped template.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

#: template key (from classify_idea) -> shipped space file
TEMPLATE_FILES: dict[str, str] = {
    "zrce": "zrce.yaml",
    "ghetto_spread": "ghetto_spread.yaml",
    "futures_breakout": "mes_orb.yaml",
    "forex_trend": "forex_trend.yaml",
    "sma_cross": "sma_cross.yaml",
}


@dataclass(frozen=True)
class Rule:
    """Put a number with one of ``units`` whose context matches ``context`` into ``param``."""

    param: str
    units: tuple[str, ...]
    context: str  # regular expression, case-insensitive
    convert: Callable[[float], Any] = float
    avoid: str | None = None  # context that disqualifies (e.g. "trailing" for a plain stop)


def _pct(value: float) -> float:
    return round(value / 100.0, 6)


def _clock(minutes: float) -> str:
    return f"{int(minutes) // 60:02d}:{int(minutes) % 60:02d}"


RULES: dict[str, tuple[Rule, ...]] = {
    "zrce": (
        Rule("zone_time", ("time",), r"up to|zone|draw", _clock),
        Rule("volume_ratio", ("", "x"), r"volume"),
        Rule("relaxed_ratio", ("", "x"), r"relax|second|enough"),
        Rule("trigger_buffer", ("$",), r"buffer|trigger|past"),
        Rule("take_profit", ("%",), r"\btp\b|take profit|target", _pct),
        Rule("stop_loss", ("%",), r"\bsl\b|stop", _pct, avoid=r"trail"),
        Rule("trail_activation", ("%",), r"\bup\b|once|activat", _pct, avoid=r"trailing stop of"),
        Rule("trailing_pct", ("%",), r"trail", _pct),
        Rule("max_hold", ("minutes",), r"hold|time exit", int),
        Rule("delta", ("delta",), r"delta"),
    ),
    "ghetto_spread": (
        Rule("delta", ("delta",), r"delta"),
        Rule("dte", ("dte",), r"dte", int),
        Rule("underlying_move", ("%",), r"rise|move|underlying|stock|shares", _pct, avoid=r"premium"),
        Rule("premium_up", ("%",), r"premium", _pct, avoid=r"take profit|stop"),
        Rule("width", ("$",), r"strike|width|higher"),
        Rule("take_profit", ("%",), r"take profit|\btp\b|target", _pct),
        Rule("stop_loss", ("%",), r"stop", _pct),
        Rule("max_hold", ("minutes",), r"time exit|after entry|hold", int),
    ),
    "futures_breakout": (
        Rule("buffer", ("points", "ticks"), r"buffer|beyond|past"),
        Rule("target_atr", ("R",), r"target", lambda r: round(1.5 * r, 4)),
        Rule("risk", ("%",), r"risk", _pct),
    ),
    "forex_trend": (
        Rule("fast", ("", "x"), r"\d+ ema crosses above|fast|\b\d+ ema\b", int),
        Rule("slow", ("", "x"), r"the \d+ ema(?! crosses)|slow", int),
        Rule("stop_pips", ("pips",), r"stop|pips"),
        Rule("target_atr", ("atr",), r"take profit|target"),
        Rule("risk", ("%",), r"risk", _pct),
    ),
    "sma_cross": (
        Rule("fast", ("", "day", "days", "x"), r"\d+ day sma crosses|fast|\bsma\b", int),
        Rule("slow", ("", "day", "days", "x"), r"above the \d+|slow|\bsma\b", int),
        Rule("stop_pct", ("%",), r"stop", _pct),
    ),
}


def template_text(key: str) -> str:
    name = TEMPLATE_FILES.get(key, TEMPLATE_FILES["sma_cross"])
    return resources.files("spec_space").joinpath(name).read_text()


def template_space(key: str) -> dict[str, Any]:
    return yaml.safe_load(template_text(key))


def _matches(number: Mapping[str, Any], rule: Rule) -> bool:
    if number["unit"] not in rule.units:
        return False
    context = str(number.get("context", ""))
    if rule.avoid and re.search(rule.avoid, context, re.IGNORECASE):
        return False
    return re.search(rule.context, context, re.IGNORECASE) is not None


def _range_around(param: dict[str, Any], value: Any) -> dict[str, Any]:
    """The parameter with ``value`` as its default and its range stretched to hold ``value`` with room."""
    out = dict(param)
    if "choice" in out:
        if value not in out["choice"]:
            out["choice"] = [value, *out["choice"]]
        out["default"] = value
        return out
    key = "int" if "int" in out else "float"
    low, high = out[key]
    if key == "int":
        value = int(round(value))
        low, high = min(low, max(1, value // 2)), max(high, value * 2)
    else:
        value = float(value)
        low = min(low, value / 2) if value > 0 else min(low, value)
        high = max(high, value * 2 if value > 0 else high)
        if out.get("step"):
            step = out["step"]
            low = round(step * (low // step), 10)
            value = round(step * round(value / step), 10)
            high = round(step * -(-high // step), 10)
    out[key] = [low, high]
    out["default"] = value
    return out


def _default_of(param: Mapping[str, Any]) -> Any:
    if param.get("default") is not None:
        return param["default"]
    if "choice" in param:
        return param["choice"][0]
    low, high = param.get("int") or param["float"]
    return (low + high) / 2


def _fill_sum(params: dict[str, Any], name: str, value: float, context: str) -> str:
    """Give a ``sum`` parameter the default ``value`` through its last term (the others keep theirs). A
    value below the other terms (an idea whose full volume ratio is under its relaxed one) leaves that
    term at zero: a sum orders its terms by construction and the idea cannot undo it."""
    *others, last = params[name]["sum"]
    rest = sum(float(_default_of(params[t])) for t in others)
    step = params[last].get("step")
    share = max(0.0, round(value - rest, 10))
    if step:
        share = round(step * round(share / step), 10)
    params[last] = _range_around(params[last], share)
    return f"{name} = {value!r} from '{context}' ({last} = {share!r})"


def fill_template(facts: Mapping[str, Any], *, name: str, description: str) -> tuple[dict[str, Any], list[str]]:
    """Build a spec-space dict from research facts; also return what was mapped (for provenance)."""
    key = str(facts.get("template") or "sma_cross")
    space = copy.deepcopy(template_space(key))
    notes: list[str] = [f"template {TEMPLATE_FILES.get(key, 'sma_cross.yaml')}"]
    numbers = list(facts.get("numbers") or [])
    used: set[int] = set()
    sums: list[tuple[str, float, str]] = []
    for rule in RULES.get(key, ()):
        if rule.param not in space["params"]:
            continue
        for index, number in enumerate(numbers):
            if index in used or not _matches(number, rule):
                continue
            value = rule.convert(float(number["value"]))
            used.add(index)
            if "sum" in space["params"][rule.param]:
                sums.append((rule.param, value, str(number["context"])))  # after its terms got their values
                break
            space["params"][rule.param] = _range_around(space["params"][rule.param], value)
            notes.append(f"{rule.param} = {value!r} from '{number['context']}'")
            break
    for name, value, context in sums:
        notes.append(_fill_sum(space["params"], name, value, context))
    symbols = [s for s in facts.get("symbols") or [] if isinstance(s, str)]
    instrument = space["spec"]["instrument"]
    wanted = _symbol_for(instrument["type"], symbols)
    if wanted and wanted != instrument["symbol"]:
        instrument["symbol"] = wanted
        notes.append(f"symbol {wanted}")
    if key == "sma_cross" and re.search(r"\bdaily\b|\bday\b", str(facts.get("title", "")) + " ".join(
            str(n.get("context", "")) for n in numbers), re.IGNORECASE):
        spec = space["spec"]
        spec["timeframe"] = "1d"
        spec["entry"].pop("window_start", None)
        spec["entry"].pop("window_end", None)
        spec["exits"].pop("eod_flat_time", None)
        # 6 months of sessions: 3 folds of 40 / 1 / 15, then an embargo and a 30-session holdout
        space["walk_forward"] = {"scheme": "anchored", "train_days": 40, "test_days": 15, "embargo_days": 1,
                                 "folds": 3, "holdout_days": 30}
        notes.append("daily bars")
    space["name"] = name
    space["description"] = description
    space["spec"]["name"] = name
    return space, notes


def _symbol_for(kind: str, symbols: list[str]) -> str | None:
    from spec_space.instruments import FUTURES

    for symbol in symbols:
        bare = symbol.upper().removeprefix("C:")
        if kind == "future" and bare in FUTURES:
            return bare
        if kind == "forex" and re.fullmatch(r"[A-Z]{6}", bare) and bare[3:] in ("USD", "JPY", "EUR", "GBP"):
            return bare
        if kind in ("stock", "option") and bare not in FUTURES and not re.fullmatch(r"(EUR|GBP|XAU|USD|AUD|NZD)[A-Z]{3}", bare):
            return bare
    return None
