"""A StrategySpec traded live (paper or approved live) as a Lumibot strategy, on any Lumibot broker.

Why this module exists: :class:`evaluator.lumibot_engine.SpecStrategy` is built for backtests (it
reads precomputed arrays of a backtest ``Market`` and maps Lumibot's clock to bar indices) and has no
live mode yet. :func:`brokers.paper.build_strategy` uses ``evaluator.lumibot_engine.live_strategy``
as soon as the evaluator provides one; until then deployments run :class:`LiveSpecStrategy`.

What it shares with the engines: the signals. At each bar close it rebuilds a
:class:`evaluator.market.Market` from the broker's closed bars and computes the spec's entry, exit,
window and end-of-day arrays with :func:`evaluator.fast.signal_arrays`, the function both engines use,
so an expression means the same thing in a backtest and on paper. What differs is execution: fills,
positions and cash are the broker's.

Decisions (the fill model's order, acted on as soon as bar ``i`` has closed, i.e. at bar ``i + 1``'s open):

1. in a position: close on the exit signal, the end-of-day flat time, ``max_hold_minutes``, or an
   opposite entry (``direction: both``, then re-enter);
2. flat: enter when the entry signal fires inside the entry window and ``max_trades_per_day`` allows;
   size ``fixed`` (shares, or lots for forex), ``pct_equity`` or ``risk`` (stop distance) from the
   broker's portfolio value and the bar's close, in steps of 1 share / 0.01 lot;
3. every iteration (not only at bar closes): the stop loss, take profit, trailing stop and break-even
   levels are checked against the broker's last price and closed with a market order when touched.

Levels are measured from the entry fill; after a restart the position comes from the broker and its
average price is the entry (or the last price when the broker does not report one), and the trailing
peak restarts there.

Not supported live here (refused with a message when the deployment starts): options (contract
selection from the broker's chain), futures, partial take-profits, external signal lists.

Quantities: Lumibot orders carry shares for stocks and base-currency units for forex (0.1 lot EURUSD =
10,000 units), the unit of :class:`brokers.base.Leg` and of :class:`brokers.lumibot_tradelocker.TradeLockerBroker`.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from brokers.lumibot_tradelocker import _no_dotenv
from spec_space.instruments import forex_pair
from spec_space.models import Level, StrategySpec

with _no_dotenv():
    from lumibot.entities import Asset
    from lumibot.strategies import Strategy

__all__ = ["LiveSpecStrategy", "UnsupportedLive", "check_live_support", "live_asset", "units_per_quantity"]

#: Bars fetched per decision: enough warm-up for the catalogue's indicators at common periods.
DEFAULT_LOOKBACK = 400
# spec timeframe -> (Lumibot timestep to fetch, bar minutes). Tradier's timesales come in 1/5/15
# minutes, so hourly bars are built from 15-minute ones.
_FETCH = {
    "1min": ("minute", 1),
    "5min": ("5 minutes", 5),
    "15min": ("15 minutes", 15),
    "1h": ("15 minutes", 60),
    "1d": ("day", 1440),
}
_SLEEP = {"1min": "1M", "5min": "1M", "15min": "1M", "1h": "1M", "1d": "15M"}


class UnsupportedLive(ValueError):
    """The spec uses a building block this live interpreter cannot trade; the message names it."""


def check_live_support(spec: StrategySpec) -> None:
    """Raise :class:`UnsupportedLive` for what :class:`LiveSpecStrategy` does not trade (module docstring)."""
    problems = []
    kind = spec.instrument.type
    if kind == "option":
        problems.append("option instruments (contract selection from the broker's chain)")
    if kind == "future":
        problems.append("futures (Tradier futures are behind a feature flag)")
    if spec.exits.partial_take_profits:
        problems.append("exits.partial_take_profits")
    if spec.signals or spec.external_signal_names():
        problems.append("external signal lists (spec.signals)")
    if problems:
        raise UnsupportedLive(
            f"spec {spec.name!r} cannot be paper traded by the live interpreter: {', '.join(problems)} "
            "are not supported live yet (they need SpecStrategy's live mode in evaluator.lumibot_engine)"
        )


def live_asset(spec: StrategySpec) -> Any:
    inst = spec.instrument
    if inst.type == "forex":
        return Asset(forex_pair(inst.symbol).pair, asset_type=Asset.AssetType.FOREX)
    return Asset(inst.symbol, asset_type=Asset.AssetType.STOCK)


def units_per_quantity(spec: StrategySpec) -> tuple[float, float]:
    """(units per spec quantity, quantity step): forex quantities are lots of ``lot_units``."""
    if spec.instrument.type == "forex":
        return forex_pair(spec.instrument.symbol).lot_units, 0.01
    return 1.0, 1.0


def _floor_step(x: float, step: float) -> float:
    return math.floor(x / step + 1e-9) * step


def _minutes(text: str | None) -> int | None:
    if text is None:
        return None
    t = dt.time.fromisoformat(text)
    return t.hour * 60 + t.minute


class LiveSpecStrategy(Strategy):
    """Lumibot strategy trading ``parameters["spec"]`` (a StrategySpec as a dict) live.

    Parameters (``Strategy(parameters=...)``): ``spec`` (required), ``sleeptime`` (Lumibot syntax,
    default one minute), ``lookback`` (bars fetched per decision, default 400).
    """

    def initialize(self) -> None:
        params = self.parameters or {}
        self.spec = StrategySpec.model_validate(params["spec"])
        check_live_support(self.spec)
        self.asset = live_asset(self.spec)
        self.units, self.step = units_per_quantity(self.spec)
        self.fetch_timestep, self.bar_minutes = _FETCH[self.spec.timeframe]
        self.lookback = int(params.get("lookback") or DEFAULT_LOOKBACK)
        self.sleeptime = params.get("sleeptime") or _SLEEP[self.spec.timeframe]
        self.decided_bar: pd.Timestamp | None = None
        self.entry_price: float | None = None
        self.entry_time: dt.datetime | None = None
        self.best_price: float | None = None
        self.stop_price: float | None = None
        self.target_price: float | None = None
        self.entry_order_id: str | None = None
        self.trades_day: dt.date | None = None
        self.trades_today = 0
        self.log_message(
            f"live spec {self.spec.name}: {self.spec.instrument.type} {self.asset} {self.spec.timeframe}"
        )

    # ------------------------------------------------------------------ data
    def _closed_bars(self) -> pd.DataFrame | None:
        fetch_minutes = 15 if self.spec.timeframe == "1h" else self.bar_minutes
        factor = self.bar_minutes // fetch_minutes
        bars = self.get_historical_prices(self.asset, self.lookback * factor, self.fetch_timestep)
        if bars is None or bars.df is None or bars.df.empty:
            return None
        frame = bars.df[["open", "high", "low", "close", "volume"]].astype(float)
        if factor > 1:
            frame = (
                frame.resample(f"{self.bar_minutes}min", label="left", closed="left")
                .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
                .dropna(subset=["open"])
            )
        # a bar is usable once it has closed (delayed data sources are already behind "now")
        now = pd.Timestamp(dt.datetime.now(dt.UTC))
        length = pd.Timedelta(minutes=self.bar_minutes if self.bar_minutes < 1440 else 1440)
        index = (
            frame.index.tz_convert("UTC") if frame.index.tz is not None else frame.index.tz_localize("UTC")
        )
        return frame[index + length <= now]

    def _signals(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        from evaluator.fast import signal_arrays
        from evaluator.market import NY, Market, OptionArrays, bars_from_frame

        index = frame.index.tz_convert(NY) if frame.index.tz is not None else frame.index.tz_localize(NY)
        table = pl.DataFrame(
            {
                "ts": pl.Series(index.tz_convert("UTC").as_unit("ns").asi8, dtype=pl.Int64)
                .cast(pl.Datetime("ns", "UTC"))
                .dt.convert_time_zone(NY),
                **{
                    c: frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")
                },
            }
        )
        series, day_first_bar, day_ord = bars_from_frame(table)
        market = Market(
            self.spec.instrument.symbol,
            series,
            day_first_bar,
            day_ord,
            OptionArrays.empty(len(series.session_dates)),
        )
        return signal_arrays(self.spec, market)

    # ------------------------------------------------------------------ position
    def _position_qty(self) -> float:
        position = self.get_position(self.asset)
        return float(position.quantity) if position is not None else 0.0

    def _distance(self, level: Level | None, price: float, atr: float) -> float | None:
        if level is None:
            return None
        if level.pct is not None:
            return level.pct * price
        if level.points is not None:
            return level.points
        if level.pips is not None:
            return level.pips * forex_pair(self.spec.instrument.symbol).pip_size
        if level.atr is not None and math.isfinite(atr):
            return level.atr * atr
        return None

    def _set_levels(self, direction: int, price: float, atr: float) -> None:
        stop = self._distance(self.spec.exits.stop_loss, price, atr)
        target = self._distance(self.spec.exits.take_profit, price, atr)
        self.entry_price = self.best_price = price
        self.stop_price = price - direction * stop if stop else None
        self.target_price = price + direction * target if target else None

    def _size(self, price: float, atr: float) -> float:
        sizing = self.spec.sizing
        mult = self.units  # value of one spec quantity per unit of price
        equity = float(self.get_portfolio_value() or 0.0)
        if sizing.mode == "fixed":
            q = sizing.quantity
        elif sizing.mode == "pct_equity":
            q = _floor_step(equity * sizing.pct_equity / (price * mult), self.step)
        else:
            stop = self._distance(self.spec.exits.stop_loss, price, atr)
            q = _floor_step(equity * sizing.risk_pct / (stop * mult), self.step) if stop else 0.0
        return round(q * self.units, 8)

    def _side(self, direction: int, *, opening: bool) -> str:
        buy = (direction > 0) == opening
        if self.spec.instrument.type == "stock":
            if opening:
                return "buy" if buy else "sell_short"
            return "buy_to_cover" if buy else "sell"
        return "buy" if buy else "sell"

    def _close(self, qty: float, why: str) -> None:
        direction = 1 if qty > 0 else -1
        self.log_message(f"closing {qty:+g} {self.asset}: {why}")
        self.submit_order(self.create_order(self.asset, abs(qty), self._side(direction, opening=False)))
        self.entry_price = self.entry_time = self.best_price = self.stop_price = self.target_price = None

    def _open(self, direction: int, price: float, atr: float, why: str) -> None:
        units = self._size(price, atr)
        if units <= 0:
            self.log_message(f"entry signal ({why}) but the size rounds to zero; skipped")
            return
        self.log_message(f"opening {direction * units:+g} {self.asset}: {why}")
        order = self.create_order(self.asset, units, self._side(direction, opening=True))
        self._set_levels(direction, price, atr)
        self.entry_order_id = order.identifier
        if self.submit_order(order) is None:  # refused (e.g. by the deployment's risk guard)
            self.entry_price = self.best_price = self.stop_price = self.target_price = None
            return
        self.entry_time = dt.datetime.now(dt.UTC)
        self.trades_today += 1

    def on_filled_order(
        self, position: Any, order: Any, price: float, quantity: float, multiplier: float
    ) -> None:
        # the levels were set from the bar's close when the entry went out: move them to the actual
        # fill, keeping their distances
        if order.identifier != self.entry_order_id or not price or self.entry_price is None:
            return
        shift = float(price) - self.entry_price
        self.entry_price = self.best_price = float(price)
        if self.stop_price is not None:
            self.stop_price += shift
        if self.target_price is not None:
            self.target_price += shift

    # ------------------------------------------------------------------ the loop
    def _check_levels(self, qty: float, price: float) -> bool:
        """Stop, target, trailing and break-even against the current price; True if it closed."""
        direction = 1 if qty > 0 else -1
        if self.entry_price is None:  # restarted into a position: the broker's average price is the entry
            position = self.get_position(self.asset)
            avg = getattr(position, "avg_fill_price", None)
            self._set_levels(direction, float(avg) if avg else price, float("nan"))
        assert self.entry_price is not None
        ex = self.spec.exits
        self.best_price = (
            max(self.best_price or price, price) if direction > 0 else min(self.best_price or price, price)
        )
        gain = direction * (self.best_price - self.entry_price) / self.entry_price
        if ex.break_even is not None and gain >= ex.break_even.trigger_pct:
            be = self.entry_price * (1 + direction * ex.break_even.buffer_pct)
            self.stop_price = (
                be if self.stop_price is None else (max if direction > 0 else min)(self.stop_price, be)
            )
        if ex.trailing is not None and gain >= ex.trailing.activation_pct:
            trail = self.best_price * (1 - direction * ex.trailing.pct)
            self.stop_price = (
                trail if self.stop_price is None else (max if direction > 0 else min)(self.stop_price, trail)
            )
        if self.stop_price is not None and direction * (price - self.stop_price) <= 0:
            self._close(qty, f"stop {self.stop_price:g} touched at {price:g}")
            return True
        if self.target_price is not None and direction * (price - self.target_price) >= 0:
            self._close(qty, f"target {self.target_price:g} reached at {price:g}")
            return True
        return False

    def on_trading_iteration(self) -> None:
        qty = self._position_qty()
        price = self.get_last_price(self.asset)
        if qty != 0 and price is not None and self._check_levels(qty, float(price)):
            return
        frame = self._closed_bars()
        if frame is None or len(frame) < 2:
            return
        last = frame.index[-1]
        if self.decided_bar is not None and last <= self.decided_bar:
            return
        self.decided_bar = last
        sig = self._signals(frame)
        i = len(frame) - 1
        close = float(frame["close"].iloc[-1])
        atr = float(sig["atr"][i])
        day = last.date()
        if day != self.trades_day:
            self.trades_day, self.trades_today = day, 0
        direction = 0 if qty == 0 else (1 if qty > 0 else -1)
        want = 0
        if bool(sig["entry_ok"][i]):
            if bool(sig["long"][i]) and self.spec.direction in ("long", "both"):
                want = 1
            elif bool(sig["short"][i]) and self.spec.direction in ("short", "both"):
                want = -1
        if direction != 0:
            hold = self.spec.exits.max_hold_minutes
            reasons = []
            if bool(sig["exit_long" if direction > 0 else "exit_short"][i]):
                reasons.append("exit signal")
            if bool(sig["force_flat"][i]):
                reasons.append("end-of-day flat time")
            if (
                hold
                and self.entry_time
                and dt.datetime.now(dt.UTC) - self.entry_time >= dt.timedelta(minutes=hold)
            ):
                reasons.append(f"held {hold} minutes")
            if want == -direction and self.spec.direction == "both":
                reasons.append("reversal")
            if not reasons:
                return
            self._close(qty, ", ".join(reasons) + f" at bar {last}")
            if "reversal" not in reasons:
                return
        limit = self.spec.sizing.max_trades_per_day
        if want != 0 and (limit is None or self.trades_today < limit):
            self._open(want, close, atr, f"{'long' if want > 0 else 'short'} entry at bar {last}")
