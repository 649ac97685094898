"""Deterministic reading of plain-text strategy ideas: numbers with units, symbols, template class.

The offline provider cannot understand text, so it works from what can be recognised for sure:
numbers with their unit and the words around them, tickers, and keywords that name a strategy
family. Everything here is a pure function of the text.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple


class ExtractedNumber(NamedTuple):
    """A number found in text. ``unit`` is one of: ``%``, ``$``, ``time`` (value = minutes after
    midnight, so 10:30 -> 630), ``seconds``/``minutes``/``hours``/``days``/``weeks``, ``delta``
    (0..1, "25 delta" -> 0.25), ``dte`` (days to expiry, "0DTE" -> 0), ``pips``, ``points``,
    ``ticks``, ``atr`` (an ATR multiple), ``x`` (a multiplier like 1.5x), ``R`` (risk multiples),
    ``date`` (YYYYMMDD), or ``""`` for a bare number. ``context`` is the clause around it."""

    value: float
    unit: str
    context: str


_N = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"  # 1,000.5 / 15 / 0.25 / .25
_NUM = rf"(?<![\w.$])(?P<n>{_N})"  # not glued to a word (M2K, MESZ24) or a $ (handled apart)

_DURATION_UNITS = {
    "s": "seconds", "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds",
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "wks": "weeks", "week": "weeks", "weeks": "weeks",
}

# Alternatives in priority order: at one position the first that matches wins, so "7 DTE" is a
# DTE before "7" can be a bare number, and "7 days to expiration" before "7 days".
_PATTERNS: list[tuple[str, str]] = [
    ("date", r"(?<!\d)(?P<y>20\d{2})-(?P<mo>[01]\d)-(?P<d>[0-3]\d)(?!\d)"),
    ("time", r"(?<![\d:.])(?P<hh>[01]?\d|2[0-3]):(?P<mm>[0-5]\d)(?::[0-5]\d)?(?:\s*(?P<ap>[ap])\.?m\.?\b)?"),
    ("time_ampm", r"(?<![\w.:])(?P<hh2>1[0-2]|0?[1-9])\s*(?P<ap2>[ap])\.?m\b\.?"),
    ("dte", rf"{_NUM}\s*-?\s*(?:dte\b|days?\s+to\s+(?:expiration|expiry|expire)\b|day\s+expir\w*)"),
    ("dte_before", rf"\bdte\s*(?:of|=|:)?\s*(?P<n2>{_N})(?![\w.])"),
    ("delta", rf"{_NUM}\s*-?\s*(?:delta\b|Δ)"),
    ("delta_before", rf"(?:\bdelta|Δ)\s*(?:of|=|:|at|around|near|~)?\s*(?P<n2>{_N})(?![\w.])"),
    ("dollar", rf"\$\s*(?P<n2>{_N})(?![\w.])|{_NUM}\s*(?:dollars?|bucks)\b"),
    ("percent", rf"{_NUM}\s*(?:%|percent\b|pct\b)"),
    ("duration", rf"{_NUM}\s*-?\s*(?P<u>seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|[smhdw])\b"),
    ("pips", rf"{_NUM}\s*-?\s*pips?\b"),
    ("points", rf"{_NUM}\s*-?\s*(?:points?|pts?)\b"),
    ("ticks", rf"{_NUM}\s*-?\s*ticks?\b"),
    ("atr", rf"{_NUM}\s*[x×]?\s*-?\s*ATRs?\b"),
    ("x", rf"{_NUM}\s*[x×](?![\w])"),
    ("R", rf"{_NUM}\s*R\b"),
    ("plain", rf"{_NUM}(?![\w])"),
]
_UNIT_OF = {"time_ampm": "time", "dte_before": "dte", "delta_before": "delta", "percent": "%", "dollar": "$"}
_CASE_SENSITIVE = {"R", "atr"}  # "2 r" is not a risk multiple; ATR is written in capitals
_COMPILED = [
    (priority, name, re.compile(pattern, 0 if name in _CASE_SENSITIVE else re.IGNORECASE))
    for priority, (name, pattern) in enumerate(_PATTERNS)
]
_CLAUSE_BREAK = re.compile(r",\s|;|[.!?](?=\s|$)|\n")
_WORD = re.compile(r"\S+")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _value(kind: str, match: re.Match[str]) -> tuple[float, str]:
    g = match.groupdict()
    n = g.get("n") or g.get("n2")
    if kind == "date":
        return float(f"{g['y']}{g['mo']}{g['d']}"), "date"
    if kind in ("time", "time_ampm"):
        hour = int(g.get("hh") or g.get("hh2") or 0)
        minute = int(g.get("mm") or 0)
        ampm = (g.get("ap") or g.get("ap2") or "").lower()
        if ampm == "p" and hour < 12:
            hour += 12
        elif ampm == "a" and hour == 12:
            hour = 0
        return float(hour * 60 + minute), "time"
    assert n is not None
    value = _number(n)
    if kind == "duration":
        return value, _DURATION_UNITS[g["u"].lower()]
    if kind in ("delta", "delta_before") and value > 1:
        value /= 100.0  # "25 delta" means 0.25
    return value, _UNIT_OF.get(kind, "" if kind == "plain" else kind)


def _context(text: str, start: int, end: int, before_words: int = 6, after_words: int = 3) -> str:
    """The text around a match, within its clause: up to ``before_words`` words before it and
    ``after_words`` after, as written (so "EMA 20/50" stays "EMA 20/50")."""
    lo = max(0, start - 80)
    breaks = list(_CLAUSE_BREAK.finditer(text, lo, start))
    if breaks:
        lo = breaks[-1].end()
    words_before = list(_WORD.finditer(text, lo, start))
    if len(words_before) > before_words:
        lo = words_before[-before_words].start()
    hi = min(len(text), end + 60)
    stop = _CLAUSE_BREAK.search(text, end, hi)
    if stop:
        hi = stop.start()
    words_after = list(_WORD.finditer(text, end, hi))
    if len(words_after) > after_words:
        hi = words_after[after_words - 1].end()
    return " ".join(text[lo:hi].split())


def extract_numbers(text: str) -> list[ExtractedNumber]:
    """Every number in ``text`` with its unit and context, in order of appearance.

    >>> [(v, u) for v, u, _ in extract_numbers("TP 10%, SL $0.50, exit by 15:45, 0DTE, 0.25 delta")]
    [(10.0, '%'), (0.5, '$'), (945.0, 'time'), (0.0, 'dte'), (0.25, 'delta')]
    """
    # All candidate matches, then leftmost first and, at one position, the highest-priority
    # pattern; a match overlapping one already taken is dropped.
    candidates = sorted(
        (m.start(), priority, name, m) for priority, name, pattern in _COMPILED for m in pattern.finditer(text)
    )
    found: list[ExtractedNumber] = []
    taken_until = -1
    for start, _priority, name, match in candidates:
        if start < taken_until:
            continue
        value, unit = _value(name, match)
        found.append(ExtractedNumber(value, unit, _context(text, match.start(), match.end())))
        taken_until = match.end()
    return found


# ----------------------------------------------------------------------------- classification

#: Template keys and the words that point at them, in priority order: the first template with a
#: hit wins, so an idea that mentions zones on an MES chart is still a ZRCE idea.
TEMPLATE_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("zrce", re.compile(r"\bzones?\b|\bzrce\b|\bsecond[- ]chance\b", re.I)),
    (
        "ghetto_spread",
        re.compile(r"\bghetto\b|\bstaged\b|\bconvert\w*\s+(?:\w+\s+){0,4}?(?:spread|vertical)s?\b", re.I),
    ),
    (
        "futures_breakout",
        # roots are matched in capitals only: "es" and "nq" are not tickers in prose
        re.compile(r"(?<![\w/])/?(?:MES|MNQ|M2K|MGC|MYM|ES|NQ|RTY|YM|GC|CL)(?:[FGHJKMNQUVXZ]\d{1,2})?\b"
                   r"|(?i:\bfutures?\b)"),
    ),
    (
        "forex_trend",
        re.compile(
            r"(?i:\b(?:EUR|GBP|AUD|NZD|USD|CAD|CHF|JPY|XAU|XAG)/?(?:USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD)\b"
            r"|\bforex\b|\bfx\b|\bpips?\b)"
        ),
    ),
    ("sma_cross", re.compile(r"\bSMA\b|\bmoving[- ]averages?\b|\bgolden cross\b|\bdeath cross\b|\bMA cross", re.I)),
)
DEFAULT_TEMPLATE = "sma_cross"


def idea_keywords(text: str) -> dict[str, list[str]]:
    """For each template key, the keyword hits in ``text`` (explains a ``classify_idea`` result)."""
    return {key: [m.group(0) for m in pattern.finditer(text)] for key, pattern in TEMPLATE_KEYWORDS}


def classify_idea(text: str) -> str:
    """The template key an idea maps to: the first template (in ``TEMPLATE_KEYWORDS`` order) with a
    keyword hit, else ``"sma_cross"``."""
    for key, pattern in TEMPLATE_KEYWORDS:
        if pattern.search(text):
            return key
    return DEFAULT_TEMPLATE


# ----------------------------------------------------------------------------- symbols, ideas

_SYMBOL = re.compile(
    r"(?<![\w/])(?:"
    r"(?P<fx>(?:EUR|GBP|AUD|NZD|USD|CAD|CHF|JPY|XAU|XAG)/?(?:USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD))"
    r"|(?P<cfd>NAS100|US30|US500|SPX500|US2000)"
    r"|/?(?P<fut>(?:MES|MNQ|M2K|MGC|MYM|ES|NQ|RTY|YM|GC|CL)(?:[FGHJKMNQUVXZ]\d{1,2})?)"
    r"|(?P<eq>[A-Z]{2,5})"
    r")\b"
)
#: Capitalised words in trading prose that are not tickers.
_NOT_TICKERS = frozenset(
    {
        "TP", "SL", "DTE", "EMA", "SMA", "ATR", "ET", "EST", "EDT", "CT", "UTC", "AM", "PM", "OR", "ORB",
        "RTH", "ETH", "VWAP", "RSI", "MACD", "ZRCE", "OCO", "OTO", "ITM", "OTM", "ATM", "IV", "HV", "PNL",
        "PL", "BE", "RR", "USD", "EUR", "GBP", "JPY", "NY", "US", "EOD", "SOD", "AH", "MA", "BB", "ADX",
        "CCI", "OBV", "LOD", "HOD", "ID", "IF", "IT", "IS", "NO", "OK", "BUY", "SELL", "LONG", "SHORT",
        "CALL", "PUT", "CALLS", "PUTS", "AND", "THE", "FOR", "ON", "AT", "BY", "TO", "TF", "DD",
    }
)


def find_symbols(text: str) -> list[str]:
    """Tickers mentioned in ``text``, first-seen order, no duplicates (forex written ``EURUSD``)."""
    seen: dict[str, None] = {}
    for match in _SYMBOL.finditer(text):
        symbol = match.group(0).lstrip("/").replace("/", "")
        if match.lastgroup == "eq" and symbol in _NOT_TICKERS:
            continue
        seen.setdefault(symbol, None)
    return list(seen)


def split_ideas(text: str) -> list[str]:
    """Ideas in a ``strat_ideas*.txt`` file: blocks separated by a line holding only ``---``."""
    blocks = re.split(r"(?m)^\s*---\s*$", text)
    return [block.strip() for block in blocks if block.strip()]


def extract_facts(text: str) -> dict[str, Any]:
    """Everything the offline reading finds in one idea, as a JSON-ready dict."""
    template = classify_idea(text)
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return {
        "template": template,
        "matched_keywords": idea_keywords(text).get(template, []),
        "title": first_line[:120],
        "symbols": find_symbols(text),
        "numbers": [{"value": n.value, "unit": n.unit, "context": n.context} for n in extract_numbers(text)],
    }
