"""Option chains priced with Black-Scholes on a moving volatility smile from the underlying's bars."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import ndtr

from data.calendar import (
    monthly_option_expiry,
)
from data.flatfiles import (
    occ_ticker,
)
from data.synth._base import (
    _MIN_NS,
    _TRADING_DAYS,
    _YEAR_NS,
    IV_PREMIUM,
    OPTION_HALF_SPREAD_FRACTION,
    OPTION_MIN_HALF_SPREAD,
    OPTION_TICK,
    RISK_FREE_RATE,
    _rng,
    _stock_spec,
)
from data.synth._grid import _day_number, _ny_midnight_ns
from data.synth._model import _Minutes, _Model


def option_half_spread(price: np.ndarray | float) -> np.ndarray:
    """Half the bid-ask spread of an option whose mid is ``price``."""
    return np.maximum(OPTION_MIN_HALF_SPREAD, OPTION_HALF_SPREAD_FRACTION * np.asarray(price, dtype=float))


def black_scholes(
    spot: np.ndarray, strike: np.ndarray, years: np.ndarray, vol: np.ndarray, is_call: np.ndarray,
    rate: float = RISK_FREE_RATE,
) -> np.ndarray:
    """European Black-Scholes price without dividends (vectorised)."""
    years = np.maximum(years, 1.0 / (365 * 24 * 3600))  # one second: at expiry the price is intrinsic
    root = vol * np.sqrt(years)
    d1 = (np.log(spot / strike) + (rate + 0.5 * vol * vol) * years) / root
    d2 = d1 - root
    disc = strike * np.exp(-rate * years)
    call = spot * ndtr(d1) - disc * ndtr(d2)
    put = disc * ndtr(-d2) - spot * ndtr(-d1)
    return np.where(is_call, call, put)


# ============================================================================= report


def _strikes(spot: float, half_width: float, tiers: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Listed strikes within ``spot +- half_width``: the finest step near the money, coarser further out."""
    steps_milli = [round(step * 1000) for _, step in tiers]
    grid = math.gcd(*steps_milli)  # every tier's strikes lie on this grid ($0.50 for $1 and $2.50)
    half_width = max(half_width, 2.5 * min(steps_milli) / 1000)
    lo = max(spot - half_width, grid / 1000)
    milli = np.arange(math.ceil(lo * 1000 / grid), math.floor((spot + half_width) * 1000 / grid) + 1) * grid
    distance = np.abs(milli / 1000 / spot - 1)
    bounds = np.array([bound for bound, _ in tiers])
    steps = np.array(steps_milli, dtype=np.int64)
    tier = np.minimum(np.searchsorted(bounds, distance, side="right"), len(tiers) - 1)
    return milli[milli % steps[tier] == 0] / 1000


def _atm_term(short: float, long: float, years: float) -> float:
    """ATM implied vol for a maturity: variance mean-reverts from today's level to the long-run one."""
    kappa = 8.0
    frac = (1 - math.exp(-kappa * years)) / (kappa * years)
    return math.sqrt(long**2 + (short**2 - long**2) * frac)


def _smile(log_moneyness: np.ndarray, years: np.ndarray, atm: np.ndarray, skew: float, curvature: float) -> np.ndarray:
    # Skew and curvature in standardised log-moneyness, so short expiries get the steep smile they have.
    x = np.clip(log_moneyness / (atm * np.sqrt(np.maximum(years, 1 / (365 * 24)))), -4.0, 4.0)
    return atm * np.maximum(0.5, 1.0 + skew * x + curvature * x * x)


@dataclass
class _Underlying:
    """The underlying's written bars on the full grid (NaN where it did not trade)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def from_minutes(cls, bars: _Minutes, n: int) -> _Underlying:
        arrays = []
        for values in (bars.open, bars.high, bars.low, bars.close):
            full = np.full(n, np.nan)
            full[bars.index] = values
            arrays.append(full)
        return cls(*arrays)


def _option_day(model: _Model, ticker: str, under: _Underlying, day: dt.date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Minute and day bars of ``ticker``'s options on one session."""
    g = model.grid
    spec = _stock_spec(ticker)
    lat = model.latent(ticker)
    dn = _day_number(day)
    open_ns, close_ns = g.session_open[dn], g.session_close[dn]
    minutes = np.arange((open_ns - g.t0) // _MIN_NS, (close_ns - g.t0) // _MIN_NS)
    t_ns = g.ns_at(minutes)
    latent_close = np.exp(lat.logp[minutes + 1])
    so, sh, sl, sc = (
        np.where(np.isnan(a[minutes]), latent_close, a[minutes]) for a in (under.open, under.high, under.low, under.close)
    )
    spot = float(so[0])
    day_sd = float(lat.day_sd[dn - g.day0])
    short = IV_PREMIUM * day_sd * math.sqrt(_TRADING_DAYS)
    long = IV_PREMIUM * lat.base_day_sd * math.sqrt(_TRADING_DAYS)
    rng = _rng(model.seed, "options", ticker, dn)

    strikes, calls, expiry_ns, atm, activity, expiries = [], [], [], [], [], []
    for expiry in model.expiries(ticker, day):
        e_ns = model.close_ns[expiry]
        years = (e_ns - open_ns) / _YEAR_NS
        level = _atm_term(short, long, years)
        for event_ns, move in lat.events:  # an earnings night inside the option's life adds its variance
            if open_ns < event_ns < e_ns:
                level = math.sqrt(level**2 + move**2 / years)
        ks = _strikes(spot, min(0.3, max(0.015, 2.5 * level * math.sqrt(years))) * spot, spec.strike_tiers)
        dte = (expiry - day).days
        weight = 1.0 if dte == 0 else (0.2 if dte == 1 else 0.1 / (1 + dte / 5))
        if expiry == monthly_option_expiry(expiry.year, expiry.month):
            weight *= 1.4
        for is_call in (True, False):  # contracts in OCC ticker order: expiry, C before P, strike
            strikes.append(ks)
            calls.append(np.full(len(ks), is_call))
            expiry_ns.append(np.full(len(ks), e_ns, dtype=np.int64))
            atm.append(np.full(len(ks), level))
            activity.append(np.full(len(ks), weight))
            expiries.extend([expiry] * len(ks))
    k_all = np.concatenate(strikes)
    call_all = np.concatenate(calls)
    e_all = np.concatenate(expiry_ns)
    atm_all = np.concatenate(atm)
    act_all = np.concatenate(activity)

    # Implied vol rises as the underlying falls during the day (spot-vol correlation).
    spot_vol = np.clip(np.exp(-0.15 * np.log(sc / spot) / day_sd), 0.7, 1.5)
    j = np.arange(len(minutes))
    intraday = np.minimum(1.0, 0.85 + 0.15 * (np.exp(-j / 30) + np.exp(-(len(j) - 1 - j) / 30)))
    # Liquidity: near the money, near expiry, out of the money; busiest at the open and close. Distance
    # from the money is in sds over at least a trading day, so a 0DTE chain keeps several busy strikes
    # around the money all day. The contracts x minutes matrix is float32: it only decides which
    # minutes trade.
    midday_ns = (open_ns + close_ns) // 2
    years_c = np.maximum((e_all - midday_ns) / _YEAR_NS, 1 / _TRADING_DAYS)
    scale_c = (1.0 / (1.3 * atm_all * np.sqrt(years_c))).astype(np.float32)
    z = np.log(k_all).astype(np.float32)[:, None] - np.log(sc).astype(np.float32)[None, :]
    z *= scale_c[:, None]
    z *= (1.0 / spot_vol).astype(np.float32)[None, :]
    # Out of the money (z > 0 for calls, z < 0 for puts) trades twice as often as in the money.
    side = np.where(call_all, 0.25, -0.25).astype(np.float32)
    rate = np.exp(-0.5 * z * z)
    rate *= 0.75 + side[:, None] * np.sign(z)
    rate *= (spec.option_activity * act_all).astype(np.float32)[:, None]
    rate *= intraday.astype(np.float32)[None, :]
    # A minute has a trade when an exponential waiting time falls inside it: P = 1 - exp(-rate).
    ci, mi = np.nonzero(rng.standard_exponential(rate.shape, dtype=np.float32) < rate)
    prob = -np.expm1(-rate[ci, mi].astype(np.float64))

    strike = k_all[ci]
    is_call = call_all[ci]
    vol_atm = atm_all[ci] * spot_vol[mi]
    start_ns = t_ns[mi]
    e_ns = e_all[ci]

    def mid(s: np.ndarray, at_ns: np.ndarray) -> np.ndarray:
        years = (e_ns - at_ns) / _YEAR_NS
        forward = s * np.exp(RISK_FREE_RATE * years)
        vol = _smile(np.log(strike / forward), years, vol_atm, spec.skew, spec.curvature)
        return black_scholes(s, strike, years, vol, is_call)

    # Calls make their high with the underlying's high, puts with its low.
    up = np.where(is_call, sh[mi], sl[mi])
    down = np.where(is_call, sl[mi], sh[mi])
    mids = np.stack([
        mid(so[mi], start_ns),
        mid(up, start_ns + _MIN_NS // 2),
        mid(down, start_ns + _MIN_NS // 2),
        mid(sc[mi], start_ns + _MIN_NS),
    ])
    side = np.where(rng.random(mids.shape) < 0.5, -1.0, 1.0)  # each print at the bid or the ask
    px = np.maximum(OPTION_TICK, np.round(mids + side * option_half_spread(mids), 2))
    trades = 1 + rng.poisson(spec.option_trades * prob * prob)
    px[:3] = np.where(trades == 1, px[3], px[:3])
    op, hi, lo, cl = px
    hi = np.maximum(hi, np.maximum(op, np.maximum(lo, cl)))
    lo = np.minimum(lo, np.minimum(op, cl))
    mean_size = 6.0 if spec.daily_options else 4.0
    volume = np.maximum(trades, np.round(trades * mean_size * np.exp(rng.normal(-0.18, 0.6, len(ci))))).astype(np.int64)

    names = np.full(len(k_all), "", dtype=object)
    prefixes: dict[tuple[dt.date, bool], str] = {}
    for c in np.unique(ci):
        key = (expiries[c], bool(call_all[c]))
        if key not in prefixes:  # occ_ticker's format, built once per expiry and right
            prefixes[key] = occ_ticker(ticker, key[0], "C" if key[1] else "P", 1.0)[:-8]
        names[c] = f"{prefixes[key]}{round(k_all[c] * 1000):08d}"
    minute = pl.DataFrame(
        {
            "ticker": pl.Series(names[ci], dtype=pl.String),
            "volume": volume,
            "open": op,
            "close": cl,
            "high": hi,
            "low": lo,
            "window_start": start_ns,
            "transactions": trades.astype(np.int64),
        }
    )
    first = np.flatnonzero(np.r_[True, ci[1:] != ci[:-1]]) if len(ci) else np.zeros(0, dtype=np.int64)
    last = np.r_[first[1:], len(ci)] - 1 if len(ci) else first
    daily = pl.DataFrame(
        {
            "ticker": pl.Series(names[ci[first]], dtype=pl.String),
            "volume": np.add.reduceat(volume, first) if len(ci) else volume,
            "open": op[first],
            "close": cl[last],
            "high": np.maximum.reduceat(hi, first) if len(ci) else hi,
            "low": np.minimum.reduceat(lo, first) if len(ci) else lo,
            "window_start": np.full(len(first), _ny_midnight_ns(day), dtype=np.int64),
            "transactions": np.add.reduceat(trades, first).astype(np.int64) if len(ci) else trades,
        }
    )
    return minute, daily


# ============================================================================= writing
