"""The clause record every seeded space carries, and the validator's check of it.

Whoever writes a space (the offline reader or a language model) records in ``provenance`` what
became of each clause of the idea: ``clause_map`` (clause -> the spec fields or ``params.*`` it set)
and ``unmapped`` (clause -> why not). The validator checks that record against the idea itself:

* every clause of :func:`seeds.idea_parser.split_clauses` is in one of the two lists;
* every field named in ``clause_map`` exists in the space;
* no clause that reads as an entry rule is left unmapped;
* the instrument is one the idea names (never a word of prose, never a stand-in ticker).

Each failure is one sentence naming the clause, so a model that dropped a clause is sent back with
that clause quoted.
"""

from __future__ import annotations

import re
from typing import Any

from seeds.idea_parser import CORE, has_path, named_symbols, split_clauses

CLAUSE_RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "what became of each clause of the idea (the numbered clauses in the prompt)",
    "properties": {
        "clause_map": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "clause": {"type": "string", "description": "the clause, quoted from the idea"},
                    "fields": {"type": "array", "items": {"type": "string"},
                               "description": "spec fields it set (exits.stop_loss.pct) or params.<name>"},
                },
                "required": ["clause", "fields"],
            },
        },
        "unmapped": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"clause": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["clause", "reason"],
            },
        },
    },
    "required": ["clause_map", "unmapped"],
}


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w%$:.]+", " ", text.lower()).split()).strip(" .")


def numbered_clauses(text: str) -> str:
    return "\n".join(f"{n}. {c}" for n, c in enumerate(split_clauses(text), 1))


def check_clause_record(space: dict[str, Any], text: str) -> list[str]:
    """Problems with ``space``'s clause record and instrument for the idea ``text`` (empty: all good)."""
    problems: list[str] = []
    record = space.get("provenance") or {}
    mapped = [m for m in record.get("clause_map") or [] if isinstance(m, dict)]
    unmapped = [u for u in record.get("unmapped") or [] if isinstance(u, dict)]
    symbol = str((space.get("spec") or {}).get("instrument", {}).get("symbol", "")).upper().removeprefix("C:")
    named = named_symbols(text)
    if symbol.replace("/", "") not in named:
        problems.append(f"instrument {symbol or '(none)'!r} is not named in the idea (it names "
                        f"{', '.join(named) or 'no ticker, futures root or forex pair'}); trade the idea's own "
                        "instrument or reject the idea")
    if not mapped and not unmapped:
        problems.append("provenance.clause_map / provenance.unmapped missing: record what became of every clause")
        return problems
    covered_mapped = [_norm(str(m.get("clause", ""))) for m in mapped]
    covered_unmapped = [_norm(str(u.get("clause", ""))) for u in unmapped]
    for n, clause in enumerate(split_clauses(text), 1):
        key = _norm(clause)
        if not key:
            continue
        in_mapped = any(key in c or (c and c in key) for c in covered_mapped)
        in_unmapped = any(key in c or (c and c in key) for c in covered_unmapped)
        if not in_mapped and not in_unmapped:
            problems.append(f"clause {n} {clause!r} is in neither provenance.clause_map nor provenance.unmapped: "
                            "map it onto spec fields or list it as unmapped with the reason")
        elif not in_mapped and n > 1 and CORE.search(clause):
            problems.append(f"clause {n} {clause!r} reads as an entry rule but is unmapped: map it onto the "
                            "catalogue's signals or reject the idea")
    for m in mapped:
        fields = [str(f) for f in m.get("fields") or []]
        if not fields:
            problems.append(f"clause {m.get('clause')!r} is in clause_map with no fields")
        for f in fields:
            if not has_path(space, f):
                problems.append(f"clause {m.get('clause')!r} maps to {f!r}, which the space does not have")
    for u in unmapped:
        if not str(u.get("reason", "")).strip():
            problems.append(f"unmapped clause {u.get('clause')!r} gives no reason")
    return problems
