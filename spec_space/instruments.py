"""Contract facts of the tradable instruments: multipliers, tick sizes, pip and lot sizes.

One table for the engines, the broker adapters and the sample-data generator, so a futures
point or a forex pip means the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

#: What an instrument is: the one vocabulary of asset types. A spec's ``instrument.type`` is one; the broker
#: adapters translate it into their wire names with :meth:`brokers.base.AssetClass.of`, and the data store
#: keeps each in a flat-file dataset (:class:`data.flatfiles.AssetClass`, named as Polygon names them).
InstrumentType = Literal["stock", "option", "future", "forex"]
INSTRUMENT_TYPES: tuple[InstrumentType, ...] = get_args(InstrumentType)


#: New York clock minute at which each instrument type's next trading day starts (0: at midnight). A forex
#: day rolls at 17:00 and a CME Globex day opens at 18:00, so their sessions begin the evening before their
#: trading date (data.calendar explains the trading days).
TRADING_DAY_START_MINUTE: dict[InstrumentType, int] = {"stock": 0, "option": 0, "future": 18 * 60, "forex": 17 * 60}


def clock_session_minute(clock_minute: int, instrument_type: InstrumentType) -> int:
    """The session minute a New York clock time names in a spec (``entry.window_start``/``window_end``,
    ``exits.eod_flat_time``): minutes since the midnight that starts the trading date, the scale of
    ``BarSeries.session_minute``.

    A clock time at or after the instrument's day start (forex 17:00, futures 18:00) is the evening that
    opens the session, the day before its trading date (a negative session minute); an earlier time is
    on the trading date itself. So on forex 16:55 is the end of the session (before the 17:00 roll),
    03:00-11:00 the London morning of that session and 20:00 its Asian evening.
    """
    start = TRADING_DAY_START_MINUTE[instrument_type]
    return clock_minute - 1440 if start and clock_minute >= start else clock_minute


@dataclass(frozen=True, slots=True)
class FutureContract:
    root: str
    multiplier: float  # dollars per point
    tick_size: float
    description: str


FUTURES: dict[str, FutureContract] = {
    c.root: c
    for c in (
        FutureContract("MES", 5.0, 0.25, "Micro E-mini S&P 500"),
        FutureContract("ES", 50.0, 0.25, "E-mini S&P 500"),
        FutureContract("MNQ", 2.0, 0.25, "Micro E-mini Nasdaq-100"),
        FutureContract("NQ", 20.0, 0.25, "E-mini Nasdaq-100"),
        FutureContract("M2K", 5.0, 0.10, "Micro E-mini Russell 2000"),
        FutureContract("RTY", 50.0, 0.10, "E-mini Russell 2000"),
        FutureContract("MYM", 0.5, 1.0, "Micro E-mini Dow"),
        FutureContract("YM", 5.0, 1.0, "E-mini Dow"),
        FutureContract("MGC", 10.0, 0.10, "Micro Gold"),
        FutureContract("GC", 100.0, 0.10, "Gold"),
    )
}


@dataclass(frozen=True, slots=True)
class ForexPair:
    pair: str
    pip_size: float
    lot_units: float  # units of the base currency (or ounces) in one standard lot


def forex_pair(symbol: str) -> ForexPair:
    """Pip and lot facts of a pair: JPY quotes have 0.01 pips, gold 0.01 per pip and 100 oz lots."""
    pair = symbol.upper().removeprefix("C:").replace("/", "")
    if pair.startswith("XAU"):
        return ForexPair(pair, 0.01, 100.0)
    if pair.startswith("XAG"):
        return ForexPair(pair, 0.001, 5000.0)
    if pair.endswith("JPY"):
        return ForexPair(pair, 0.01, 100_000.0)
    return ForexPair(pair, 0.0001, 100_000.0)


#: Options on US equities and ETFs: 100 shares per contract.
OPTION_MULTIPLIER = 100.0
