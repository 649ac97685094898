"""Reading an idea's text: its clauses (records), the instruments it names, and how it is cut into
split_sentences and clauses. The rules that map clauses to spec fields are in :mod:`seeds.idea_rules`;
:func:`seeds.idea_parser.parse_idea` puts the two together."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from seeds.providers._extract import _NOT_TICKERS
from spec_space.instruments import FUTURES

# --------------------------------------------------------------------------- records


@dataclass
class Clause:
    """One piece of the idea's text and what became of it."""

    text: str
    kind: str = ""  # instrument, option_leg, staged, timeframe, window, days, session, entry, exit, sizing, limit
    fields: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reason: str | None = None  # why it is not mapped

    @property
    def mapped(self) -> bool:
        return bool(self.fields)

    def record(self) -> dict[str, Any]:
        if self.mapped:
            out: dict[str, Any] = {"clause": self.text, "kind": self.kind, "fields": sorted(set(self.fields))}
            if self.notes:
                out["notes"] = self.notes
            return out
        return {"clause": self.text, "reason": self.reason or "no catalogue block recognised in it"}


@dataclass
class ParsedIdea:
    title: str
    symbol: str | None
    asset_class: str | None
    named_symbols: list[str]
    timeframe: str
    clauses: list[Clause]
    space: dict[str, Any] | None
    problems: list[str]

    @property
    def rejected(self) -> bool:
        return self.space is None

    def clause_map(self) -> list[dict[str, Any]]:
        return [c.record() for c in self.clauses if c.mapped]

    def unmapped(self) -> list[dict[str, Any]]:
        return [c.record() for c in self.clauses if not c.mapped]


# --------------------------------------------------------------------------- instruments

PAIR_RE = re.compile(r"(?<![\w/])((?:EUR|GBP|AUD|NZD|USD|CAD|CHF|XAU|XAG)/?(?:USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD))\b")
ROOT_RE = re.compile(r"(?<![\w/])/?(" + "|".join(sorted(FUTURES, key=len, reverse=True)) + r")(?:[FGHJKMNQUVXZ]\d{1,2})?\b")
TICKER_RE = re.compile(r"(?<![\w/$.])([A-Z]{2,5})\b")
#: capitalised prose, indicators, days, places and units that are never an instrument
NOT_INSTRUMENTS = _NOT_TICKERS | frozenset({
    "IDEA", "LONG", "SHORT", "ATR", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN", "ORH", "ORL", "UK",
    "NYSE", "CME", "LDN", "GMT", "BST", "CET", "DTE", "OPEX", "FOMC", "CPI", "NFP", "ETF", "FX", "HOD", "LOD",
    "PDH", "PDL", "VAH", "VAL", "POC", "TP1", "TP2", "RSI", "VWAP", "EMA", "SMA", "ORB", "MAX", "MIN", "STOP",
    "NOT", "ONLY", "NEW", "YORK", "ASIA", "ASIAN", "LONDON", "OK", "I", "A", "MY", "IM", "DONT", "WAIT",
    "GTC", "MOC", "MOO", "BTO", "STC", "STO", "DAY", "AVG", "VOL", "RVOL", "EPS", "GDP", "USA", "EU", "FED",
})
_INDICES = frozenset({"SPX", "NDX", "RUT", "VIX", "DJI"})


def named_symbols(text: str) -> list[str]:
    """Instruments the text names: forex pairs, futures roots, stock tickers (first-seen order)."""
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for regex in (PAIR_RE, ROOT_RE, TICKER_RE):
        for m in regex.finditer(text):
            if any(a <= m.start(1) < b for a, b in taken):
                continue
            symbol = m.group(1).replace("/", "")
            if regex is TICKER_RE and (symbol in NOT_INSTRUMENTS or symbol in FUTURES):
                continue
            taken.append((m.start(), m.end()))
            found.append((m.start(1), symbol))
    seen: dict[str, None] = {}
    for _, symbol in sorted(found):
        seen.setdefault(symbol, None)
    return list(seen)


_OPTION_WORDS = re.compile(r"\b(calls?|puts?|dte|0dte|delta|premium|strikes?|expir\w*|options?|weeklies|weekly)\b", re.I)
_FOREX_WORDS = re.compile(r"\b(pips?|forex|fx)\b", re.I)
_FUTURE_WORDS = re.compile(r"\b(futures?|micros?|e-?mini|contracts? of)\b", re.I)


def asset_class(text: str, symbols: list[str]) -> tuple[str | None, str | None, str]:
    """(asset class, the instrument traded, the words that decided)."""
    pairs = [s for s in symbols if PAIR_RE.fullmatch(s)]
    roots = [s for s in symbols if s in FUTURES]
    stocks = [s for s in symbols if s not in pairs and s not in roots and s not in _INDICES]
    options = _OPTION_WORDS.search(text)
    if roots:
        return "future", roots[0], f"futures root {roots[0]}"
    if pairs:
        return "forex", pairs[0], f"forex pair {pairs[0]}"
    if stocks and options:
        return "option", stocks[0], f"option words ('{options.group(0)}') on {stocks[0]}"
    if stocks:
        return "stock", stocks[0], f"ticker {stocks[0]}"
    indices = [s for s in symbols if s in _INDICES]
    if indices:
        return None, None, (f"names only the index {indices[0]}, which the farm cannot trade (no index bars or "
                            "index options in the store)")
    if _FOREX_WORDS.search(text):
        return "forex", None, "forex words but no pair named"
    if _FUTURE_WORDS.search(text):
        return "future", None, "futures words but no known root named"
    return None, None, "no ticker, futures root or forex pair named"


# --------------------------------------------------------------------------- clause splitting


def split_sentences(body: str) -> Iterator[tuple[int, str]]:
    """(offset, sentence) pairs; a decimal point (1.5, $0.10) does not end a sentence."""
    start = 0
    for m in re.finditer(r"[.!?](?=\s|$)|\n", body):
        piece = body[start:m.end()]
        if piece.strip():
            yield start + len(piece) - len(piece.lstrip()), piece.strip()
        start = m.end()
    if body[start:].strip():
        piece = body[start:]
        yield start + len(piece) - len(piece.lstrip()), piece.strip()


_FRAGMENT_BREAK = re.compile(r",\s+|;\s+")


def split_fragments(sentence: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _FRAGMENT_BREAK.finditer(sentence):
        if sentence[start:m.start()].strip(" .,"):
            spans.append((start, m.start()))
        start = m.end()
    if sentence[start:].strip(" .,()"):
        spans.append((start, len(sentence)))
    return spans


