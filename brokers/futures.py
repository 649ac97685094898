"""Futures contracts for live trading: which listed contract a spec's continuous future trades today.

A spec names a root (``instrument.symbol: MES``); its backtests read the store's continuous front month,
which per session is the contract that traded the most volume that session (``data.store._front_month``).
Live, a session's volume is known only once it has ended, so the contract to trade is the one of the
nearest two listed contracts (by last trading day, not yet past it) with the most volume in the last
complete session before today; equal or unknown volumes keep the nearer one. Volume crosses to the next
contract about a week before the front one's last trading day, so this follows the store's roll a session
late at most.

Last trading days: equity-index contracts expire on their month's third Friday (the session before it on
a holiday: ``data.calendar.monthly_option_expiry``); gold is left before first notice, at the last session
of the month before the contract month (the sample-data generator's rule, ``data.synth``).

Tradier writes a contract with a leading slash (``/MESZ26``); the store and this package without it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from data.calendar import monthly_option_expiry, session_on_or_before
from data.flatfiles import CONTRACT_MONTHS, future_ticker, parse_future_ticker
from spec_space.instruments import FUTURES

_METALS = ("GC", "MGC")


@dataclass(frozen=True)
class FuturesContract:
    """One listed contract of a futures root."""

    root: str
    year: int
    month: int

    @property
    def ticker(self) -> str:
        """``MESZ26``: root, month code, two-digit year (the store's and Lumibot's spelling)."""
        return future_ticker(self.root, self.year, self.month)

    @property
    def tradier_symbol(self) -> str:
        """``/MESZ26``: Tradier's spelling."""
        return "/" + self.ticker

    @property
    def multiplier(self) -> float:
        """Dollars per point (``spec_space.instruments.FUTURES``)."""
        return FUTURES[self.root].multiplier

    @property
    def tick_size(self) -> float:
        return FUTURES[self.root].tick_size

    @property
    def last_trade(self) -> dt.date:
        """The last session this contract is traded in (see the module note)."""
        if self.root in _METALS:
            return session_on_or_before(dt.date(self.year, self.month, 1) - dt.timedelta(days=1))
        return monthly_option_expiry(self.year, self.month)


def _known_root(root: str) -> str:
    key = root.upper().lstrip("/")
    if key not in FUTURES or key not in CONTRACT_MONTHS:
        raise ValueError(f"unknown futures root {root!r}; known roots: {', '.join(sorted(FUTURES))}")
    return key


def contract_of(symbol: str) -> FuturesContract:
    """The contract named ``MESZ26`` or ``/MESZ26``."""
    root, year, month = parse_future_ticker(symbol.upper().lstrip("/"))
    return FuturesContract(_known_root(root), year, month)


def listed_contracts(root: str, today: dt.date, count: int = 2) -> list[FuturesContract]:
    """The ``count`` nearest contracts of ``root`` whose last trading day is ``today`` or later."""
    key = _known_root(root)
    out: list[FuturesContract] = []
    # contract months in calendar order have ascending last trading days: stop at ``count`` (the exchange
    # calendar behind the holiday rule only reaches about a year ahead)
    for year in range(today.year, today.year + 3):
        for month in CONTRACT_MONTHS[key]:
            if len(out) == count:
                return out
            contract = FuturesContract(key, year, month)
            if (year, month) >= (today.year, today.month) and contract.last_trade >= today:
                out.append(contract)
    return out


def front_contract(
    root: str, today: dt.date, session_volume: Callable[[FuturesContract], float | None]
) -> FuturesContract:
    """The contract a continuous ``root`` trades on ``today``: of the nearest two, the one with the most
    volume in the last complete session (``session_volume``; None when unknown), the nearer on a tie."""
    candidates = listed_contracts(root, today)
    best = candidates[0]
    best_volume = session_volume(best) or 0.0
    for contract in candidates[1:]:
        volume = session_volume(contract) or 0.0
        if volume > best_volume:
            best, best_volume = contract, volume
    return best
