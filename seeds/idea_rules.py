"""The rules that read an idea's split_sentences onto catalogue blocks: each yields hits (the text it read,
the spec fields it set) and fills the space being built (:class:`SpaceBuilder`). See :mod:`seeds.idea_parser`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from seeds.idea_text import PAIR_RE, ROOT_RE, TICKER_RE
from spec_space.instruments import FUTURES, forex_pair

# --------------------------------------------------------------------------- the builder


def _clock(minutes: int) -> str:
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def _minutes(text: str) -> int:
    """'10:30' / '9:45' / '3pm' / '12am' -> minutes after midnight (a time without am/pm is as written)."""
    m = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?\s*([ap]\.?m\.?)?", text.strip(), re.I)
    if m is None:
        raise ValueError(text)
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    ampm = (m.group(3) or "").lower()[:1]
    if ampm == "p" and hour < 12:
        hour += 12
    elif ampm == "a" and hour == 12:
        hour = 0
    return hour * 60 + minute


_T = r"\d{1,2}:\d{2}(?:\s*[ap]\.?m\.?)?|\d{1,2}\s*[ap]\.?m\.?"  # a clock time, never a bare count
_N = r"\d+(?:\.\d+)?|\.\d+"
_DAYS = ["mon", "tue", "wed", "thu", "fri"]
_DAY_RE = r"(?:mon|tue|wed|thu|fri)[a-z]*"


@dataclass
class Hit:
    start: int
    end: int
    kind: str
    fields: list[str]
    note: str | None = None
    unmapped_reason: str | None = None


class SpaceBuilder:
    """Space under construction plus the idea-wide facts rules read."""

    def __init__(self, text: str, asset: str, symbol: str) -> None:
        self.text = text
        self.asset = asset
        self.symbol = symbol
        self.params: dict[str, Any] = {}
        self.spec: dict[str, Any] = {"instrument": {"type": asset, "symbol": symbol}, "entry": {}, "exits": {},
                                     "sizing": {}}
        self.long: list[str] = []  # conjunctive parts of entry.long
        self.short: list[str] = []
        self.filters: list[str] = []  # and-ed into both sides
        self.side_filters: dict[str, list[str]] = {}  # and-ed into one side
        self.exit_long: list[str] = []
        self.exit_short: list[str] = []
        self.timeframe: str | None = None
        self.open_minutes = 9 * 60 + 30 if asset in ("stock", "option", "future") else None
        self.range_end: str | None = None  # '$range_end' once an opening / session range is defined
        self.range_name = "range"
        self.stop: tuple[str, float, str] | None = None  # (level kind, value, param name)
        self.mirrored = False
        self.long_only = False
        self.entry_found = False
        self.ma: tuple[str, str] | None = None  # (fast, slow) of a moving-average cross
        self.zone_breakout = False  # the ZRCE parts, joined by finish_zone once every sentence was read
        self.zone_ratio = 1.0
        self.zone_relaxed: float | None = None
        self.zone_buffer = "0.0"

    def side(self, name: str) -> list[str]:
        return self.long if name == "long" else self.short

    # -- parameters: a range around every number ------------------------------------------------
    def number(self, name: str, value: float, *, integer: bool = False, low: float | None = None,
               high: float | None = None, step: float | None = None) -> str:
        name = self._free(name)
        if integer:
            v = int(round(value))
            lo, hi = max(1, v // 2) if low is None else int(low), max(v * 2, v + 2) if high is None else int(high)
            self.params[name] = {"int": [min(lo, v), max(hi, v)], "default": v}
        else:
            v = float(value)
            lo = v / 2 if low is None else low
            hi = v * 2 if high is None else high
            param: dict[str, Any] = {"float": [round(min(lo, v), 6), round(max(hi, v), 6)], "default": round(v, 6)}
            if step:
                param["step"] = step
                param["float"] = [round(step * (param["float"][0] // step), 6), round(step * -(-param["float"][1] // step), 6)]
                param["default"] = round(step * round(v / step), 6)
            self.params[name] = param
        return "$" + name

    def clock(self, name: str, minutes: int, spread: int = 15, *, earliest: int = 0, latest: int = 24 * 60 - 1) -> str:
        """A time as a choice of itself and ``spread`` minutes either side, within [earliest, latest]."""
        name = self._free(name)
        values = [_clock(minutes)] + [_clock(minutes + d) for d in (-spread, spread) if earliest <= minutes + d <= latest]
        self.params[name] = {"choice": values, "default": values[0]}
        return "$" + name

    def _free(self, name: str) -> str:
        base, n = name, 2
        while name in self.params:
            name, n = f"{base}_{n}", n + 1
        return name


def _pct(text: str) -> float:
    return float(text) / 100.0


# Each rule reads one sentence (with the builder's state) and yields hits: spans of the sentence it read.
Rule = Callable[[SpaceBuilder, str], Iterator[Hit]]


def _hit(m: re.Match[str], kind: str, fields: list[str], note: str | None = None, group: int = 0) -> Hit:
    return Hit(m.start(group), m.end(group), kind, fields, note)


def r_instrument(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    for m in re.finditer(r"\b(micro(?:s| futures)?|e-?mini|futures?)\b", s, re.I):
        if b.asset == "future":
            yield _hit(m, "instrument", ["instrument.type"], f"'{m.group(0)}': a future ({b.symbol})")
    for regex in (PAIR_RE, ROOT_RE, TICKER_RE):
        for m in regex.finditer(s):
            if m.group(1).replace("/", "") == b.symbol:
                yield _hit(m, "instrument", ["instrument.symbol"], f"{b.symbol}: the instrument ({b.asset})", 1)
    if b.asset == "forex":
        for m in re.finditer(r"\b(?:forex|fx)\b", s, re.I):
            yield _hit(m, "instrument", ["instrument.type"])
    for m in re.finditer(r"\bshares?\b|\bstocks?\b", s, re.I):
        if b.asset == "stock":
            yield _hit(m, "instrument", ["instrument.type"])


def r_option_legs(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    if b.asset != "option":
        return
    leg = b.spec["instrument"].setdefault("legs", [{"right": "auto", "side": "buy", "dte": 0, "select": "delta",
                                                    "value": 0.5}])[0]
    for m in re.finditer(r"(?:\b(0)\s*dte\b|\b(\d+)\s*-?\s*dte\b|\b(\d+)\s*days?\s+to\s+expir\w*)", s, re.I):
        dte = int(next(g for g in m.groups() if g is not None))
        leg["dte"] = b.number("dte", dte, integer=True, low=max(0, dte // 2), high=max(1, dte * 2)) if dte else 0
        yield _hit(m, "option_leg", ["instrument.legs[0].dte"], "0DTE: fixed, the same-day expiry" if dte == 0 else None)
    for m in re.finditer(r"\bweekl(?:y|ies)\b", s, re.I):
        if not isinstance(leg["dte"], str) and leg["dte"] == 0:
            leg["dte"] = b.number("dte", 5, integer=True, low=1, high=7)
        yield _hit(m, "option_leg", ["instrument.legs[0].dte"], "weekly: the nearest expiry within a week (dte 5)")
    for m in re.finditer(rf"(?:\b({_N})\s*-?\s*delta\b|\bdelta\s*(?:of|=|:|~|around)?\s*({_N}))", s, re.I):
        value = float(m.group(1) or m.group(2))
        value = value / 100 if value > 1 else value
        leg["value"] = b.number("delta", value, low=max(0.05, value - 0.15), high=min(0.9, value + 0.15), step=0.05)
        leg["select"] = "delta"
        yield _hit(m, "option_leg", ["instrument.legs[0].select", "instrument.legs[0].value"])
    m_calls = re.search(r"\bcalls?\b[^.]*?\b(?:upside|long|up|bull\w*|above)\b", s, re.I)
    m_puts = re.search(r"\bputs?\b[^.]*?\b(?:downside|short|down|bear\w*|below)\b", s, re.I)
    if m_calls and m_puts:
        leg["right"] = "auto"
        b.mirrored = True
        yield _hit(m_calls, "option_leg", ["instrument.legs[0].right", "direction"], "calls on long signals")
        yield _hit(m_puts, "option_leg", ["instrument.legs[0].right", "direction"], "puts on short signals")
    for m in re.finditer(r"\b(buy|long)\s+(?:an?\s+|the\s+|\d+\s+)?(?:[\w.$]+\s+){0,4}?(call|put)s?\b", s, re.I):
        if not (m_calls and m_puts):
            leg["right"] = m.group(2).lower()
            b.long_only = True
        yield _hit(m, "option_leg", ["instrument.legs[0].right", "instrument.legs[0].side"])


def r_staged(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    """'convert to a vertical by selling the $1 higher strike' / 'sell a call 2.50 higher once the long call is up 20 %'."""
    if b.asset != "option":
        return
    conv = re.search(rf"(?:convert\w*\s+(?:it\s+)?(?:in)?to\s+a\s+(?:vertical|spread)[^,.]*?)?"
                     rf"\bsell(?:ing)?\s+(?:a|the|one)?\s*(?:call|put)?\s*(?:strike\s+)?\$?\s*({_N})\s*(?:points?\s+|dollars?\s+)?"
                     rf"(?:higher|lower|above|below|further|out|otm)\b(?:\s+strike)?", s, re.I)
    if conv is None:
        return
    width = float(conv.group(1))
    # strikes come in $0.50 or $1 steps from about $1 wide; a narrower width is searched without a step
    staged: dict[str, Any] = {"width": b.number("width", width, step=0.5 if width >= 1 else None)}
    yield _hit(conv, "staged", ["instrument.staged.width"])
    for m in re.finditer(rf"\b(?:{b.symbol}|underlying|stock|it)\s+(?:rises|moves|is up|goes up|runs)\s+({_N})\s*%", s, re.I):
        staged["underlying_move_pct"] = b.number("underlying_move", _pct(m.group(1)))
        yield _hit(m, "staged", ["instrument.staged.underlying_move_pct"])
    for m in re.finditer(rf"\b(?:premium|(?:long\s+)?(?:call|put)(?:\s+premium)?)\s+(?:is\s+)?up\s+({_N})\s*%", s, re.I):
        staged["premium_up_pct"] = b.number("premium_up", _pct(m.group(1)))
        yield _hit(m, "staged", ["instrument.staged.premium_up_pct"])
    for m in re.finditer(r"\bsame\s+expir\w*|\bonce\b|\bwhen\b|\bor\b", s, re.I):
        yield _hit(m, "staged", ["instrument.staged"])
    if "underlying_move_pct" not in staged and "premium_up_pct" not in staged:
        return
    staged["min_net_debit"] = 0.01
    b.spec["instrument"]["staged"] = staged
    b.spec["instrument"]["legs"][0]["side"] = "buy"


def r_timeframe(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    for m in re.finditer(r"\b(1|5|15)\s*-?\s*min(?:ute)?s?\s*(?:bars?|charts?|candles?|close|closes|timeframe)?", s, re.I):
        if re.search(r"bars?|charts?|candles?|close|timeframe", m.group(0), re.I):
            b.timeframe = f"{m.group(1)}min"
            yield _hit(m, "timeframe", ["timeframe"])
    for m in re.finditer(r"\b(?:1|one)\s*-?\s*h(?:ou)?r?\s*(?:chart|bars?|candles?)|\bhourly\b", s, re.I):
        b.timeframe = "1h"
        yield _hit(m, "timeframe", ["timeframe"])
    for m in re.finditer(r"\bdaily\b|\b\d+\s*-?\s*day\s+(?:sma|ema|ma|moving)", s, re.I):
        b.timeframe = "1d"
        yield _hit(m, "timeframe", ["timeframe"], None if "daily" in m.group(0).lower() else "a day-period average: daily bars")


def r_days(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    m = re.search(rf"\b(?:only\s+(?:on\s+)?|trade\s+)?({_DAY_RE})\s*(?:-|to|through|thru|–)\s*({_DAY_RE})\b", s, re.I)
    days: list[str] = []
    if m:
        first, last = _DAYS.index(m.group(1)[:3].lower()), _DAYS.index(m.group(2)[:3].lower())
        days = _DAYS[first:last + 1]
    else:
        m = re.search(rf"\b(?:no|skip|not on|except)\s+({_DAY_RE})(?:\s+(?:or|and)\s+({_DAY_RE}))?", s, re.I)
        if m:
            skip = {g[:3].lower() for g in m.groups() if g}
            days = [d for d in _DAYS if d not in skip]
        else:
            m = re.search(rf"\b(?:only\s+(?:on\s+)?)({_DAY_RE})(?:(?:,\s*|\s+and\s+|\s+or\s+)({_DAY_RE}))*", s, re.I)
            if m:
                days = [d for d in _DAYS if re.search(rf"\b{d}", m.group(0), re.I)]
    if m and days and "day_of_week(" + ", ".join(repr(d) for d in days) + ")" in b.filters:
        yield _hit(m, "days", ["entry.long", "entry.short"], f"day_of_week({', '.join(days)})")
    elif m and days:
        b.filters.append("day_of_week(" + ", ".join(repr(d) for d in days) + ")")
        yield _hit(m, "days", ["entry.long", "entry.short"], f"day_of_week({', '.join(days)})")


def r_session_range(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    """'Asian session range 00:00-07:00 London' (forex) -> opening_range_*(end in New York time)."""
    m = re.search(rf"\b(asian?|asia|london|overnight|globex)\s+(?:session\s+)?range\b[^.]*?({_T})\s*(?:-|to|–)\s*({_T})"
                  rf"(?:\s*(london|uk|gmt|ny|new york|et))?", s, re.I)
    if m is None:
        return
    start, end = _minutes(m.group(2)), _minutes(m.group(3))
    zone = (m.group(4) or "").lower()
    shift = -5 * 60 if zone in ("london", "uk", "gmt") else 0
    end_ny = (end + shift) % (24 * 60)
    b.range_end = b.clock("range_end", end_ny, 60)
    b.range_name = "session range"
    note = (f"range end {_clock(end)} {zone or 'exchange time'} = {_clock(end_ny)} New York"
            + (" (London is 5 h ahead except in the weeks the clocks change apart)" if shift else ""))
    if b.asset == "forex":
        note += (f"; the catalogue's session range starts at the forex day open (17:00 New York), so it also "
                 f"holds the bars from 17:00 New York to {_clock((start + shift) % 1440)} New York")
    yield Hit(m.start(), m.end(), "session", ["entry.long", "entry.short", "params.range_end"], note)


def r_opening_range(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    m = re.search(rf"(?:high\s+and\s+(?:the\s+)?low\s+of\s+)?(?:the\s+)?first\s+({_N})\s*(?:min(?:ute)?s?|m)\b"
                  rf"(?:\s+after\s+the\s+(?:{_T}\s+)?open)?", s, re.I)
    if m and b.open_minutes is not None:
        length = int(float(m.group(1)))
        b.range_end = b.clock("range_end", b.open_minutes + length, max(5, length // 3 // 5 * 5),
                              earliest=b.open_minutes + 5)
        b.range_name = "opening range"
        yield _hit(m, "window", ["params.range_end"], f"the first {m.group(1)} minutes from the 09:30 open")
        return
    m = re.search(rf"\b(?:zones?|range)\s+(?:off|from)\s+the\s+(?:morning|opening)\s+range[^.]*?(?:up\s+)?(?:to|until|till)\s+({_T})", s, re.I)
    if m:
        b.range_end = b.clock("zone_time", _minutes(m.group(1)), 30)
        b.range_name = "zone"
        yield _hit(m, "window", ["params.zone_time"], "zone = the session's range up to this time")
    m = re.search(r"\b(?:mark|draw)\s+the\s+(?:high\s+and\s+(?:the\s+)?low|range)\b", s, re.I)
    if m and b.range_end:
        yield _hit(m, "window", ["params." + b.range_end[1:]])


_MA = r"sma|ema|ma|(?:simple\s+|exponential\s+)?moving\s+average"


def _cross_ma(kind: str, period: str) -> str:
    return f"{kind.lower()}(close, {period})"


def r_moving_average(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    m = re.search(rf"\b(?:the\s+)?(\d+)\s*(?:-?\s*(?:day|period|bar|minute)\s+)?({_MA})\s+cross(?:es)?\s+(above|over|below|under)\s+"
                  rf"(?:the\s+)?(\d+)\s*(?:-?\s*(?:day|period|bar|minute)\s+)?({_MA}|one)?", s, re.I)
    if m is None:
        return
    kind = "ema" if re.match(r"ema|exp", m.group(2), re.I) else "sma"
    fast_n, slow_n = int(m.group(1)), int(m.group(4))
    fast = b.number("fast", fast_n, integer=True)
    slow = b.number("slow", slow_n, integer=True, low=max(fast_n + 1, slow_n // 2))
    slow_kind = "ema" if m.group(5) and re.match(r"ema|exp", m.group(5), re.I) else "sma" if m.group(5) and m.group(5).lower() != "one" else kind
    fast_e, slow_e = _cross_ma(kind, fast), _cross_ma(slow_kind, slow)
    up = m.group(3).lower() in ("above", "over")
    b.long.append(f"crosses_above({fast_e}, {slow_e})" if up else f"crosses_below({fast_e}, {slow_e})")
    b.entry_found = True
    b.ma = (fast_e, slow_e)
    yield _hit(m, "entry", ["entry.long", "params." + fast[1:], "params." + slow[1:]])
    named = re.search(r"\(?\b(?:golden|death)\s+cross\)?", s, re.I)
    if named:
        yield _hit(named, "entry", ["entry.long"], "the name of this cross")
    both = re.search(r"\b(?:and\s+)?(?:price|close)\s+(?:is\s+)?above\s+both\b", s, re.I)
    if both:
        b.long.append(f"close > {fast_e} and close > {slow_e}")
        yield _hit(both, "entry", ["entry.long"])
    opp = re.search(r"\bshort\s+(?:on\s+)?the\s+opposite(?:\s+cross)?|\bshort\s+on\s+the\s+reverse", s, re.I)
    if opp:
        b.short.append(f"crosses_below({fast_e}, {slow_e})")
        if both:
            b.short.append(f"close < {fast_e} and close < {slow_e}")
        yield _hit(opp, "entry", ["entry.short", "direction"], "mirrored: below both when price was above both")
    back = re.search(r"\b(?:sell|exit|close|out)\b[^.]*?\bcross(?:es)?\s+(?:back\s+)?(?:below|under|down)", b.text[b.text.find(s):], re.I)
    if back:
        b.exit_long.append(f"crosses_below({fast_e}, {slow_e})")


def r_price_ma(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    """'when QQQ crosses above the 20 EMA' / 'close below the 50 SMA'."""
    for m in re.finditer(rf"\b(?:(long|buy|short|sell)\b[^.,;]*?)?\b(?:price|close|it|{b.symbol})\s+(?:crosses|closes)\s+"
                         rf"(above|over|below|under)\s+the\s+(\d+)\s*(?:-?\s*(?:day|period|bar)\s+)?(sma|ema)\b", s, re.I):
        if b.ma:
            continue
        period = b.number("ma", int(m.group(3)), integer=True)
        ma = _cross_ma(m.group(4), period)
        up = m.group(2).lower() in ("above", "over")
        verb = m.group(1).lower() if m.group(1) else ("buy" if up else "sell")
        side = "long" if verb in ("long", "buy") or b.spec["instrument"].get("legs") else "short"
        b.side(side).append(f"crosses_above(close, {ma})" if up else f"crosses_below(close, {ma})")
        b.entry_found = True
        yield _hit(m, "entry", [f"entry.{side}", "params." + period[1:]])


def r_exit_cross_back(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    m = re.search(r"\b(?:sell|exit|close|out)\b[^.,;]*?\bcross(?:es)?\s+(?:back\s+)?(?:below|under|down)", s, re.I)
    if m and b.ma:
        yield _hit(m, "exit", ["exits.exit_long"])


def r_rsi(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    m = re.search(rf"\brsi\s*\(?\s*(\d+)?\s*\)?[^.]*?(?:below|under|dips?\s+(?:below|under|to)|<)\s*({_N})"
                  rf"(?:[^.]*?(?:back\s+)?(?:above|over|recovers?\s+(?:above|over)?|>)\s*({_N}))?", s, re.I)
    if m is None:
        return
    period = int(m.group(1) or 14)
    per = b.number("rsi_period", period, integer=True, low=2, high=max(4, period * 2))
    low = b.number("rsi_low", float(m.group(2)), low=max(1.0, float(m.group(2)) / 2), high=min(50.0, float(m.group(2)) * 2))
    if m.group(3):
        rec = b.number("rsi_recover", float(m.group(3)), low=max(1.0, float(m.group(3)) / 2),
                       high=min(70.0, float(m.group(3)) * 2))
        b.long.append(f"crosses_above(rsi(close, {per}), {rec}) and lowest(rsi(close, {per}), 5) < {low}")
        note = "a dip below the low level within the last 5 bars, then a cross back above the recovery level"
    else:
        b.long.append(f"crosses_below(rsi(close, {per}), {low})")
        note = None
    b.entry_found = True
    yield _hit(m, "entry", ["entry.long", "params.rsi_period", "params.rsi_low"], note)


def _buffer(b: SpaceBuilder, s: str) -> tuple[str | None, re.Match[str] | None]:
    m = re.search(rf"(?:buffer\s+(?:is\s+|of\s+)?\$?\s*({_N})|\$\s*({_N})\s+(?:past|beyond|above|below|buffer)"
                  rf"|({_N})\s*(ticks?|points?|pips?)\s+(?:past|beyond|above|below|through|buffer)"
                  rf"|\b(?:by|plus)\s+({_N})\s*(ticks?|points?|pips?))", s, re.I)
    if m is None:
        return None, None
    value = float(m.group(1) or m.group(2) or m.group(3) or m.group(5))
    unit = (m.group(4) or m.group(6) or "").lower()
    if unit.startswith("tick") and b.asset == "future":
        value *= FUTURES[b.symbol].tick_size
    elif unit.startswith("pip") and b.asset == "forex":
        value *= forex_pair(b.symbol).pip_size
    return b.number("buffer", value, low=0.0), m


def r_zone_breakout(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    if b.range_name != "zone":
        return
    m = re.search(r"\b(?:come\s+back|return\w*)\s+(?:in)?to\s+a\s+zone[^.]*?break\w*\s+out|\bbreak\w*\s+out\s+of\s+(?:it|the\s+zone)", s, re.I)
    if m:
        b.zone_breakout = True
        yield _hit(m, "entry", ["entry.long", "entry.short"], "zone_breakout(...): a close beyond the zone edge")
        after = re.search(rf"\bafter\s+({_T})", s, re.I)
        if after:
            yield _hit(after, "entry", ["params.zone_time"], "signals start once the zone is drawn")
    vr = re.search(rf"\bvolume\s+ratio\s+(?:of\s+)?({_N})", s, re.I)
    if vr:
        b.zone_ratio = float(vr.group(1))
        yield _hit(vr, "entry", ["params.volume_ratio"])
        avg = re.search(r"\bvs\.?\s+the\s+average\s+volume|or\s+i\s+don'?t\s+trust\s+it", s, re.I)
        if avg:
            yield _hit(avg, "entry", ["params.volume_ratio"])
    buf, bm = _buffer(b, s)
    if buf and bm:
        b.zone_buffer = buf
        yield _hit(bm, "entry", ["params." + buf[1:]])
        past = re.search(r"\bpast\s+the\s+zone\s+edge|so\s+i'?m\s+not\s+getting\s+faked[^.]*", s, re.I)
        if past:
            yield _hit(past, "entry", ["params." + buf[1:]])
    sc = re.search(rf"\bsecond\s+chance\b[^.]*?relaxed\s+volume[^.]*?({_N})\s+is\s+enough|\brelaxed\s+(?:volume\s+)?(?:ratio\s+)?(?:of\s+)?({_N})", s, re.I)
    if sc:
        b.zone_relaxed = float(sc.group(1) or sc.group(2))
        yield _hit(sc, "entry", ["params.relaxed_ratio"], "second_chance = 1")
        first = re.search(r"\bif\s+the\s+first\s+attempt\s+fails|the\s+second\s+time", s, re.I)
        if first:
            yield _hit(first, "entry", ["params.relaxed_ratio"])


def finish_zone(b: SpaceBuilder) -> None:
    if not b.zone_breakout or b.range_end is None:
        return
    full, relaxed, buf = b.zone_ratio, b.zone_relaxed, b.zone_buffer
    if relaxed is not None:
        rel = b.number("relaxed_ratio", relaxed, low=max(0.5, relaxed - 0.5), high=relaxed + 0.5, step=0.1)
        gap = b.number("volume_ratio_gap", max(0.0, round(full - relaxed, 6)), low=0.0, high=max(1.0, full - relaxed), step=0.1)
        b.params["volume_ratio"] = {"sum": [rel[1:], gap[1:]]}
        vr, second = "$volume_ratio", 1
    else:
        vr, rel, second = b.number("volume_ratio", full, low=max(0.5, full - 0.5), high=full + 1, step=0.1), None, 0
        rel = vr
    for side, direction in (("long", "up"), ("short", "down")):
        b.side(side).append(f"zone_breakout('{direction}', {b.range_end}, {buf}, {vr}, {rel}, 20, {second})")
    b.entry_found = True


def r_range_breakout(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    if b.range_end is None or b.range_name == "zone":
        return
    hi = f"opening_range_high({b.range_end})"
    lo = f"opening_range_low({b.range_end})"
    buf, bm = _buffer(b, s)
    plus, minus = (f" + {buf}", f" - {buf}") if buf else ("", "")
    if bm:
        yield _hit(bm, "entry", ["params." + buf[1:]])  # type: ignore[index]
    for m in re.finditer(r"\b(?:go\s+)?(long|short|buy|sell)\b[^,.;]*?\b(?:close|break\w*|move)\s+(above|below|over|under|through)"
                         r"\s+(?:the\s+)?(?:range|session|asian|opening|zone)?\s*(?:range\s+)?(high|low)?", s, re.I):
        up = m.group(2).lower() in ("above", "over") or (m.group(3) or "").lower() == "high"
        side = "long" if m.group(1).lower() in ("long", "buy") else "short"
        b.side(side).append(f"crosses_above(close, {hi}{plus})" if up else f"crosses_below(close, {lo}{minus})")
        b.entry_found = True
        yield _hit(m, "entry", [f"entry.{side}"])
    for m in re.finditer(r"(?:^|,\s*)(short|long)\s+on\s+a\s+(?:\d+-minute\s+)?close\s+(above|below)\s+the\s+range\s+(high|low)", s, re.I):
        side = m.group(1).lower()
        if not any(("crosses_below" if side == "short" else "crosses_above") in e for e in b.side(side)):
            b.side(side).append(f"crosses_below(close, {lo}{minus})" if side == "short" else f"crosses_above(close, {hi}{plus})")
        yield _hit(m, "entry", [f"entry.{side}"])
    for m in re.finditer(r"\b(?:trade|take)\s+(?:the\s+)?break\w*\s+(?:of\s+(?:the\s+)?(?:range|it)\s+)?(?:in\s+)?(?:either|both)\s+(?:way|direction)s?", s, re.I):
        b.long.append(f"crosses_above(close, {hi}{plus})")
        b.short.append(f"crosses_below(close, {lo}{minus})")
        b.entry_found = True
        yield _hit(m, "entry", ["entry.long", "entry.short"])
    for m in re.finditer(rf"\b(?:skip|no\s+trade|stand\s+aside)\b[^.]*?\brange\s+is\s+(?:wider|bigger|larger)\s+than\s+({_N})\s*(points?|pips?|ticks?|%)?", s, re.I):
        value, unit = float(m.group(1)), (m.group(2) or "").lower()
        if unit.startswith("pip") and b.asset == "forex":
            value *= forex_pair(b.symbol).pip_size
        if unit == "%":
            b.filters.append(f"{hi} - {lo} <= {b.number('max_range_pct', _pct(m.group(1)))} * close")
        else:
            b.filters.append(f"{hi} - {lo} <= {b.number('max_range', value)}")
        yield _hit(m, "limit", ["entry.long", "entry.short", "params.max_range"])


def r_vwap_entry(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    for m in re.finditer(r"\b(long|buy|short|sell)\b[^.,;]*?\b(reclaim\w*|cross\w*\s+(?:above|over|below|under)|(?:loses?|lost|rejects?\w*))\s+(?:the\s+)?vwap\b", s, re.I):
        side = "long" if m.group(1).lower() in ("long", "buy") else "short"
        verb = m.group(2).lower()
        above = verb.startswith("reclaim") or "above" in verb or "over" in verb
        b.side(side).append("crosses_above(close, vwap())" if above else "crosses_below(close, vwap())")
        b.entry_found = True
        yield _hit(m, "entry", [f"entry.{side}"])
    for m in re.finditer(r"\bonly\s+(?:take\s+|trade\s+)?(longs?|shorts?|buys?|sells?)\s+(?:when\s+)?(?:price\s+is\s+|it'?s\s+)?"
                         r"(above|below)\s+(?:the\s+)?vwap\b", s, re.I):
        side = "long" if m.group(1).lower().startswith(("long", "buy")) else "short"
        b.side_filters.setdefault(side, []).append(f"close {'>' if m.group(2).lower() == 'above' else '<'} vwap()")
        yield _hit(m, "limit", [f"entry.{side}"])


def r_prior_day(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    for m in re.finditer(r"\b(long|buy|short|sell)\b[^.,;]*?\b(?:break\w*|close\w*|cross\w*)\s+(above|over|below|under|through)\s+"
                         r"(?:the\s+)?(?:prior|previous|yesterday'?s?)\s*(?:day'?s?\s+)?(high|low)", s, re.I):
        side = "long" if m.group(1).lower() in ("long", "buy") else "short"
        fn = "prior_day_high()" if m.group(3).lower() == "high" else "prior_day_low()"
        up = m.group(2).lower() in ("above", "over") or (m.group(2).lower() == "through" and m.group(3).lower() == "high")
        b.side(side).append(f"crosses_above(close, {fn})" if up else f"crosses_below(close, {fn})")
        b.entry_found = True
        yield _hit(m, "entry", [f"entry.{side}"])


def r_gap(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    m = re.search(r"\bgaps?\s+(?:up|down)\b|\bgap\s+(?:fill|and\s+go)\b", s, re.I)
    if m:
        yield Hit(m.start(), m.end(), "entry", [], unmapped_reason=(
            "a gap needs the prior session's close; the catalogue has prior_day_high/low but no prior close"))


def r_timed_entry(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    m = re.search(rf"\benter\w*\s+(?:around|at|near)\s+({_T})", s, re.I)
    if m and not b.long and not b.short:
        t = _minutes(m.group(1))
        side = "short" if b.spec["instrument"].get("legs", [{}])[0].get("right") == "put" else "long"
        b.side(side).append(f"time_between('{_clock(t)}', '{_clock(t + 1)}')")
        b.entry_found = True
        yield _hit(m, "entry", [f"entry.{side}"], "a timed entry on the bar starting at this time (kept as written: "
                   "a one-minute window has no range)")


def r_windows(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    entry = b.spec["entry"]
    exits = b.spec["exits"]
    m = re.search(rf"\b(?:only\s+(?:take\s+)?(?:entries|trades?)|entries|trading\s+hours|trade\s+only|only)\s+(?:between|from)?\s*({_T})\s*(?:and|to|-|–)\s*({_T})", s, re.I)
    if m:
        a, z = _minutes(m.group(1)), _minutes(m.group(2))
        if z < a and z < 12 * 60 and not re.search(r"[ap]\.?m", m.group(2), re.I):
            z += 12 * 60
        entry["window_start"] = b.clock("window_start", a, 15) if a != b.open_minutes else _clock(a)
        entry["window_end"] = b.clock("window_end", z, 15, latest=16 * 60 if b.asset != "forex" else 24 * 60 - 1)
        yield _hit(m, "window", ["entry.window_start", "entry.window_end"])
        tz = re.search(r"new\s+york\s+time|\bny\b|\bet\b|(?:london\s+and\s+the\s+overlap)", s, re.I)
        if tz:
            yield _hit(tz, "window", ["entry.window_start"], "exchange time (New York)")
    m = re.search(rf"(?<!entries\s)(?<!trades\s)\bafter\s+({_T})", s, re.I)
    if m and re.search(r"\b(?:no|don'?t)\b[^.,;]*$", s[:m.start()], re.I):
        m = None  # "no new entries after 11:00" ends the window (below), it does not open it
    if m and "window_start" not in entry and b.range_name != "zone" and not re.search(r"minutes?\s+after", s[max(0, m.start() - 12):m.end()], re.I):
        entry["window_start"] = b.clock("window_start", _minutes(m.group(1)), 15)
        yield _hit(m, "window", ["entry.window_start"])
    m = re.search(rf"\b(?:no\s+(?:new\s+)?(?:entries|trades)|don'?t\s+enter)\s+after\s+({_T})", s, re.I)
    if m:
        entry["window_end"] = b.clock("window_end", _minutes(m.group(1)), 15)
        yield _hit(m, "window", ["entry.window_end"])
    for m in re.finditer(rf"\b(?:flat|out|exit\w*|close\s+(?:everything|it|all))\s+(?:by|at|before)\s+({_T})(?!\s*min)", s, re.I):
        if b.timeframe == "1d":
            continue
        exits["eod_flat_time"] = b.clock("flat_time", _minutes(m.group(1)), 15,
                                         latest=15 * 60 + 59 if b.asset != "forex" else 24 * 60 - 1)
        yield _hit(m, "exit", ["exits.eod_flat_time"])
    m = re.search(r"\b(?:flat|out|exit\w*|close\s+everything)\s+(?:before|into|by|at)\s+the\s+(?:close|bell|end\s+of\s+(?:the\s+)?day)", s, re.I)
    if m and b.timeframe != "1d":
        exits["eod_flat_time"] = "15:55" if b.asset != "forex" else "16:55"
        yield _hit(m, "exit", ["exits.eod_flat_time"], f"before the close = {exits['eod_flat_time']}")


def r_stop(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    exits = b.spec["exits"]
    m = re.search(rf"\b(?:stop(?:\s+loss)?|sl)\s+(?:at\s+|of\s+)?({_N})\s*(?:x\s*)?ATR\s*(?:\(?\s*(\d+)\s*\)?)?", s, re.I)
    if m:
        value, period = float(m.group(1)), int(m.group(2) or 14)
        exits["stop_loss"] = {"atr": b.number("stop_atr", value), "atr_period": period}
        b.stop = ("atr", value, "stop_atr")
        yield _hit(m, "exit", ["exits.stop_loss.atr", "exits.stop_loss.atr_period"],
                   f"atr period {period} fixed as written")
        return
    m = (re.search(rf"\b(?:stop(?:\s+loss)?|sl)\s*(?:at\s+|of\s+|is\s+)?({_N})\s*%", s, re.I)
         or re.search(rf"\b({_N})\s*%\s*(?:stop(?:\s+loss)?|sl)\b", s, re.I))
    if m and not re.search(r"trail", s[max(0, m.start() - 25):m.end()], re.I):
        value = _pct(m.group(1))
        exits["stop_loss"] = {"pct": b.number("stop_loss", value)}
        b.stop = ("pct", value, "stop_loss")
        yield _hit(m, "exit", ["exits.stop_loss.pct"])
        return
    m = re.search(rf"\b(?:stop(?:\s+loss)?|sl)\s+(?:at\s+|of\s+)?({_N})\s*(points?|pts|pips?|ticks?|\$|dollars?)", s, re.I)
    if m:
        value, unit = float(m.group(1)), m.group(2).lower()
        if unit.startswith("pip") and b.asset == "forex":
            exits["stop_loss"] = {"pips": b.number("stop_pips", value)}
            b.stop = ("pips", value, "stop_pips")
        else:
            if unit.startswith("tick") and b.asset == "future":
                value *= FUTURES[b.symbol].tick_size
            exits["stop_loss"] = {"points": b.number("stop_points", value)}
            b.stop = ("points", value, "stop_points")
        yield _hit(m, "exit", [f"exits.stop_loss.{b.stop[0]}"])
        return
    m = re.search(r"\bstop\s+(?:on|at|beyond)\s+the\s+other\s+side\s+of\s+the\s+(?:range|box|zone)", s, re.I)
    if m and b.range_end is not None:
        b.exit_long.append(f"close < opening_range_low({b.range_end})")
        b.exit_short.append(f"close > opening_range_high({b.range_end})")
        b.stop = ("range", 0.0, "")
        yield _hit(m, "exit", ["exits.exit_long", "exits.exit_short"],
                   "a close beyond the range's other side (the catalogue's stop levels are fixed distances)")


def _r_level(b: SpaceBuilder, r: float, name: str) -> dict[str, Any] | None:
    """A level R times the stop's distance (the stop must be a fixed distance)."""
    if b.stop is None or b.stop[0] == "range":
        return None
    kind, value, _ = b.stop
    level: dict[str, Any] = {kind: b.number(name, round(r * value, 6))}
    if kind == "atr":
        level["atr_period"] = b.spec["exits"]["stop_loss"]["atr_period"]
    return level


def r_targets(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    exits = b.spec["exits"]
    for m in re.finditer(rf"\b(?:take\s+profit|tp|target|profit\s+target)\s+(?:at\s+|of\s+|is\s+)?({_N})\s*(?:x\s*)?ATR\b", s, re.I):
        exits["take_profit"] = {"atr": b.number("target_atr", float(m.group(1))),
                                "atr_period": (b.spec["exits"].get("stop_loss") or {}).get("atr_period", 14)}
        yield _hit(m, "exit", ["exits.take_profit.atr"])
    for m in re.finditer(rf"\b(?:take\s+profit|tp|target|profit\s+target)\s+(?:at\s+|of\s+|is\s+)?({_N})\s*%(?:\s+on\s+the\s+premium)?", s, re.I):
        exits["take_profit"] = {"pct": b.number("take_profit", _pct(m.group(1)))}
        yield _hit(m, "exit", ["exits.take_profit.pct"])
    for m in re.finditer(rf"\b(?:take\s+profit|tp|target|profit\s+target)\s+(?:at\s+|of\s+|is\s+)?({_N})\s*R\b", s, re.I):
        r = float(m.group(1))
        level = _r_level(b, r, "target")
        if level is not None:
            exits["take_profit"] = level
            yield _hit(m, "exit", [f"exits.take_profit.{next(iter(level))}"],
                       f"{r:g}R = {r:g} x the stop distance ({b.stop[0]})")  # type: ignore[index]
        elif b.stop and b.stop[0] == "range" and b.range_end:
            # the stop is the range's far side, so 1R is the range width measured from the breakout level
            t = b.number("target_r", r)
            hi, lo = f"opening_range_high({b.range_end})", f"opening_range_low({b.range_end})"
            b.exit_long.append(f"close >= {hi} + {t} * ({hi} - {lo})")
            b.exit_short.append(f"close <= {lo} - {t} * ({hi} - {lo})")
            yield _hit(m, "exit", ["exits.exit_long", "exits.exit_short", "params.target_r"],
                       f"{r:g}R from the breakout level, R = the range width (the stop is the range's far side); "
                       "on a bar close")
        else:
            yield Hit(m.start(), m.end(), "exit", [], unmapped_reason=f"{r:g}R needs a stop of fixed distance first")
    for m in re.finditer(r"\b(?:take\s+profit|tp|target|exit|out)\s+(?:at|on|is)?\s*(?:the\s+)?vwap\b", s, re.I):
        b.exit_long.append("close >= vwap()")
        b.exit_short.append("close <= vwap()")
        yield _hit(m, "exit", ["exits.exit_long", "exits.exit_short"], "a close through VWAP (from the entry side)")
    for m in re.finditer(r"\b(?:take\s+profit|tp|target|exit)\s+(?:at|on|is)?\s*(?:the\s+)?(?:other\s+side\s+of\s+the\s+range|range\s+(high|low)|opposite\s+(?:side|end)\s+of\s+the\s+range)", s, re.I):
        if b.range_end:
            hi, lo = f"opening_range_high({b.range_end})", f"opening_range_low({b.range_end})"
            b.exit_long.append(f"close >= {hi}")
            b.exit_short.append(f"close <= {lo}")
            yield _hit(m, "exit", ["exits.exit_long", "exits.exit_short"], "a close at the range's far side")


def r_trailing_be_partial(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    exits = b.spec["exits"]
    _up = rf"(?:once|when|after)\s+(?:it'?s?\s+|its\s+|the\s+trade\s+is\s+|i'?m\s+|we'?re\s+|price\s+is\s+)?up\s+(?P<up>{_N})\s*(?P<unit>%|R\b)"
    _trail = rf"trail\w*\s+(?:stop\s+)?(?:of\s+|by\s+|at\s+)?(?P<trail>{_N})\s*%"
    # "once up 3% turn on a trailing stop of 8%" or "trail 0.4% once up 1R"
    m = re.search(rf"\b{_up}[^.]*?\b{_trail}", s, re.I) or re.search(rf"\b{_trail}\s+{_up}", s, re.I)
    if m is None:
        m2 = re.search(rf"\b{_trail}", s, re.I)
        if m2:
            exits["trailing"] = {"pct": b.number("trailing_pct", _pct(m2.group("trail")))}
            yield _hit(m2, "exit", ["exits.trailing.pct"])
    else:
        up = float(m.group("up"))
        if m.group("unit") == "%":
            act, note = up / 100.0, None
        elif b.stop and b.stop[0] == "pct":
            act, note = up * b.stop[1], f"{up:g}R = {up:g} x the percent stop"
        else:
            yield Hit(m.start(), m.end(), "exit", [], unmapped_reason="a trail armed at an R multiple needs a percent stop")
            act = None
        if act is not None:
            exits["trailing"] = {"pct": b.number("trailing_pct", _pct(m.group("trail"))),
                                 "activation_pct": b.number("trail_activation", act)}
            yield _hit(m, "exit", ["exits.trailing.pct", "exits.trailing.activation_pct"], note)
    m = re.search(rf"\b(?:move|moving)\s+(?:the\s+|my\s+)?stop\s+to\s+(?:break\s*-?\s*even|be|entry)\s+(?:at|after|once|when)\s+(?:it'?s?\s+)?(?:up\s+)?\+?({_N})\s*(%|R\b)"
                  rf"|\b(?:at|after|once)\s+\+?({_N})\s*(%|R\b)[^.,]*?\bstop\s+to\s+(?:break\s*-?\s*even|be|entry)", s, re.I)
    if m:
        value, unit = float(m.group(1) or m.group(3)), (m.group(2) or m.group(4))
        if unit == "%":
            exits["break_even"] = {"trigger_pct": b.number("break_even", _pct(str(value)))}
            yield _hit(m, "exit", ["exits.break_even.trigger_pct"])
        elif b.stop and b.stop[0] == "pct":
            exits["break_even"] = {"trigger_pct": b.number("break_even", value * b.stop[1])}
            yield _hit(m, "exit", ["exits.break_even.trigger_pct"], f"{value:g}R = {value:g} x the percent stop")
        else:
            yield Hit(m.start(), m.end(), "exit", [], unmapped_reason=(
                "break-even at an R multiple needs a percent stop (the catalogue's break_even trigger is a percent)"))
    m = re.search(rf"\b(?:take|sell|close)\s+(half|a\s+third|a\s+quarter|\d+\s*%)\s+(?:off\s+)?(?:at|of\s+it\s+at)\s+\+?({_N})\s*(%|R\b)", s, re.I)
    if m:
        frac = {"half": 0.5, "a third": 1 / 3, "a quarter": 0.25}.get(m.group(1).lower())
        frac = frac if frac is not None else _pct(m.group(1).rstrip("% "))
        value, unit = float(m.group(2)), m.group(3)
        pct = _pct(str(value)) if unit == "%" else (value * b.stop[1] if b.stop and b.stop[0] == "pct" else None)
        if pct is None:
            yield Hit(m.start(), m.end(), "exit", [], unmapped_reason="a partial at an R multiple needs a percent stop")
        else:
            target = b.params.get(str((exits.get("take_profit") or {}).get("pct", "")).lstrip("$"))
            # a partial beyond the final target never fills: its range ends where the target's begins
            high = min(pct * 2, target["float"][0]) if target else None
            exits["partial_take_profits"] = [{"pct": b.number("partial_pct", pct, high=high), "fraction": round(frac, 4)}]
            yield _hit(m, "exit", ["exits.partial_take_profits"])


def r_time_exit(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    m = re.search(rf"\b(?:max(?:imum)?\s+hold|time\s+exit|hold\s+(?:it\s+)?(?:for\s+)?(?:at\s+most|max))\s*(?:of\s+|at\s+)?({_N})\s*(min(?:ute)?s?|h(?:ou)?rs?|bars?)"
                  rf"|\bout\s+after\s+({_N})\s*(min(?:ute)?s?|h(?:ou)?rs?)", s, re.I)
    if m and b.timeframe != "1d":
        value, unit = float(m.group(1) or m.group(3)), (m.group(2) or m.group(4)).lower()
        minutes = int(value * (60 if unit.startswith("h") else 1))
        b.spec["exits"]["max_hold_minutes"] = b.number("max_hold", minutes, integer=True)
        yield _hit(m, "exit", ["exits.max_hold_minutes"])
        rest = re.search(r"\bif\s+nothing\s+happened[^.]*|\bafter\s+entry|\bno\s+matter\s+what", s, re.I)
        if rest:
            yield _hit(rest, "exit", ["exits.max_hold_minutes"])


def r_sizing(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    sizing = b.spec["sizing"]
    m = re.search(rf"\brisk(?:ing)?\s+({_N})\s*%\s*(?:of\s+(?:the\s+)?(?:account|equity)\s*)?(?:per\s+trade|a\s+trade|each\s+trade)?", s, re.I)
    if m:
        sizing.update(mode="risk", risk_pct=b.number("risk", _pct(m.group(1)), low=_pct(m.group(1)) / 4))
        yield _hit(m, "sizing", ["sizing.mode", "sizing.risk_pct"])
    m = re.search(rf"\b({_N})\s+contracts?\s+per\s+\$?\s*({_N})\s*(k)?\b", s, re.I)
    if m:
        yield Hit(m.start(), m.end(), "sizing", [], unmapped_reason=(
            "contracts per amount of equity: the catalogue sizes fixed, by notional share of equity or by risk %"))
        return
    m = re.search(rf"(?<![\w.])({_N})\s+(contracts?|lots?|shares?|micro\s+lots?|mini\s+lots?)\b", s, re.I)
    if m and not re.search(r"per\s+trade\s+risk", s, re.I):
        qty = float(m.group(1))
        unit = m.group(2).lower()
        if "micro" in unit:
            qty *= 0.01
        elif "mini" in unit:
            qty *= 0.1
        sizing.update(mode="fixed", quantity=qty)
        yield _hit(m, "sizing", ["sizing.mode", "sizing.quantity"], "a count as written: fixed")
    m = re.search(r"\b(one|1|two|2|three|3)\s+trades?\s+(?:a|per)\s+day(?:\s+max)?|\bmax(?:imum)?\s+(one|1|two|2|three|3)\s+trades?\s+(?:a|per)\s+day", s, re.I)
    if m:
        words = {"one": 1, "two": 2, "three": 3}
        word = (m.group(1) or m.group(2)).lower()
        sizing["max_trades_per_day"] = words.get(word) or int(word)
        yield _hit(m, "limit", ["sizing.max_trades_per_day"], "a count as written: fixed")


def r_stop_filter(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    """'skip it if the stop would be more than 40 pips' with an ATR stop -> atr(n) * k <= distance."""
    m = re.search(rf"\b(?:skip|no\s+trade|don'?t\s+take)\b[^.]*?\bstop\s+would\s+be\s+(?:more|wider|bigger)\s+than\s+({_N})\s*(pips?|points?|ticks?)", s, re.I)
    if m is None:
        return
    value, unit = float(m.group(1)), m.group(2).lower()
    if b.stop is None or b.stop[0] != "atr":
        yield Hit(m.start(), m.end(), "limit", [], unmapped_reason="a stop-width filter needs an ATR stop to measure")
        return
    if unit.startswith("pip"):
        if b.asset != "forex":
            yield Hit(m.start(), m.end(), "limit", [], unmapped_reason="pips apply to forex only")
            return
        size = forex_pair(b.symbol).pip_size
    elif unit.startswith("tick"):
        size = FUTURES[b.symbol].tick_size if b.asset == "future" else 0.01
    else:
        size = 1.0
    period = b.spec["exits"]["stop_loss"]["atr_period"]
    limit = b.number("max_stop_" + unit.rstrip("s"), value)
    b.filters.append(f"atr({period}) * ${b.stop[2]} <= {limit} * {size:g}")
    yield _hit(m, "limit", ["entry.long", "entry.short", "params." + limit[1:]],
               f"atr({period}) x the stop multiple, in {unit} of {size:g}")


def r_staged_words(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    if b.asset != "option" or "staged" not in b.spec["instrument"]:
        return
    for m in re.finditer(r"\bdon'?t\s+buy\s+the\s+(?:spread|vertical)\s+(?:up\s*front|right\s+away|at\s+entry)", s, re.I):
        yield _hit(m, "staged", ["instrument.legs", "instrument.staged"], "one long leg first; the conversion makes the spread")


def r_direction(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    for m in re.finditer(r"\blong\s+only\b|\bno\s+shorts?\b", s, re.I):
        b.long_only = True
        yield _hit(m, "entry", ["direction"])
    for m in re.finditer(r"\b(?:put|short)\s+version\s+is\s+the\s+same\s+thing\s+mirrored\b[^.]*", s, re.I):
        yield Hit(m.start(), m.end(), "entry", [], unmapped_reason=(
            "the mirrored side names no rule of its own ('when ... is weak' is not a catalogue signal); "
            "the space trades the long side only"))


def r_unmappable(b: SpaceBuilder, s: str) -> Iterator[Hit]:
    for m in re.finditer(r"\b(?:check|compare|test)\s+it\s+against\s+buy\s+and\s+hold\b|\bbenchmark\b", s, re.I):
        yield Hit(m.start(), m.end(), "report", [], unmapped_reason=(
            "a benchmark comparison is a report of the study, not a field of the strategy"))
    for m in re.finditer(r"\bno\s+pip\s+filter\b", s, re.I):
        yield Hit(m.start(), m.end(), "limit", [], unmapped_reason=(
            "about the second instrument named; a space trades one instrument"))


RULES: tuple[Rule, ...] = (
    r_instrument, r_timeframe, r_option_legs, r_staged, r_days, r_session_range, r_opening_range,
    r_moving_average, r_price_ma, r_exit_cross_back, r_rsi, r_zone_breakout, r_stop, r_range_breakout, r_vwap_entry,
    r_prior_day, r_gap, r_timed_entry, r_windows, r_targets, r_trailing_be_partial, r_time_exit, r_sizing,
    r_stop_filter, r_staged_words, r_direction, r_unmappable,
)
