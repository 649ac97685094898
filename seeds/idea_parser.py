"""A deterministic, rule-based reader of trading ideas: clause by clause onto the catalogue.

The offline provider is what a user without a key sees first, so it must keep the idea or say
what it could not keep. :func:`parse_idea` reads one idea the way the trader writes them (see
``seeds/strat_ideas*.txt``) and builds a spec space from catalogue blocks only:

* the idea is cut into **clauses** (sentences, then their comma / semicolon parts);
* **rules** run over whole sentences (a rule needs the sentence's context: "when AMD rises 1.5%,
  or the premium is up 15%, convert to a vertical ...") and each hit records the text it read and
  the spec fields it set;
* every clause that a hit touched is **mapped** (clause -> fields, in the space's provenance);
  every other clause is **not mapped**, with the reason (a rule may also name a clause it
  recognised but cannot express, e.g. a gap or a benchmark comparison);
* every number the rules read becomes a search parameter with a range around it, except counts
  the trader fixed (contracts, trades per day, indicator periods of a filter);
* the instrument is a ticker, futures root or forex pair the text names, never a capitalised word
  of prose; no instrument, no entry rule, or an unmapped clause that reads as an entry rule means
  the idea is **rejected** (:attr:`ParsedIdea.rejected`) and no space is written.

Nothing is invented: a block the text does not ask for is not in the space (costs and the data
window are the farm's defaults and are recorded as such).
"""

from __future__ import annotations

import re
from typing import Any

from seeds.idea_rules import RULES, Hit, SpaceBuilder, finish_zone
from seeds.idea_text import Clause, ParsedIdea, asset_class, named_symbols, split_fragments, split_sentences

#: a clause that reads like an entry rule: if it stays unmapped, the idea is rejected
CORE = re.compile(r"\b(go\s+long|go\s+short|enter\w*|entry|entries|buy(?!\s+and\s+hold)|long\s+(?:on|when|if)|"
                  r"short\s+(?:on|when|if)|crosses|breaks?\s+(?:above|below|out))\b", re.I)


def split_clauses(text: str) -> list[str]:
    """The idea's clauses as :func:`parse_idea` records them: the title line, then each sentence's comma
    and semicolon parts. The validator asks a language model's clause record for exactly these."""
    lines = text.strip().splitlines()
    if not lines:
        return []
    out = [lines[0].strip()]
    for _, sentence in split_sentences("\n".join(lines[1:]) or lines[0]):
        out += [sentence[lo:hi].strip(" ,;") for lo, hi in split_fragments(sentence)]
    return out

#: farm defaults a space needs and the idea does not give; recorded so nobody mistakes them for the idea
DATA_WINDOW = {"start": "2024-01-02", "end": "2024-06-28"}
DAILY_WINDOW = {"start": "2022-01-03", "end": "2024-06-28"}


def parse_idea(text: str, *, name: str | None = None) -> ParsedIdea:
    """Read one idea; build its space unless it must be rejected (see :attr:`ParsedIdea.problems`)."""
    lines = [line for line in text.strip().splitlines()]
    title = lines[0].strip() if lines else ""
    body = "\n".join(lines[1:])
    symbols = named_symbols(text)
    asset, symbol, why = asset_class(text, symbols)
    clauses: list[Clause] = [Clause(title, "title", ["description"])]
    problems: list[str] = []
    if asset is None or symbol is None:
        problems.append(f"no instrument: {why}")
    b = SpaceBuilder(text, asset or "stock", symbol or "?")
    if symbol is not None:
        clauses[0].notes.append(f"asset class {asset}: {why}")
        others = [s for s in symbols if s != symbol]
        if others:
            clauses[0].notes.append(f"also named: {', '.join(others)}; a space trades one instrument, so this one "
                                    f"trades {symbol} (seed the others as ideas of their own)")
    # a one-line idea is all body: its title is its first sentence too
    sentences = [(title, True)] + [(s, False) for _, s in split_sentences(body or title)]
    hits: list[list[Hit]] = [[] for _ in sentences]
    if symbol is not None:
        for rule in RULES:
            for n, (sentence, is_title) in enumerate(sentences):
                if not (is_title and not body):  # a one-line idea is read once, as its body
                    hits[n].extend(rule(b, sentence))
        finish_zone(b)
    for n, (sentence, is_title) in enumerate(sentences):
        if is_title:
            for hit in hits[n]:
                clauses[0].fields.extend(hit.fields)
                if hit.note:
                    clauses[0].notes.append(hit.note)
            continue
        for lo, hi in split_fragments(sentence):
            fragment = Clause(sentence[lo:hi].strip(" ,;"))
            for hit in hits[n]:
                if hit.start < hi and hit.end > lo:
                    if hit.unmapped_reason:
                        fragment.reason = hit.unmapped_reason
                        continue
                    if fragment.kind in ("", "instrument"):  # naming the instrument is the weakest reading
                        fragment.kind = hit.kind
                    fragment.fields.extend(hit.fields)
                    if hit.note and hit.note not in fragment.notes:
                        fragment.notes.append(hit.note)
            if fragment.reason and fragment.kind in ("", "instrument"):
                fragment.fields, fragment.kind, fragment.notes = [], "", []  # naming the instrument is not its rule
            if fragment.reason and fragment.fields:
                fragment.notes.append("also: " + fragment.reason)
                fragment.reason = None
            clauses.append(fragment)
    space = None
    if symbol is not None:
        if not b.entry_found:
            problems.append("no entry rule mapped onto the catalogue")
        core = [c.text for c in clauses[1:] if not c.mapped and CORE.search(c.text)]
        problems += [f"entry clause not mapped: {c!r}" for c in core]
        if not problems:
            space = _assemble(b, title, name or "idea", clauses)
    return ParsedIdea(title, symbol, asset, symbols, b.timeframe or ("1min" if asset != "forex" else "1h"),
                      clauses, space, problems)


def _and(parts: list[str]) -> str:
    return " and ".join(f"({p})" if " or " in p else p for p in parts)


def _assemble(b: SpaceBuilder, title: str, name: str, clauses: list[Clause]) -> dict[str, Any]:
    spec = b.spec
    tf = b.timeframe or "1min"
    spec.update(name=name, description=title, timeframe=tf)
    if b.long_only or not b.short:
        b.short = []
    long_ = _and(b.long + b.side_filters.get("long", []) + b.filters) if b.long else None
    short = _and(b.short + b.side_filters.get("short", []) + b.filters) if b.short else None
    spec["direction"] = "both" if long_ and short else "long" if long_ else "short"
    spec["entry"].update({k: v for k, v in (("long", long_), ("short", short)) if v})
    if b.exit_long and spec["direction"] != "short":
        spec["exits"]["exit_long"] = " or ".join(b.exit_long)
    if b.exit_short and spec["direction"] != "long":
        spec["exits"]["exit_short"] = " or ".join(b.exit_short)
    if spec["instrument"]["type"] == "option":
        leg = spec["instrument"]["legs"][0]
        if leg["right"] == "auto" and spec["direction"] == "long":
            leg["right"] = "call"
    if not spec["sizing"]:
        spec.pop("sizing")
    elif spec["sizing"].get("mode") == "risk" and "stop_loss" not in spec["exits"]:
        spec["sizing"]["mode"] = "fixed"
        spec["sizing"].pop("risk_pct", None)
    daily = tf == "1d"
    out = {
        "name": name,
        "description": title,
        "data": DAILY_WINDOW if daily else DATA_WINDOW,
        "walk_forward": ({"scheme": "anchored", "train_days": 250, "test_days": 60, "embargo_days": 1, "folds": 3,
                          "holdout_days": 60} if daily else
                         {"scheme": "rolling", "train_days": 40, "test_days": 10, "embargo_days": 1, "folds": 6}),
        "objectives": [{"metric": "sharpe", "direction": "maximize"},
                       {"metric": "max_drawdown", "direction": "minimize"}],
        "constraints": [{"metric": "n_trades", "op": ">=", "value": 3 if daily else 10}],
        "params": b.params,
        "spec": spec,
        "provenance": {
            "clause_map": [c.record() for c in clauses if c.mapped],
            "unmapped": [c.record() for c in clauses if not c.mapped],
            "farm_defaults": ["data window", "walk_forward", "objectives", "constraints", "costs (none given)",
                              "session: regular"],
        },
    }
    for clause in clauses:  # a side the space does not trade (a long-only option) is no field of it
        kept = [f for f in clause.fields if has_path(out, f)]
        if clause.fields and not kept:
            clause.reason = f"sets {', '.join(sorted(set(clause.fields)))}, which this {spec['direction']}-only space does not use"
        clause.fields = kept
    out["provenance"]["clause_map"] = [c.record() for c in clauses if c.mapped]
    out["provenance"]["unmapped"] = [c.record() for c in clauses if not c.mapped]
    if spec["instrument"]["type"] == "option" and not any("legs[0].value" in f for c in clauses for f in c.fields):
        out["provenance"]["farm_defaults"].append("option strike: delta 0.5 (the idea names none)")
    return out


def has_path(space: dict[str, Any], path: str) -> bool:
    """Whether a clause-map field (``exits.stop_loss.pct``, ``instrument.legs[0].dte``, ``params.x``,
    ``description``) exists in a space dict."""
    if path in ("description", "name"):
        return True
    path = path.removeprefix("spec.")  # a model may write the full path
    node: Any = space
    parts = [p for p in re.split(r"\.|\[(\d+)\]", path) if p]
    if parts and parts[0] != "params":
        node = space.get("spec", {})
    for part in parts:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True
