"""Constants, the instruments the generator knows (stocks, forex pairs, futures roots) and the seeded random helpers every part of the generator draws from."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.signal import lfilter

from data.flatfiles import (
    AssetClass,
)

DEFAULT_TICKERS: tuple[str, ...] = ("SPY", "QQQ", "AMD", "C:EURUSD", "C:XAUUSD", "MES")
#: About two years (502 NYSE sessions): long enough for a six-month holdout that holds >= 100 positions of a
#: one-trade-a-day strategy (the KPI gates' trade count) after walk-forward folds.
DEFAULT_START = dt.date(2023, 1, 3)
DEFAULT_END = dt.date(2024, 12, 31)

#: Continuously compounded rate used to price options (no dividends) and the futures carry.
RISK_FREE_RATE = 0.05
#: Implied over realised volatility at the money.
IV_PREMIUM = 1.1
#: An option trades at the bid or the ask: mid -/+ this half-spread.
OPTION_HALF_SPREAD_FRACTION = 0.015
OPTION_MIN_HALF_SPREAD = 0.01
OPTION_TICK = 0.01

GZIP_LEVEL = 5

_MIN_NS = 60 * 10**9
_DAY_NS = 86_400 * 10**9
_YEAR_NS = 365.0 * _DAY_NS
_EPOCH_THURSDAY = 3  # 1970-01-01 was a Thursday: weekday (Mon=0) of day number n is (n + 3) % 7
_REG_OPEN = 9 * 60 + 30
_REG_CLOSE = 16 * 60
_PRE_OPEN = 4 * 60
_POST_END = 20 * 60
_HALF_DAY_POST_END = 17 * 60
_GLOBEX_BREAK = 17 * 60
_GLOBEX_REOPEN = 18 * 60
_HOLIDAY_HALT = 13 * 60
_HALF_DAY_FUTURES_CLOSE = 13 * 60 + 15
_TRADING_DAYS = 252.0

if TYPE_CHECKING:  # annotations only: the module that defines it imports this one
    from data.synth._grid import _Grid


# ============================================================================= public helpers


def ticker_kind(ticker: str) -> AssetClass:
    """Which asset class a requested ticker is: ``C:XXXYYY`` forex, a known futures root, else a stock."""
    if ticker.startswith("C:"):
        if not re.fullmatch(r"C:[A-Z]{6}", ticker):
            raise ValueError(f"forex ticker {ticker!r}: expected 'C:' and six letters, like 'C:EURUSD'")
        return AssetClass.FOREX
    if ticker in _FUTURES:
        return AssetClass.FUTURES
    if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,5}", ticker):
        raise ValueError(
            f"ticker {ticker!r} is not a stock ticker (1-6 upper-case letters/digits), a forex pair "
            f"('C:EURUSD') or a futures root ({', '.join(sorted(_FUTURES))}); fix the --tickers list"
        )
    return AssetClass.STOCKS


@dataclass(frozen=True, slots=True)
class _StockSpec:
    price: float
    beta: float
    idio_vol: float  # annualised idiosyncratic volatility
    trades_per_day: float
    trade_size: float
    daily_options: bool  # SPY/QQQ/IWM list an expiry every session; single stocks list Fridays
    strike_tiers: tuple[tuple[float, float], ...]  # (distance from spot as a fraction, strike step)
    option_activity: float  # trade intensity per minute of the at-the-money nearest expiry
    option_trades: float  # trades per minute of that contract, on top of the first
    skew: float  # d(iv/atm)/d(standardised log-moneyness)
    curvature: float
    earnings_move: float  # sd of the after-close earnings jump; 0 for funds


_INDEX_TIERS = ((0.06, 1.0), (math.inf, 5.0))


_STOCKS: dict[str, _StockSpec] = {
    "SPY": _StockSpec(472.0, 1.0, 0.02, 450_000, 150, True, _INDEX_TIERS, 3.5, 25, -0.12, 0.03, 0.0),
    "QQQ": _StockSpec(403.0, 1.2, 0.07, 330_000, 130, True, _INDEX_TIERS, 2.5, 14, -0.10, 0.03, 0.0),
    "IWM": _StockSpec(197.0, 1.15, 0.12, 200_000, 150, True, _INDEX_TIERS, 1.5, 8, -0.08, 0.03, 0.0),
    "DIA": _StockSpec(377.0, 0.9, 0.05, 30_000, 80, False, _INDEX_TIERS, 0.3, 2, -0.10, 0.03, 0.0),
    "AMD": _StockSpec(
        140.0, 2.0, 0.38, 550_000, 110, False, ((0.04, 1.0), (0.12, 2.5), (math.inf, 5.0)), 1.2, 8,
        -0.05, 0.04, 0.07,
    ),
    "AAPL": _StockSpec(
        185.0, 1.05, 0.18, 600_000, 100, False, ((0.05, 1.0), (0.15, 2.5), (math.inf, 5.0)), 1.5, 10,
        -0.06, 0.04, 0.04,
    ),
    "MSFT": _StockSpec(
        370.0, 1.0, 0.17, 350_000, 90, False, ((0.05, 2.5), (math.inf, 5.0)), 0.8, 5, -0.06, 0.04, 0.045,
    ),
    "TSLA": _StockSpec(
        248.0, 1.9, 0.45, 900_000, 100, False, ((0.06, 2.5), (math.inf, 5.0)), 1.5, 12, -0.03, 0.05, 0.09,
    ),
}


_ETFS = frozenset({"SPY", "QQQ", "IWM", "DIA"})


#: Known after-close earnings dates; other single stocks get a stable made-up quarterly date.
_EARNINGS: dict[str, tuple[dt.date, ...]] = {
    "AMD": tuple(
        dt.date.fromisoformat(d)
        for d in ("2024-01-30", "2024-04-30", "2024-07-30", "2024-10-29", "2025-02-04", "2025-05-06",
                  "2025-08-05", "2025-11-04")
    ),
}


_MARKET_VOL = 0.13


_MARKET_DRIFT = 0.08


@dataclass(frozen=True, slots=True)
class _FxSpec:
    price: float
    vol: float
    usd_sign: int  # +1 when USD is the base currency, -1 when it is the quote, 0 otherwise
    usd_corr: float
    ticks_per_day: float
    decimals: int


_FX: dict[str, _FxSpec] = {
    "EURUSD": _FxSpec(1.0940, 0.065, -1, 0.8, 150_000, 5),
    "GBPUSD": _FxSpec(1.2620, 0.075, -1, 0.75, 120_000, 5),
    "USDJPY": _FxSpec(141.90, 0.095, 1, 0.6, 130_000, 3),
    "AUDUSD": _FxSpec(0.6790, 0.10, -1, 0.7, 90_000, 5),
    "USDCAD": _FxSpec(1.3250, 0.06, 1, 0.6, 80_000, 5),
    "USDCHF": _FxSpec(0.8450, 0.075, 1, 0.75, 70_000, 5),
    "NZDUSD": _FxSpec(0.6300, 0.105, -1, 0.7, 60_000, 5),
    "XAUUSD": _FxSpec(2062.0, 0.14, -1, 0.35, 110_000, 2),
    "XAGUSD": _FxSpec(23.70, 0.25, -1, 0.3, 60_000, 3),
}


@dataclass(frozen=True, slots=True)
class _FutureSpec:
    reference: str  # the latent path it tracks
    ratio: float  # futures points per reference unit
    metal: bool  # gold: even-month cycle, COMEX-hours activity
    trades_per_day: float
    trade_size: float
    carry: float  # annual cost of carry (rate minus dividend yield, or rate plus storage)


_FUTURES: dict[str, _FutureSpec] = {
    "MES": _FutureSpec("SPY", 10.0, False, 300_000, 3.0, 0.037),
    "ES": _FutureSpec("SPY", 10.0, False, 400_000, 4.0, 0.037),
    "MNQ": _FutureSpec("QQQ", 41.0, False, 350_000, 2.5, 0.042),
    "NQ": _FutureSpec("QQQ", 41.0, False, 220_000, 2.0, 0.042),
    "M2K": _FutureSpec("IWM", 10.0, False, 50_000, 2.0, 0.035),
    "RTY": _FutureSpec("IWM", 10.0, False, 45_000, 2.0, 0.035),
    "MYM": _FutureSpec("SPY", 78.0, False, 50_000, 2.0, 0.033),
    "YM": _FutureSpec("SPY", 78.0, False, 40_000, 2.0, 0.033),
    "MGC": _FutureSpec("C:XAUUSD", 1.0, True, 40_000, 2.0, 0.05),
    "GC": _FutureSpec("C:XAUUSD", 1.0, True, 120_000, 2.0, 0.05),
}


def _stable_hash(text: str) -> int:
    # Python's hash() is salted per process; this is the same everywhere, forever.
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    words = [seed % 2**64] + [_stable_hash(k) if isinstance(k, str) else k % 2**64 for k in keys]
    return np.random.default_rng(words)


def _unit(text: str, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) derived from a name."""
    return (_stable_hash(f"{salt}:{text}") % 1_000_003) / 1_000_003


def _stock_spec(ticker: str) -> _StockSpec:
    if ticker in _STOCKS:
        return _STOCKS[ticker]
    # Unknown tickers get plausible, stable parameters derived from the name.
    price = round(20 + 280 * _unit(ticker, "price"), 2)
    tiers = ((0.05, 1.0), (math.inf, 2.5)) if price < 100 else ((0.05, 2.5), (math.inf, 5.0))
    return _StockSpec(
        price=price,
        beta=0.7 + 0.9 * _unit(ticker, "beta"),
        idio_vol=0.15 + 0.25 * _unit(ticker, "idio"),
        trades_per_day=20_000 + 180_000 * _unit(ticker, "trades"),
        trade_size=100,
        daily_options=False,
        strike_tiers=tiers,
        option_activity=0.4,
        option_trades=3,
        skew=-0.05,
        curvature=0.04,
        earnings_move=0.0 if ticker in _ETFS else 0.05,
    )


def _fx_spec(pair: str) -> _FxSpec:
    if pair in _FX:
        return _FX[pair]
    sign = -1 if pair.endswith("USD") else (1 if pair.startswith("USD") else 0)
    price = 0.5 + 1.5 * _unit(pair, "price")
    return _FxSpec(round(price, 4), 0.07 + 0.05 * _unit(pair, "vol"), sign, 0.6 if sign else 0.0, 50_000, 5)


# ============================================================================= the minute clock


@dataclass
class _Latent:
    logp: np.ndarray  # log price at each minute boundary (n + 1)
    sd: np.ndarray  # sd of each minute's log return
    day_sd: np.ndarray  # the daily volatility state (24 h sd) per New York day
    base_day_sd: float  # its long-run level
    weights: np.ndarray  # the intraday volatility profile the path was built with
    events: tuple[tuple[int, float], ...] = ()  # (UTC ns, jump sd) of scheduled jumps (earnings)

    def vol_factor(self) -> np.ndarray:
        """Current volatility relative to normal, for the volume-volatility link."""
        return self.sd / (self.base_day_sd * self.weights)


def _student_t(rng: np.random.Generator, n: int, dof: float = 4.5) -> np.ndarray:
    return rng.standard_t(dof, n) * math.sqrt((dof - 2) / dof)  # unit variance, fat tails


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """A stationary AR(1) series with persistence ``phi`` and stationary sd ``sd``."""
    shocks = rng.standard_normal(n) * sd * math.sqrt(1 - phi * phi)
    start = rng.standard_normal() * sd
    return lfilter([1.0], [1.0, -phi], shocks, zi=[phi * start])[0]


def _stochastic_sd(
    rng: np.random.Generator, g: _Grid, weights: np.ndarray, base_day_sd: float, z: np.ndarray, *,
    log_vol_sd: float, persistence: float, leverage: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Minute sd = daily state x intraday state x profile; returns (minute sd, daily state sd)."""
    # A day's standardised return shock feeds the next day's log-volatility (leverage effect:
    # with leverage < 0 a down day raises tomorrow's volatility).
    w2 = weights * weights
    day_shock = np.bincount(g.day_idx, weights=weights * z, minlength=g.n_days) / np.sqrt(
        np.bincount(g.day_idx, weights=w2, minlength=g.n_days) + 1e-12
    )
    eta = log_vol_sd * math.sqrt(1 - persistence**2)
    noise = rng.standard_normal(g.n_days)
    lagged = np.concatenate(([0.0], day_shock[:-1]))
    shocks = eta * (leverage * lagged + math.sqrt(1 - leverage**2) * noise)
    h0 = rng.standard_normal() * log_vol_sd
    h = lfilter([1.0], [1.0, -persistence], shocks, zi=[persistence * h0])[0]
    day_sd = base_day_sd * np.exp(h - log_vol_sd**2)  # E[day_sd^2] = base^2
    intraday_sd = 0.25
    x = _ar1(rng, g.n, 0.985, intraday_sd)  # minutes-long volatility bursts within the day
    return day_sd[g.day_idx] * weights * np.exp(x - intraday_sd**2), day_sd
