"""Market data for a backtest, loaded once from the Parquet store and shaped for the engines.

A :class:`Market` holds the signal series (bars of the spec's symbol) and, for option specs, every
session's option bars aligned to the same bar positions. It is built once per worker for a data
window; each backtest (a trial, a fold) then runs on a slice of it without touching the store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import polars as pl

from data.calendar import trading_dates
from evaluator.signals import BarSeries, ExternalEvents
from spec_space.models import StrategySpec

NY = "America/New_York"

#: minutes per bar of each spec timeframe
BAR_MINUTES: dict[str, int] = {"1min": 1, "5min": 5, "15min": 15, "1h": 60, "1d": 1440}
_EPOCH = dt.date(1970, 1, 1)


@dataclass
class OptionArrays:
    """Every session's contracts and their bars, flattened: contract ``c`` of session ``d`` has its
    bar at position ``p`` of that session at index ``c_off[c] + p``."""

    day_c0: np.ndarray
    day_c1: np.ndarray
    c_exp: np.ndarray  # expiry, days since 1970-01-01
    c_strike: np.ndarray
    c_call: np.ndarray
    c_off: np.ndarray
    c_ticker: list[str]
    p_open: np.ndarray
    p_high: np.ndarray
    p_low: np.ndarray
    p_close: np.ndarray
    last_cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def last(self, staleness_bars: int) -> np.ndarray:
        """Last trade price at each bar, carried forward at most ``staleness_bars`` bars."""
        if staleness_bars not in self.last_cache:
            self.last_cache[staleness_bars] = _ffill_limited(
                self.p_close, self.c_off, self.day_c0, self.day_c1, self._bars_per_day, staleness_bars
            )
        return self.last_cache[staleness_bars]

    _bars_per_day: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    @staticmethod
    def empty(n_days: int) -> OptionArrays:
        zeros_i = np.zeros(n_days, np.int64)
        return OptionArrays(
            zeros_i,
            zeros_i.copy(),
            np.zeros(0, np.int64),
            np.zeros(0),
            np.zeros(0, np.bool_),
            np.zeros(0, np.int64),
            [],
            np.zeros(0),
            np.zeros(0),
            np.zeros(0),
            np.zeros(0),
            _bars_per_day=np.zeros(n_days, np.int64),
        )


@dataclass
class Market:
    spec_symbol: str
    bars: BarSeries
    day_first_bar: np.ndarray
    day_ord: np.ndarray
    options: OptionArrays
    info: dict[str, Any] = field(default_factory=dict)

    def index_range(self, start: dt.date, end: dt.date) -> tuple[int, int]:
        """First and last bar index of the sessions within [start, end]; raises if there are none."""
        dates = self.bars.session_dates
        first = next((d for d, day in enumerate(dates) if day >= start), None)
        last = next((d for d in range(len(dates) - 1, -1, -1) if dates[d] <= end), None)
        if first is None or last is None or first > last:
            raise LookupError(
                f"no {self.spec_symbol} bars between {start} and {end}; the market holds "
                f"{dates[0] if dates else '-'} .. {dates[-1] if dates else '-'}"
            )
        day = self.bars.day
        return int(self.day_first_bar[first]), int(np.searchsorted(day, last, side="right") - 1)


def signal_symbol(spec: StrategySpec) -> str:
    inst = spec.instrument
    if inst.type == "forex":
        return "C:" + inst.symbol.upper().removeprefix("C:").replace("/", "")
    return inst.symbol


def bars_from_frame(frame: pl.DataFrame, market: str = "stock") -> tuple[BarSeries, np.ndarray, np.ndarray]:
    """Turn a store bars frame (ts in exchange time) into a BarSeries plus session tables.

    ``market`` (the instrument type: stock, option, future, forex) decides which trading day a bar
    belongs to (``data.calendar.trading_dates``): a futures or forex day starts the evening before its
    date, so its evening bars carry negative ``session_minute`` values.
    """
    if frame.is_empty():
        raise LookupError("no bars to backtest on")
    local = frame.get_column("ts")
    if local.dtype.time_zone != NY:  # type: ignore[union-attr]
        local = local.dt.convert_time_zone(NY)
    minute = (local.dt.hour().cast(pl.Int64) * 60 + local.dt.minute().cast(pl.Int64)).to_numpy()
    clock_dates = local.dt.date().to_numpy().astype("datetime64[D]")
    trade_dates = trading_dates(clock_dates, minute, market)
    change = np.ones(len(trade_dates), dtype=bool)
    change[1:] = trade_dates[1:] != trade_dates[:-1]
    day = np.cumsum(change).astype(np.int64) - 1
    day_first_bar = np.flatnonzero(change).astype(np.int64)
    session_dates = trade_dates[change].astype(object).tolist()
    day_ord = np.array([(d - _EPOCH).days for d in session_dates], dtype=np.int64)
    series = BarSeries(
        ts=local.dt.cast_time_unit("ns")
        .dt.convert_time_zone("UTC")
        .dt.replace_time_zone(None)
        .cast(pl.Int64)
        .to_numpy(),
        open=frame.get_column("open").to_numpy().astype(np.float64),
        high=frame.get_column("high").to_numpy().astype(np.float64),
        low=frame.get_column("low").to_numpy().astype(np.float64),
        close=frame.get_column("close").to_numpy().astype(np.float64),
        volume=frame.get_column("volume").to_numpy().astype(np.float64),
        day=day,
        minute=minute,
        session_minute=minute - 1440 * (trade_dates - clock_dates).astype(np.int64),
        weekday=(local.dt.weekday().cast(pl.Int64) - 1).to_numpy(),
        session_dates=session_dates,
    )
    return series, day_first_bar, day_ord


def option_last_prices(spec: StrategySpec, market: Market) -> np.ndarray:
    """Each contract's last trade price per bar within the spec's staleness limit (fill model rule 2);
    for non-option specs the (empty) close array, so both engines pass the kernel the same thing."""
    if spec.instrument.type != "option":
        return market.options.p_close
    return market.options.last(max(1, spec.instrument.max_staleness_minutes // BAR_MINUTES[spec.timeframe]))


def market_key(spec: StrategySpec) -> tuple[object, ...]:
    """What :func:`load_market` reads from a spec: two specs with the same key can share one Market (their
    signals, exits, sizing, option deltas and staleness differ per trial and are applied at run time)."""
    inst = spec.instrument
    longest_dte = max((leg.dte for leg in inst.legs), default=None)
    return (signal_symbol(spec), inst.type, inst.symbol, longest_dte, spec.timeframe, spec.session)


def load_market(
    store: Any,
    spec: StrategySpec,
    start: dt.date,
    end: dt.date,
    *,
    warmup_days: int | None = None,
) -> Market:
    """Load everything ``spec`` needs between ``start`` and ``end`` (plus indicator warm-up) from ``store``."""
    if warmup_days is None:
        warmup_days = 400 if spec.timeframe == "1d" else 10
    symbol = signal_symbol(spec)
    frame = store.bars(
        symbol, start - dt.timedelta(days=warmup_days), end, timeframe=spec.timeframe, session=spec.session
    )
    series, day_first_bar, day_ord = bars_from_frame(frame, spec.instrument.type)
    attach_signals(series, spec)
    options = OptionArrays.empty(len(series.session_dates))
    if spec.instrument.type == "option":
        options = load_options(store, spec, series, day_first_bar, start)
    return Market(symbol, series, day_first_bar, day_ord, options, {"start": start, "end": end})


def _utc_ns(times: list[dt.datetime]) -> np.ndarray:
    # exact integer nanoseconds since the epoch; naive times are UTC. (A naive datetime's .timestamp()
    # reads the machine's local zone, which shifted every event on machines not set to UTC.)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    deltas = [(t if t.tzinfo else t.replace(tzinfo=dt.UTC)) - epoch for t in times]
    return np.array(
        [(d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1_000 for d in deltas], dtype=np.int64
    )


def attach_signals(series: BarSeries, spec: StrategySpec) -> None:
    """Put the spec's external signal lists on the bars (once per content; a different list under the same
    name drops the cached signals computed from the old one)."""
    for name, events in spec.signals.items():
        digest = hashlib.sha256(json.dumps([e.model_dump(mode="json") for e in events]).encode()).hexdigest()
        current = series.external.get(name)
        if current is not None and current.digest == digest:
            continue
        if current is not None:
            for key in [k for k in series.cache if "external_signal" in k or "signal_level" in k]:
                del series.cache[key]
        ordered = sorted(events, key=lambda e: _utc_ns([e.time])[0])
        width = max((len(e.targets) for e in ordered), default=0)
        targets = np.full((len(ordered), width), np.nan)
        for row, event in enumerate(ordered):
            targets[row, : len(event.targets)] = event.targets
        series.external[name] = ExternalEvents(
            ts=_utc_ns([e.time for e in ordered]),
            side=np.array([1 if e.side == "buy" else -1 for e in ordered], dtype=np.int8),
            entry=np.array([e.entry for e in ordered], dtype=np.float64),
            stop=np.array([e.stop for e in ordered], dtype=np.float64),
            targets=targets,
            digest=digest,
        )


def _event_flags(ts: np.ndarray, times: list[dt.datetime]) -> np.ndarray:
    """True on the first bar starting at or after each time (an event is known from then on)."""
    flags = np.zeros(len(ts), dtype=np.bool_)
    if not times:
        return flags
    positions = np.searchsorted(ts, _utc_ns(times), side="left")
    flags[positions[positions < len(ts)]] = True
    return flags
    # exact integer nanoseconds since the epoch; naive times are UTC. (A naive datetime's .timestamp()
    # reads the machine's local zone, which shifted every event on machines not set to UTC.)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    deltas = [(t if t.tzinfo else t.replace(tzinfo=dt.UTC)) - epoch for t in times]
    stamps = np.array(
        [(d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1_000 for d in deltas],
        dtype=np.int64,
    )
    # an event becomes known at its time: it fires on the first bar starting at or after it
    positions = np.searchsorted(ts, stamps, side="left")
    flags[positions[positions < len(ts)]] = True
    return flags


def load_options(
    store: Any, spec: StrategySpec, series: BarSeries, day_first_bar: np.ndarray, start: dt.date
) -> OptionArrays:
    legs = spec.instrument.legs
    longest_dte = max(leg.dte for leg in legs)
    dte_max = longest_dte + 10
    n_days = len(series.session_dates)
    bars_per_day = np.diff(np.append(day_first_bar, len(series.ts))).astype(np.int64)
    frames = []
    for d, day in enumerate(series.session_dates):
        if day < start - dt.timedelta(days=1):
            continue  # warm-up sessions are for indicators only
        try:
            frame = store.option_day_bars(spec.instrument.symbol, day, dte_max=dte_max)
        except LookupError:
            continue
        if frame.is_empty():
            continue
        day_open = series.open[day_first_bar[d]]
        # Keep only what a leg can select or still holds: expiries up to the nearest one at or past the
        # longest leg's DTE (a contract held from an earlier day has an expiry no later than that), and
        # strikes within a band that widens with DTE. This keeps a 0DTE market to a few hundred MB.
        days_left = (pl.col("expiry").cast(pl.Date) - pl.lit(day)).dt.total_days()
        frame = frame.with_columns(days_left.alias("_dte"))
        reachable = frame.filter(pl.col("_dte") >= longest_dte).get_column("expiry").min()
        if reachable is not None:
            frame = frame.filter(pl.col("expiry") <= reachable)
        band = min(0.04 + 0.01 * longest_dte, 0.15)
        frame = frame.filter((pl.col("strike") - day_open).abs() <= day_open * band).drop("_dte")
        frames.append(frame.with_columns(pl.lit(d, dtype=pl.Int64).alias("day")))
    if not frames:
        raise LookupError(
            f"no option bars for {spec.instrument.symbol} in the store; ingest us_options_opra files"
        )
    bar_minutes = BAR_MINUTES[spec.timeframe]
    allopt = pl.concat(frames, how="diagonal_relaxed")
    ts_col = allopt.get_column("ts")
    if ts_col.dtype.time_zone is not None:  # type: ignore[union-attr]
        allopt = allopt.with_columns(pl.col("ts").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    allopt = allopt.with_columns(pl.col("ts").dt.cast_time_unit("ns").cast(pl.Int64).alias("ts_ns"))
    if bar_minutes > 1:
        width = bar_minutes * 60_000_000_000
        # bucket option minutes into the signal bars they belong to (bars start on the bucket)
        bar_ts = series.ts
        idx = np.searchsorted(bar_ts, allopt.get_column("ts_ns").to_numpy(), side="right") - 1
        allopt = allopt.with_columns(pl.Series("bar", idx)).filter(pl.col("bar") >= 0)
        allopt = (
            allopt.sort(["ticker", "ts_ns"])
            .group_by(["day", "ticker", "expiry", "right", "strike", "bar"], maintain_order=True)
            .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last())
        )
        del width
    else:
        idx = np.searchsorted(series.ts, allopt.get_column("ts_ns").to_numpy(), side="left")
        idx = np.minimum(idx, len(series.ts) - 1)
        exact = series.ts[idx] == allopt.get_column("ts_ns").to_numpy()
        allopt = allopt.with_columns(pl.Series("bar", idx)).filter(pl.Series(exact))
    contracts = (
        allopt.select("day", "ticker", "expiry", "right", "strike")
        .unique(["day", "ticker"])
        .sort(["day", "expiry", "right", "strike"])
        .with_row_index("c")
    )
    c_day = contracts.get_column("day").to_numpy().astype(np.int64)
    c_len = bars_per_day[c_day]
    c_off = np.concatenate([[0], np.cumsum(c_len)[:-1]]).astype(np.int64)
    total = int(c_len.sum())
    joined = allopt.join(contracts.select("day", "ticker", "c"), on=["day", "ticker"])
    c_idx = joined.get_column("c").to_numpy().astype(np.int64)
    pos = (
        joined.get_column("bar").to_numpy().astype(np.int64)
        - day_first_bar[joined.get_column("day").to_numpy()]
    )
    flat = c_off[c_idx] + pos
    arrays = {}
    for name in ("open", "high", "low", "close"):
        out = np.full(total, np.nan)
        out[flat] = joined.get_column(name).to_numpy().astype(np.float64)
        arrays[name] = out
    day_c0 = np.searchsorted(c_day, np.arange(n_days), side="left").astype(np.int64)
    day_c1 = np.searchsorted(c_day, np.arange(n_days), side="right").astype(np.int64)
    expiry = contracts.get_column("expiry")
    c_exp = (expiry.cast(pl.Date).cast(pl.Int64)).to_numpy().astype(np.int64)
    return OptionArrays(
        day_c0,
        day_c1,
        c_exp,
        contracts.get_column("strike").to_numpy().astype(np.float64),
        (contracts.get_column("right").cast(pl.Utf8).str.to_uppercase().str.slice(0, 1) == "C").to_numpy(),
        c_off,
        contracts.get_column("ticker").to_list(),
        arrays["open"],
        arrays["high"],
        arrays["low"],
        arrays["close"],
        _bars_per_day=bars_per_day,
    )


@numba.njit(cache=True)
def _ffill_limited(close, c_off, day_c0, day_c1, bars_per_day, limit):  # noqa: ANN001  # pragma: no cover
    out = np.full(len(close), np.nan)
    for d in range(len(day_c0)):
        for c in range(day_c0[d], day_c1[d]):
            base = c_off[c]
            last = np.nan
            age = 0
            for p in range(bars_per_day[d]):
                value = close[base + p]
                if not np.isnan(value):
                    last = value
                    age = 0
                else:
                    age += 1
                out[base + p] = last if age <= limit else np.nan
    return out
