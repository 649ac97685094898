"""The latent price model (stochastic volatility with jumps, overnight gaps) and the minute bars drawn from it for stocks, forex pairs and futures."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from data.calendar import (
    monthly_option_expiry,
    nyse_sessions,
    session_on_or_before,
    weekly_option_expiries,
)
from data.flatfiles import (
    TICK_SIZES,
)
from data.plants import Plant
from data.synth._base import (
    _EARNINGS,
    _FUTURES,
    _MARKET_DRIFT,
    _MARKET_VOL,
    _MIN_NS,
    _TRADING_DAYS,
    _YEAR_NS,
    _ar1,
    _fx_spec,
    _Latent,
    _rng,
    _stochastic_sd,
    _stock_spec,
    _student_t,
    _unit,
)
from data.synth._grid import (
    _day_number,
    _future_contracts,
    _futures_shares,
    _Grid,
    _ny_midnight_ns,
    _Profiles,
)
from data.synth._plants import _forex_trend_drift, _plant_zrce


class _Model:
    """Latent paths of every instrument on one grid, generated on demand and cached."""

    def __init__(self, grid: _Grid, seed: int, start: dt.date, end: dt.date, plant: Plant | None = None) -> None:
        self.grid = grid
        self.seed = seed
        self.plant = plant
        self.start = start
        self.end = end
        self.profiles = _Profiles.build(grid)
        self._latent: dict[str, _Latent] = {}
        self._market: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._usd: np.ndarray | None = None
        ahead = nyse_sessions(start - dt.timedelta(days=7), end + dt.timedelta(days=100))
        self.sessions_ahead: list[dt.date] = [ts.date() for ts in ahead.index]
        self.close_ns: dict[dt.date, int] = {
            ts.date(): int(c.value) for ts, c in zip(ahead.index, ahead["close"], strict=True)
        }

    def market(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The equity market factor: (log returns, minute sd, daily state sd)."""
        if self._market is None:
            g = self.grid
            rng = _rng(self.seed, "market")
            w = self.profiles.eq_vol
            z = _student_t(rng, g.n)
            sd, day_sd = _stochastic_sd(
                rng, g, w, _MARKET_VOL / math.sqrt(_TRADING_DAYS), z,
                log_vol_sd=0.35, persistence=0.92, leverage=-0.6,
            )
            r = sd * z + (_MARKET_DRIFT / _TRADING_DAYS) * w * w
            # Macro news jumps (CPI, FOMC ...), most likely when the market is most active.
            count = rng.poisson(0.12 * g.n_days)
            p = w * w / np.sum(w * w)
            at = rng.choice(g.n, size=count, p=p)
            np.add.at(r, at, rng.normal(0.0, 0.5, count) * day_sd[g.day_idx[at]])
            self._market = (r, sd, day_sd)
        return self._market

    def usd(self) -> np.ndarray:
        if self._usd is None:
            self._usd = _student_t(_rng(self.seed, "usd"), self.grid.n)
        return self._usd

    def latent(self, ticker: str) -> _Latent:
        if ticker not in self._latent:
            if ticker.startswith("C:"):
                self._latent[ticker] = self._fx_latent(ticker[2:])
            else:
                self._latent[ticker] = self._stock_latent(ticker)
        return self._latent[ticker]

    def _stock_latent(self, ticker: str) -> _Latent:
        g = self.grid
        spec = _stock_spec(ticker)
        rng = _rng(self.seed, "stock", ticker)
        mr, msd, mday = self.market()
        w = self.profiles.eq_vol
        z = _student_t(rng, g.n)
        base_idio = spec.idio_vol / math.sqrt(_TRADING_DAYS)
        isd, iday = _stochastic_sd(rng, g, w, base_idio, z, log_vol_sd=0.3, persistence=0.9, leverage=-0.3)
        r = spec.beta * mr + isd * z
        events: list[tuple[int, float]] = []
        if spec.earnings_move > 0:
            for day in _earnings_dates(ticker, self.start, self.end):
                close = g.session_close.get(_day_number(day))
                if close is None:
                    continue
                at = (close + 5 * _MIN_NS - g.t0) // _MIN_NS  # reported five minutes after the close
                r[at] += rng.normal(0.0, spec.earnings_move)
                events.append((close + 5 * _MIN_NS, spec.earnings_move))
        logp = np.empty(g.n + 1)
        logp[0] = math.log(spec.price)
        np.cumsum(r, out=logp[1:])
        logp[1:] += logp[0]
        return _Latent(
            logp=logp,
            sd=np.sqrt((spec.beta * msd) ** 2 + isd**2),
            day_sd=np.sqrt((spec.beta * mday) ** 2 + iday**2),
            base_day_sd=math.sqrt((spec.beta * _MARKET_VOL) ** 2 + spec.idio_vol**2) / math.sqrt(_TRADING_DAYS),
            weights=w,
            events=tuple(events),
        )

    def _fx_latent(self, pair: str) -> _Latent:
        g = self.grid
        spec = _fx_spec(pair)
        rng = _rng(self.seed, "fx", pair)
        own = _student_t(rng, g.n)
        if spec.usd_sign:
            rho = spec.usd_corr
            z = rho * spec.usd_sign * self.usd() + math.sqrt(1 - rho * rho) * own
        else:
            z = own
        w = self.profiles.fx_vol
        base = spec.vol / math.sqrt(260.0)  # forex trades five days a week all year
        sd, day_sd = _stochastic_sd(rng, g, w, base, z, log_vol_sd=0.3, persistence=0.9, leverage=0.0)
        r = sd * z
        plant = self.plant
        if plant is not None and plant.strength > 0 and plant.name == "forex_trend" and plant.params["ticker"] == f"C:{pair}":
            r = r + _forex_trend_drift(self.seed, plant, sd)
        count = rng.poisson(0.05 * g.n_days)
        at = rng.choice(g.n, size=count, p=w * w / np.sum(w * w))
        np.add.at(r, at, rng.normal(0.0, 0.4, count) * day_sd[g.day_idx[at]])
        logp = np.empty(g.n + 1)
        logp[0] = math.log(spec.price)
        np.cumsum(r, out=logp[1:])
        logp[1:] += logp[0]
        return _Latent(logp=logp, sd=sd, day_sd=day_sd, base_day_sd=base, weights=w)

    def expiries(self, ticker: str, day: dt.date) -> list[dt.date]:
        """Listed option expiries of ``ticker`` on ``day`` that this generator trades."""
        spec = _stock_spec(ticker)
        out = set(weekly_option_expiries(day, day + dt.timedelta(days=28)))
        if spec.daily_options:
            i = self.sessions_ahead.index(day)
            out.update(self.sessions_ahead[i : i + 5])
        year, month = day.year, day.month
        monthlies = 0
        while monthlies < 2:
            expiry = monthly_option_expiry(year, month)
            if expiry >= day:
                out.add(expiry)
                monthlies += 1
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return sorted(out)


def _earnings_dates(ticker: str, start: dt.date, end: dt.date) -> list[dt.date]:
    if ticker in _EARNINGS:
        return [d for d in _EARNINGS[ticker] if start <= d <= end]
    out = []
    for year in range(start.year, end.year + 1):
        for month in (1, 4, 7, 10):
            day = session_on_or_before(dt.date(year, month, 20) + dt.timedelta(days=int(20 * _unit(ticker, f"earn{year}{month}"))))
            if start <= day <= end:
                out.append(day)
    return out


# ============================================================================= minute bars


@dataclass
class _Minutes:
    """Minute bars of one ticker on the grid (rows in time order)."""

    ticker: str
    index: np.ndarray  # grid minute of each bar
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    transactions: np.ndarray
    file_day: np.ndarray  # day number of the file the bar belongs to
    regular: np.ndarray  # counts for the day bar's open/high/low/close

    def frame(self, g: _Grid) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "ticker": pl.Series([self.ticker], dtype=pl.String).new_from_index(0, len(self.index)),
                "volume": self.volume.astype(np.int64),
                "open": self.open,
                "close": self.close,
                "high": self.high,
                "low": self.low,
                "window_start": g.ns_at(self.index),
                "transactions": self.transactions.astype(np.int64),
                "_day": self.file_day.astype(np.int64),
                "_reg": self.regular,
            }
        )


def _round_to(x: np.ndarray, tick: float, decimals: int) -> np.ndarray:
    # The second round turns k * tick into the shortest decimal (2071.3, not 2071.3000000000002).
    return np.round(np.round(x / tick) * tick, decimals)


def _decimals(tick: float) -> int:
    text = f"{tick:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


@dataclass
class _BarNoise:
    """The random draws behind a run of minute bars, drawn before any price is known.

    Prices are a pure function of these draws and the latent path (:func:`_price_bars`), so a planted
    edge can change the path after the draws and re-price only the bars it needs (one day at a time)
    while every random stream stays exactly where it is in the null market.
    """

    u: np.ndarray  # (4, n): which extreme of the bridge, bid or ask at the open and the close
    odd: np.ndarray | None  # (4, n): uniform draws deciding sub-penny prints, None without them
    jitter: np.ndarray | None  # (4, n): the sub-penny offsets

    def take(self, rows: np.ndarray) -> _BarNoise:
        return _BarNoise(
            self.u[:, rows],
            None if self.odd is None else self.odd[:, rows],
            None if self.jitter is None else self.jitter[:, rows],
        )


def _bar_noise(rng: np.random.Generator, n: int, *, tick: float, subpenny: np.ndarray | float = 0.0) -> _BarNoise:
    # Same calls in the same order as before the split, so seeds keep writing the same files.
    u = rng.random((4, n))
    if np.any(np.asarray(subpenny) > 0):
        return _BarNoise(u, rng.random((4, n)), rng.uniform(-tick / 2, tick / 2, (4, n)))
    return _BarNoise(u, None, None)


def _bars(
    rng: np.random.Generator, logp: np.ndarray, sd: np.ndarray, index: np.ndarray, trades: np.ndarray, *,
    tick: float, half_spread: np.ndarray | float, subpenny: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OHLC of the given minutes from the latent path (see :func:`_price_bars`)."""
    noise = _bar_noise(rng, len(index), tick=tick, subpenny=subpenny)
    return _price_bars(noise, logp, sd, index, trades, tick=tick, half_spread=half_spread, subpenny=subpenny)


def _price_bars(
    noise: _BarNoise, logp: np.ndarray, sd: np.ndarray, index: np.ndarray, trades: np.ndarray, *,
    tick: float, half_spread: np.ndarray | float, subpenny: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OHLC of the given minutes from the latent path and pre-drawn noise.

    Open and close are the latent prices at the minute's edges plus a trade at the bid or the ask;
    the high and low are exact draws of the maximum and minimum of the Brownian bridge between them
    (fewer trades sample the path more coarsely, so the range shrinks). One trade makes O=H=L=C.
    """
    u = noise.u
    a = logp[index]
    b = logp[index + 1]
    var = sd[index] ** 2 * np.minimum(1.0, trades / 8.0)
    gap2 = (b - a) ** 2
    top = 0.5 * (a + b + np.sqrt(gap2 - 2.0 * var * np.log1p(-u[0])))
    bottom = 0.5 * (a + b - np.sqrt(gap2 - 2.0 * var * np.log1p(-u[1])))
    op = np.exp(a) + half_spread * np.where(u[2] < 0.5, -1.0, 1.0)
    cl = np.exp(b) + half_spread * np.where(u[3] < 0.5, -1.0, 1.0)
    hi = np.exp(top) + half_spread
    lo = np.exp(bottom) - half_spread
    op = np.where(trades == 1, cl, op)
    few = trades <= 2
    hi = np.where(few, np.maximum(op, cl), hi)
    lo = np.where(few, np.minimum(op, cl), lo)
    decimals = _decimals(tick)
    px = _round_to(np.stack([op, hi, lo, cl]), tick, decimals)
    if noise.odd is not None and noise.jitter is not None:  # midpoint and dark-pool prints: 4 decimals
        odd = noise.odd < subpenny
        px = np.where(odd, np.round(px + noise.jitter, 4), px)
    px = np.maximum(px, tick)
    op, hi, lo, cl = px
    hi = np.maximum(hi, np.maximum(op, cl))
    lo = np.minimum(lo, np.minimum(op, cl))
    return op, hi, lo, cl


def _in_range(day_numbers: np.ndarray, start: dt.date, end: dt.date) -> np.ndarray:
    return (day_numbers >= _day_number(start)) & (day_numbers <= _day_number(end))


def _stock_minutes(model: _Model, ticker: str) -> _Minutes:
    g = model.grid
    spec = _stock_spec(ticker)
    lat = model.latent(ticker)
    rng = _rng(model.seed, "stock-bars", ticker)
    idx = np.flatnonzero((g.pre | g.reg | g.post) & _in_range(g.ny_day, model.start, model.end))
    day_level = np.exp(rng.normal(0.0, 0.2, g.n_days) - 0.02)
    lam = (
        spec.trades_per_day * model.profiles.stock_activity[idx] * lat.vol_factor()[idx] ** 0.8
        * day_level[g.day_idx[idx]]
    )
    trades = rng.poisson(lam)
    keep = trades > 0  # Polygon writes a bar only for minutes with trades
    idx, trades = idx[keep], trades[keep]
    regular = g.reg[idx]
    half_spread = np.where(regular, 0.005, 0.02)  # extended hours quote wider
    # The closing auction prints in whole cents, so the day bar's close does too.
    subpenny = np.where(regular & (g.ny_min[idx] == g.close_min[idx] - 1), 0.0, 0.03)
    noise = _bar_noise(rng, len(idx), tick=0.01, subpenny=subpenny)
    size = spec.trade_size * np.exp(rng.normal(-0.06, 0.35, len(idx)))
    volume = np.maximum(trades, np.round(trades * size)).astype(np.int64)
    transactions = trades.copy()

    def price(rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sel = np.arange(len(idx))[rows]
        return _price_bars(
            noise.take(sel), lat.logp, lat.sd, idx[sel], trades[sel], tick=0.01,
            half_spread=half_spread[sel], subpenny=subpenny[sel],
        )

    plant = model.plant
    if plant is not None and plant.strength > 0 and plant.name == "zrce" and plant.params["ticker"] == ticker:
        # Before the bars are priced (and before options and futures read this latent path).
        _plant_zrce(model, plant, lat, idx, volume, transactions, price)
    op, hi, lo, cl = price(slice(None))
    return _Minutes(ticker, idx, op, hi, lo, cl, volume, transactions, g.ny_day[idx], regular)


def _forex_minutes(model: _Model, ticker: str) -> _Minutes:
    g = model.grid
    spec = _fx_spec(ticker[2:])
    lat = model.latent(ticker)
    rng = _rng(model.seed, "fx-bars", ticker)
    idx = np.flatnonzero(g.fx_open & _in_range(g.utc_day, model.start, model.end))
    day_level = np.exp(rng.normal(0.0, 0.15, g.n_days) - 0.01)
    lam = (
        spec.ticks_per_day * model.profiles.fx_activity[idx] * lat.vol_factor()[idx] ** 0.8
        * day_level[g.day_idx[idx]]
    )
    ticks = rng.poisson(lam)
    keep = ticks > 0
    idx, ticks = idx[keep], ticks[keep]
    op, hi, lo, cl = _bars(rng, lat.logp, lat.sd, idx, ticks, tick=10.0**-spec.decimals, half_spread=0.0)
    # Polygon's forex aggregates are built from quotes: volume and transactions both count them.
    return _Minutes(ticker, idx, op, hi, lo, cl, ticks, ticks, g.utc_day[idx], np.ones(len(idx), dtype=bool))


def _futures_minutes(model: _Model, root: str) -> list[_Minutes]:
    g = model.grid
    spec = _FUTURES[root]
    tick = TICK_SIZES[root]
    ref = model.latent(spec.reference)
    rng = _rng(model.seed, "futures", root)
    contracts = _future_contracts(root, model.start, model.end)
    shares = _futures_shares(contracts, g)
    live = (g.futures_day >= 0) & _in_range(g.futures_day, model.start, model.end)
    trade_day_idx = np.where(live, g.futures_day - g.day0, 0)
    activity = model.profiles.metal_activity if spec.metal else model.profiles.futures_activity
    day_level = np.exp(rng.normal(0.0, 0.2, g.n_days) - 0.02)
    # The futures-ETF basis wanders by a few ticks around fair carry.
    price0 = math.exp(ref.logp[0]) * spec.ratio
    basis = np.concatenate(([0.0], _ar1(rng, g.n, 0.995, 1.5 * tick / price0)))
    edges_ns = g.t0 + np.arange(g.n + 1, dtype=np.int64) * _MIN_NS
    out = []
    for k, contract in enumerate(contracts):
        share = shares[k][trade_day_idx]
        idx = np.flatnonzero(live & (share > 0))
        if len(idx) == 0:
            continue
        expiry_ns = _ny_midnight_ns(contract.expiry) + 16 * 60 * _MIN_NS
        logf = ref.logp + math.log(spec.ratio) + spec.carry * (expiry_ns - edges_ns) / _YEAR_NS + basis
        lam = (
            spec.trades_per_day * activity[idx] * ref.vol_factor()[idx] ** 0.8 * share[idx]
            * day_level[trade_day_idx[idx]]
        )
        trades = rng.poisson(lam)
        keep = trades > 0
        idx, trades = idx[keep], trades[keep]
        op, hi, lo, cl = _bars(rng, logf, ref.sd, idx, trades, tick=tick, half_spread=tick / 2)
        volume = np.maximum(trades, np.round(trades * spec.trade_size * np.exp(rng.normal(-0.12, 0.5, len(idx)))))
        out.append(
            _Minutes(contract.ticker, idx, op, hi, lo, cl, volume.astype(np.int64), trades,
                     g.futures_day[idx], np.ones(len(idx), dtype=bool))
        )
    return out


# ============================================================================= options
