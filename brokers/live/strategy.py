"""The live strategy: a StrategySpec traded on a live Lumibot broker (paper or real money) under the fill
model's rules, with the broker's fills, positions and cash (see :mod:`brokers.live`)."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from brokers.live import assets as live_assets
from brokers.live import bars as live_data
from brokers.live.chain import LiveChain
from brokers.live.futures import LiveFutures
from brokers.live.reconcile import BrokerReconcile
from brokers.live.staged import LiveStaging
from evaluator import _kernel as K
from evaluator.fast import signal_arrays
from evaluator.fill_model import EXIT_REASONS
from evaluator.lumibot._lumibot import Asset
from evaluator.lumibot.core import Action, Resting, SpecCore
from evaluator.lumibot.plan import NS_PER_MIN, Plan, spec_plan
from evaluator.market import NY, Market, signal_symbol
from spec_space.models import StrategySpec

_NO_END = 1 << 62  # live plans have no window end


@dataclass(frozen=True)
class LiveSettings:
    """How a live SpecStrategy reads and trades its broker: derived from the spec and the broker once, by
    :func:`brokers.live.live_strategy`, and handed to :meth:`LiveSpecStrategy.configure_live`."""

    broker: str  # tradier | tradelocker | another Lumibot broker's name
    # resting: a single-instrument position's stop and target are one bracket held at the broker, its partial
    # targets limit orders next to it; bracket: the bracket is held, the partials are watched (a broker whose
    # exits must be attached to the position)
    exits: str
    bar_minutes: int
    timestep: str  # the Lumibot timestep fetched
    factor: int  # fetched bars per signal bar
    lookback: int  # signal bars per decision
    sleeptime: str
    include_after_hours: bool
    fill_wait: float  # seconds an entry waits for its fills inside the iteration
    clock: Callable[[], int] = time.time_ns  # now, in ns since the epoch (the bar whose open is now)


def live_plan(spec: StrategySpec) -> Plan:
    """The static part of a plan for live trading; ``market`` and ``sig`` are set at each decision."""
    return spec_plan(
        spec,
        market=None,  # the first decision's market
        i0=0,
        i1=_NO_END,
        sig={},
        p_last=np.zeros(0),
        bar_at={},
        sentinel_at={},
        close_days=set(),
    )


class LiveSpecStrategy(BrokerReconcile, LiveChain, LiveFutures, LiveStaging, SpecCore):
    """SpecStrategy's live counterpart: the same position state and rules (:class:`SpecCore`), decisions
    from the broker's bars and fills from its order states. Built by :func:`brokers.live.live_strategy`,
    which calls :meth:`configure_live`.

    One decision per closed bar of the broker's data, in the kernel's order: step 7 on bar i's close, then
    steps 1-5 at bar i + 1's open, which is now (:mod:`brokers.live`). Fills, positions and cash are the
    broker's; the state follows them.
    """

    live: LiveSettings

    def configure_live(self, spec: StrategySpec, settings: LiveSettings) -> None:
        """Live mode: decisions from the broker's bars, fills from the broker's order states."""
        self._init_state(live_plan(spec))
        self.live = settings
        self.live_lock = threading.RLock()
        self.decided_ns = -1  # start of the last bar decided on
        self.entry_pending = False  # entry orders out, not all filled yet
        self.entry_bar_ns = 0  # start of the bar the position entered in (its best price counts from it)
        self.live_orders: dict[int, tuple[Any, Action, int]] = {}  # id(order) -> (order, action, leg)
        self.live_pend_legs: list[live_data.Contract] = []
        self.deferred: dict[str, Any] | None = None  # a reversal's entry, sent once its exit has filled
        self.settle = False  # fills were just processed: positions are compared from the next iteration
        self.live_day: dt.date | None = None
        self.live_warned: set[str] = set()
        self.live_cancelled: set[int] = set()  # id() of orders this run asked the broker to cancel
        # a staged conversion's short leg, sold at the next open (brokers.live.staged)
        self.live_convert: live_data.Contract | None = None
        self.live_convert_leg: tuple[Any, live_data.Contract] | None = None
        self.live_contract = None  # futures: the listed contract traded (brokers.live.futures)
        self.live_front_of_day = None  # futures: (trading day, its front month) as the broker named it
        self.set_parameters({"spec": spec.model_dump(mode="json")})

    def on_filled_order(
        self, position: Any, order: Any, price: float, quantity: float, multiplier: float
    ) -> None:
        with self.live_lock:
            self._live_sync()

    def on_canceled_order(self, order: Any) -> None:
        with self.live_lock:
            self._live_sync()

    def on_error_order(self, order: Any, error: Any = None) -> None:
        with self.live_lock:
            self._live_sync()

    def initialize(self) -> None:
        self.sleeptime = self.live.sleeptime

    def on_trading_iteration(self) -> None:
        with self.live_lock:
            kind = self.plan.spec.instrument.type
            self._live_front(live_data.session_minute_and_date(self.live.clock(), kind)[1])
            self._live_sync()
            if self._live_busy():
                return  # market orders still working: the next decision waits for their fills
            if self.deferred is not None:
                deferred, self.deferred = self.deferred, None
                if self.direction == 0:  # the reversal's exit filled (a refused one keeps the position)
                    self._live_enter(**deferred)
                return
            if self.settle:
                self.settle = False
            else:
                self._live_reconcile()
            if self.direction != 0 and self._live_partials_watched() and self._live_watch():
                return
            market = self._live_market()
            if market is None:
                return
            i = len(market.bars) - 1
            ts_i = int(market.bars.ts[i])
            if ts_i <= self.decided_ns:
                return
            self.decided_ns = ts_i
            self._live_decide(market, i)

    # ------------------------------------------------------------------ live: data

    def _live_market(self) -> Market | None:
        live = self.live
        spec = self.plan.spec
        try:
            bars = self.get_historical_prices(
                self.plan.underlying,
                live.lookback * live.factor,
                live.timestep,
                include_after_hours=live.include_after_hours,
            )
        except Exception as exc:  # a data outage skips this iteration's decision, not the deployment
            self.log_message(f"no bars of {self.plan.underlying} from the broker: {exc}", color="yellow")
            return None
        if bars is None or getattr(bars, "df", None) is None or bars.df.empty:
            self._live_warn("bars", f"no {live.timestep} bars of {self.plan.underlying} from the broker yet")
            return None
        frame = live_data.closed_bars(bars.df, spec, pd.Timestamp(live.clock(), tz="UTC"))
        if len(frame) < 2:
            return None
        return live_data.frame_market(
            signal_symbol(spec), frame, intraday=live.bar_minutes < 1440, kind=spec.instrument.type
        )

    def _live_price(self, asset: Any) -> float | None:
        try:
            price = self.get_last_price(asset)
        except Exception as exc:  # a data hiccup must not end the deployment; the caller falls back
            self.log_message(f"no last price for {asset}: {exc}", color="yellow")
            return None
        if price is None:
            return None
        value = float(price)
        return value if math.isfinite(value) and value > 0 else None

    def _live_warn(self, key: str, message: str) -> None:
        if key not in self.live_warned:
            self.live_warned.add(key)
            self.log_message(message, color="yellow")

    # ------------------------------------------------------------------ live: one decision

    def _live_decide(self, market: Market, i: int) -> None:
        live = self.live
        plan = self.plan
        prm = self.prm
        spec = plan.spec
        plan.market = market
        plan.sig = sig = signal_arrays(spec, market)
        bars = market.bars
        bar_ns = live.bar_minutes * NS_PER_MIN
        ts_i = int(bars.ts[i])
        # bar j, whose open is now: the bar after i, or the bar now forming when the data lag the clock
        ts_j = max(ts_i + bar_ns, live.clock() // bar_ns * bar_ns)
        # session minutes, not clock minutes: a forex or futures day opens the evening before its date
        kind = spec.instrument.type
        minute_i = int(bars.session_minute[i])
        day_i = bars.session_dates[int(bars.day[i])]
        minute_j, day_j = live_data.session_minute_and_date(ts_j, kind)
        # the arrays' own window and flat flags treat the last bar as its session's last (the backtest
        # knows; live, the next bar does not exist yet), so these two come from the calendar
        flat = live_data.spec_session_minute(spec.exits.eod_flat_time, kind)
        ff_i = flat is not None and (minute_i >= flat or live_data.is_last_bar(spec, ts_i, live.bar_minutes))
        ff_j = flat is not None and (minute_j >= flat or live_data.is_last_bar(spec, ts_j, live.bar_minutes))
        w0, w1 = (
            live_data.spec_session_minute(spec.entry.window_start, kind),
            live_data.spec_session_minute(spec.entry.window_end, kind),
        )
        entry_ok = (w0 is None or minute_i >= w0) and (w1 is None or minute_i < w1) and not (ff_i or ff_j)

        self._live_front(day_j)
        if self.live_day is not None and day_i > self.live_day:
            # bar i opened a new trading day whose first open was not decided at (a data gap at the roll)
            self.live_day, self.trades_today = day_i, 0

        # ---- 7. decisions on bar i's close
        if self.direction != 0:
            v_close, v_best, priced = self._live_marks(i)
            if priced and ts_i >= self.entry_bar_ns:
                bar_best = v_best if self.single else v_close
                if bar_best > self.best_v:
                    self.best_v = bar_best
            if not self.single and priced:
                self._close_mark_levels(v_close)
            self._live_stage_trigger(i, v_close, priced, day_i == day_j)
            exit_signal = sig["exit_long"][i] if self.direction > 0 else sig["exit_short"][i]
            if self.pend_exit_frac == 0.0 and exit_signal:
                self.pend_exit_frac, self.pend_exit_reason = 1.0, 0
        want = 0
        dirp = prm[K.P_DIRECTION]
        if entry_ok and (prm[K.P_MAX_TRADES_DAY] <= 0 or self.trades_today < prm[K.P_MAX_TRADES_DAY]):
            if sig["long"][i] and dirp >= 0:
                want = 1
            elif sig["short"][i] and dirp <= 0:
                want = -1
        if want != 0 and sig["sig_event"][i] >= 0 and sig["sig_event"][i] == self.traded_event:
            want = 0  # an external signal event is traded at most once (rule 13)
        if want != 0 and self.direction == -want and dirp == 0:
            self.pend_exit_frac, self.pend_exit_reason = 1.0, 10  # reversal (rule 9)
        if want != 0 and (self.direction == 0 or (self.direction == -want and dirp == 0)):
            legs = self._live_select(want, i) if plan.is_option else []
            if legs is not None:
                self.pend_entry, self.live_pend_legs = want, legs

        # ---- 1-5 at bar j's open
        if day_j != self.live_day:
            self.live_day = day_j
            self.trades_today = 0
        if self.direction != 0 and self.pend_exit_frac > 0.0:
            frac = self.pend_exit_frac
            exit_qty = min(self.orig_qty * frac if frac < 1.0 else self.qty, self.qty)
            if frac < 1.0:  # a partial closes whole contracts (rule 12)
                exit_qty = float(K._floor_step(exit_qty, prm[K.P_QTY_STEP]))
            if exit_qty > 0.0:
                self._live_exit(exit_qty, self.pend_exit_reason)
        self.pend_exit_frac = 0.0
        self._live_convert_now()
        entered = False
        # an option entry decided on one session never fills on the next (rule 2)
        if self.pend_entry != 0 and self.direction == 0 and not (plan.is_option and day_i != day_j):
            order = {"direction": self.pend_entry, "i": i, "legs": self.live_pend_legs, "ts_j": ts_j}
            if self._live_busy():
                self.deferred = order  # a reversal: the new position opens once the old one is closed
            else:
                entered = self._live_enter(**order)
        self.pend_entry = 0
        if self.direction != 0 and not entered and not self.entry_pending:
            reason = -1
            day_ord = live_data.day_ordinal(day_j)
            later = self.entry_bar_ns < ts_j  # not the bar the position entered in
            if ff_j:
                reason = 7
            elif self._live_contract_expiring(day_j):
                reason = 8  # a futures position never rides into its contract's expiry (brokers.live.futures)
            elif later and prm[K.P_MAX_HOLD_NS] > 0 and ts_j - self.entry_ts >= prm[K.P_MAX_HOLD_NS]:
                reason = 6
            elif (
                later
                and plan.is_option
                and prm[K.P_CLOSE_BEFORE_EXP] >= 0
                and live_data.sessions_left(day_j, self.pos_exp[0]) <= prm[K.P_CLOSE_BEFORE_EXP]
            ):
                reason = 11
            elif (
                plan.is_option
                and self.pos_exp[0] <= day_ord
                and live_data.is_last_bar(spec, ts_j, live.bar_minutes)
            ):
                # rule 8 closes at the expiry session's last close; live that close cannot be traded,
                # so the position closes at its last bar's open instead of being left to expire
                reason = 8
            if reason >= 0:
                self._live_exit(self.qty, reason)
        self._live_place_resting()

    def _live_marks(self, i: int) -> tuple[float, float, bool]:
        """(value at bar i's close, best value inside it, priced) of the position."""
        plan = self.plan
        bars = plan.market.bars
        if not plan.is_option:
            s = self.pos_sign[0] * self.pos_mult[0]
            h, lo, c = float(bars.high[i]), float(bars.low[i]), float(bars.close[i])
            return s * c, (s * h if s > 0 else s * lo), True
        v_close = v_best = 0.0
        priced = True
        for k in range(self.pos_n):
            h, lo, c = self._live_contract_bar(k, int(bars.ts[i]))
            if c != c:
                priced = False
                c = h = lo = self.last_mark[k]
            self.last_mark[k] = c
            s = self.pos_sign[k] * self.pos_mult[k]
            v_close += s * c
            v_best += s * h if s > 0 else s * lo
        return v_close, v_best, priced

    def _live_contract_bar(self, k: int, ts_i: int) -> tuple[float, float, float]:
        """(high, low, close) of leg ``k``'s contract in the signal bar starting ``ts_i``: its own trades
        there, else its last trade within the staleness limit (rule 10), else the quote's mid (live only:
        a position must not lose its marks because an option did not trade), else NaN."""
        live = self.live
        asset = self.pos_asset[k]
        stale = self.plan.spec.instrument.max_staleness_minutes
        end = ts_i + live.bar_minutes * NS_PER_MIN
        nan = float("nan")
        try:
            bars = self.get_historical_prices(asset, live.bar_minutes + stale + 5, "minute")
        except Exception as exc:  # a data hiccup: fall back to the quote
            self.log_message(f"no bars for {asset}: {exc}", color="yellow")
            bars = None
        if bars is not None and getattr(bars, "df", None) is not None and not bars.df.empty:
            df = bars.df
            index = pd.DatetimeIndex(df.index)
            ns = (
                index.tz_convert("UTC") if index.tz is not None else index.tz_localize(NY).tz_convert("UTC")
            ).asi8
            inside = (ns >= ts_i) & (ns < end)
            if inside.any():
                rows = df[inside]
                return float(rows["high"].max()), float(rows["low"].min()), float(rows["close"].iloc[-1])
            before = (ns < ts_i) & (ns >= end - (stale + live.bar_minutes) * NS_PER_MIN)
            if before.any():
                c = float(df[before]["close"].iloc[-1])
                return c, c, c
        price = self._live_price(asset)
        return (price, price, price) if price is not None else (nan, nan, nan)

    # ------------------------------------------------------------------ live: orders

    def _live_submit(self, orders: list[Any], action: Action, *, what: str) -> Any:
        """Submit one order, or a multi-leg order, and track it: the order Lumibot tracks (the parent of
        a multi-leg order), or None when it never reached the broker (refused by the deployment's risk
        guard, or by the broker at once)."""
        try:
            if len(orders) == 1:
                result = self.submit_order(orders[0])
            else:
                result = self.submit_order(orders, is_multileg=True, order_type="market", duration="day")
        except Exception as exc:  # the broker client raised: nothing is working at the broker
            self.log_message(f"{what}: submitting failed: {exc}", color="red")
            return None
        placed = result[0] if isinstance(result, list) and result else result
        if placed is None or isinstance(placed, list):
            self.log_message(f"{what}: refused before reaching the broker", color="red")
            return None
        if getattr(placed, "identifier", None) is None or placed.is_canceled():
            self.log_message(f"{what}: the broker refused it ({getattr(placed, 'status', '?')})", color="red")
            return None
        self.live_orders[id(placed)] = (placed, action, 0 if len(orders) == 1 else -1)
        return placed

    def _live_order(self, asset: Any, units: float, side: str, **kwargs: Any) -> Any:
        quantity = round(units, 8)
        # whole shares and contracts go out as integers ("3", not "3.0"), forex units as they are
        return self.create_order(asset, int(quantity) if quantity.is_integer() else quantity, side, **kwargs)

    def _live_enter(self, direction: int, i: int, legs: list[live_data.Contract], ts_j: int) -> bool:
        """Steps 3 live: size from the broker's equity and current prices, market orders for every leg."""
        plan = self.plan
        prm = self.prm
        bars = plan.market.bars
        sig = plan.sig
        rows: list[tuple[float, float, Any, float]] = []  # sign, mult, asset, price
        if plan.is_option:
            for k, contract in enumerate(legs):
                if not math.isfinite(contract.price):
                    return False
                asset = Asset(
                    plan.spec.instrument.symbol,
                    asset_type="option",
                    expiration=contract.expiry,
                    strike=contract.strike,
                    right="CALL" if contract.call else "PUT",
                    multiplier=int(K.OPTION_MULT),
                )
                rows.append((float(plan.leg_sign[k]), K.OPTION_MULT, asset, contract.price))
                self.pos_exp[k] = live_data.day_ordinal(contract.expiry)
                self.pos_strike[k] = contract.strike
                self.pos_call[k] = contract.call
                self.pos_ticker[k] = contract.ticker
        else:
            price = self._live_price(plan.underlying) or float(bars.close[i])
            rows.append((float(direction), plan.mult, plan.underlying, price))
        for k, (sgn, mult, asset, px) in enumerate(rows):
            self.pos_sign[k], self.pos_mult[k], self.pos_asset[k] = sgn, mult, asset
            self.pos_legs[k] = k if plan.is_option else -1
            self.pos_units[k] = abs(sgn) if plan.is_option else plan.lumi_units
            self.last_mark[k] = px
            if not plan.is_option:
                self.pos_ticker[k] = ""
        self.pos_n = len(rows)
        self.single = self.pos_n == 1
        prm[K.P_COMM_UNIT] = self.comm_unit_entry
        fresh = self._trade()
        v_fill = sum(sgn * mult * px for sgn, mult, _, px in rows)
        v_pay = v_fill + self._cost(fresh, rows[0][3])
        value = self.get_portfolio_value()
        if value is None and prm[K.P_SIZE_MODE] != 0:  # sized from equity the broker did not report
            self.log_message("no account value from the broker: entry skipped", color="yellow")
            return False
        equity = float(value or 0.0)
        context = (float(sig["atr"][i]), float(sig["sig_stop_dist"][i]), float(sig["sig_tp_dist"][i]))
        stop_dist = self._stop_distance(v_pay, context[0], context[1])
        q = self._size(fresh, v_fill, v_pay, stop_dist, equity)
        label = "long" if direction > 0 else "short"
        if q < float(prm[K.P_QTY_STEP]) - 1e-12:
            self.log_message(
                f"{label} entry signal at bar {live_data.stamp(bars.ts[i])}, but the size rounds to zero"
            )
            return False
        action = Action("entry", 0, self.pos_n, exit_qty=q, context=context)
        orders = [
            self._live_order(self.pos_asset[k], q * self.pos_units[k], self._side(rows[k][0], opening=True))
            for k in range(self.pos_n)
        ]
        what = f"{label} entry of {q:g} {self._live_label()}"
        if self._live_submit(orders, action, what=what) is None:
            self.pos_n = 0
            return False
        self.qty = self.orig_qty = q
        self.direction = direction
        self.v_entry = self.v_entry_trade = self.best_v = v_pay  # until the fills arrive
        self.stop_v, self.tp_v = self._entry_levels(v_pay, stop_dist, context[0], context[2])
        self.entry_bar_ns = self.entry_ts = ts_j
        self.traded_event = int(sig["sig_event"][i])
        self.next_partial = 0
        self.converted = False
        # the staged trigger's reference: the underlying at the entry (the engines use the entry bar's open)
        if plan.is_option:
            self.stage_und_ref = self._live_price(plan.underlying) or float(bars.close[i])
        self.trades_today += 1
        self.entry_pending = True
        self.log_message(f"{what}: signal at bar {live_data.stamp(bars.ts[i])}")
        self._live_wait_for_fills()
        return True

    def _live_wait_for_fills(self) -> None:
        """Wait (briefly) for a market entry's fills, so its resting exits go out within seconds rather
        than at the next iteration; the broker's polling thread updates the orders meanwhile."""
        live = self.live
        deadline = time.monotonic() + live.fill_wait
        while self.entry_pending and time.monotonic() < deadline:
            time.sleep(0.1)
            self._live_sync()

    def _live_exit(self, exit_qty: float, reason: int, *, keep_bracket: bool = False) -> None:
        """Close ``exit_qty`` units with market orders (steps 1 and 4 live). ``keep_bracket``: a partial exit
        where the bracket is the position's own (it follows the smaller position at the broker)."""
        if keep_bracket:
            for rest in [r for r in self.resting if r.kind == "partial"]:
                self.live_orders.pop(id(rest.order), None)
                self._live_cancel(rest.order)
            self.resting = [r for r in self.resting if r.kind != "partial"]
        else:
            self._live_cancel_resting()
        trade = self._trade()
        action = Action("exit", 0, trade.n, trade=trade, reason=reason, exit_qty=exit_qty)
        action.restore = (self.direction, self.qty)
        orders = [
            self._live_order(
                self.pos_asset[k], exit_qty * trade.units[k], self._side(float(trade.sign[k]), opening=False)
            )
            for k in range(trade.n)
        ]
        what = f"{EXIT_REASONS[reason]} exit of {exit_qty:g} {self._live_label()}"
        if self._live_submit(orders, action, what=what) is None:
            return
        self.log_message(what)
        self._leave(exit_qty)

    def _live_value_text(self, v: float) -> str:
        """A unit's value as a trader reads it: the price of a single instrument, else the net value."""
        if self.pos_n == 1 and not self.plan.is_option:
            return f"at {v / (self.pos_sign[0] * self.pos_mult[0]):.6g}"
        if self.pos_n == 1:
            return f"at {v / (self.pos_sign[0] * self.pos_mult[0]):.4g} a share"
        return f"net value {v:,.2f} a unit"

    def _live_label(self) -> str:
        plan = self.plan
        if plan.is_option:
            return "+".join(t.removeprefix("O:") for t in self.pos_ticker[: self.pos_n] if t)
        return str(plan.underlying.symbol)

    def _live_place_resting(self) -> None:
        """Rules 4, 6, 7 live: a single-instrument position's stop and final target are one bracket held at the
        broker (GTC; an OCO order at Tradier, the position's own stop-loss/take-profit at TradeLocker), moved in
        place when trailing or break-even moves a level; partial targets rest as their own limit orders where
        the broker holds them next to the bracket, else they are watched. Prices on the broker's tick grid."""
        if self.direction == 0 or not self.single or self.entry_pending:
            if self.resting and (self.direction == 0 or not self.single):
                self._live_cancel_resting()
            return
        rises = self.pos_sign[0] < 0  # a short leg's stop and a long leg's targets trigger on a rise
        # the rules only ever tighten a stop; one held at the broker tighter than the levels computed now was
        # moved by an earlier run (a trailing stop before a restart), and a restart must not loosen it
        held_stop = next((r.price for r in self.resting if r.kind == "stop"), None)
        wanted = []
        for kind, price, units, reason, n in self._wanted_resting():
            if kind == "partial" and self._live_partials_watched():
                continue  # watched at each iteration (_live_watch)
            if price > 0.0:
                up = rises == (kind == "stop")
                tick = live_data.price_tick(
                    self.plan.spec.instrument.type, price, str(self.plan.underlying.symbol)
                )
                price = live_data.round_to_tick(price, tick, up=up)
                if kind == "stop" and held_stop is not None:
                    price = min(price, held_stop) if rises else max(price, held_stop)
            wanted.append((kind, price, round(units, 8), reason, n))
        if sorted(wanted) == sorted(r.key() for r in self.resting):
            return
        for kind, price, units, reason, _ in wanted:
            if price <= 0.0 and rises == (kind == "stop"):
                self._live_cancel_resting()
                self._live_exit(units / self.pos_units[0], reason)  # every price touches it
                return
        wanted = [w for w in wanted if w[1] > 0.0]
        side = self._side(self.pos_sign[0], opening=False)
        # the bracket first: the position's protection never waits on its partial targets
        bracket = [w for w in wanted if w[0] != "partial"]
        held_bracket = [r for r in self.resting if r.kind != "partial"]
        if sorted(r.key() for r in held_bracket) != sorted(bracket):
            held_bracket = self._live_bracket(held_bracket, bracket, side)
        partials = sorted(w for w in wanted if w[0] == "partial")
        held_partials = [r for r in self.resting if r.kind == "partial"]
        if sorted(r.key() for r in held_partials) != partials:
            for rest in held_partials:
                self.live_orders.pop(id(rest.order), None)
                self._live_cancel(rest.order)
            held_partials = []
            for kind, price, units, reason, n in partials:
                action = Action("resting", 0, 1, reason=reason, rest_kind=kind, partial_index=n)
                order = self._live_order(self.pos_asset[0], units, side, time_in_force="gtc", limit_price=price)
                placed = self._live_submit([order], action, what=f"resting {kind} at {price:g}")
                if placed is not None:
                    held_partials.append(Resting(placed, kind, price, units, reason, n))
        self.resting = held_bracket + held_partials

    def _live_partials_watched(self) -> bool:
        """Partial targets are watched, not rested, where the broker's exits are attached to the position
        (TradeLocker) and for an option: Lumibot refuses option closes beyond the position counting working
        closes, and the bracket already closes all of it."""
        return self.live.exits != "resting" or self.plan.is_option

    def _live_bracket(self, held: list[Resting], wanted: list[tuple[Any, ...]], side: str) -> list[Resting]:
        """The stop and the target as one bracket order: the held one moved in place when only its levels
        change, else the held one cancelled and a new one placed (the quantity changed, a level came or went)."""
        levels = {kind: price for kind, price, *_ in wanted}
        order = held[0].order if held else None
        # a bracket attached to the position follows its quantity at the broker; an order's cannot change
        attached = self.live.exits == "bracket"
        same = (
            order is not None
            and order.is_active()
            and sorted((r.kind, r.units) for r in held) == sorted((w[0], w[2]) for w in wanted)
        ) or (order is not None and order.is_active() and attached and {r.kind for r in held} == set(levels))
        if same and {r.kind: r.price for r in held} == levels:
            return [Resting(order, *w) for w in wanted]  # only the quantity it follows changed
        if same:
            try:
                self.modify_order(order, stop_price=levels.get("stop"), limit_price=levels.get("target"))
            except Exception as exc:  # the broker refused the move: replace the bracket instead
                self.log_message(f"moving the bracket {order} failed: {exc}; replacing it", color="yellow")
            else:
                self.log_message(f"bracket moved: {self._live_levels_text(levels)}")
                return [Resting(order, *w) for w in wanted]
        if order is not None:
            self.live_orders.pop(id(order), None)
            self._live_cancel(order)
        if not wanted:
            return []
        kind, _, units, reason, _ = min(wanted)  # the stop's reason when there is a stop
        both = len(levels) == 2
        prices = {"stop_price": levels.get("stop"), "limit_price": levels.get("target")}
        prices = {k: v for k, v in prices.items() if v is not None}
        order = self._live_order(
            self.pos_asset[0], units, side, time_in_force="gtc", **({"order_class": "oco"} if both else {}), **prices
        )
        action = Action("resting", 0, 1, reason=reason, rest_kind="bracket" if both else kind, partial_index=-1)
        placed = self._live_submit([order], action, what=f"bracket {self._live_levels_text(levels)}")
        return [] if placed is None else [Resting(placed, *w) for w in wanted]

    @staticmethod
    def _live_levels_text(levels: dict[str, float]) -> str:
        return ", ".join(f"{kind} {price:g}" for kind, price in sorted(levels.items()))

    def _live_cancel(self, order: Any) -> None:
        if id(order) in self.live_cancelled or not order.is_active():
            return  # asked once already: the broker's answer arrives with a poll
        self.live_cancelled.add(id(order))
        try:
            self.cancel_order(order)
        except Exception as exc:  # already final at the broker: its state arrives with the next poll
            self.log_message(f"cancelling {order}: {exc}", color="yellow")

    def _live_cancel_resting(self) -> None:
        for rest in self.resting:
            self.live_orders.pop(id(rest.order), None)
            self._live_cancel(rest.order)
        self.resting = []

    def _live_watch(self) -> bool:
        """Rule 7 where partial targets cannot rest next to the bracket (:meth:`_live_partials_watched`): the
        partial levels against the broker's current price, closed with a market order when touched. True if an
        exit went out."""
        if self.entry_pending or not self.single:
            return False
        price = self._live_price(self.pos_asset[0])
        if price is None:
            return False
        rises = self.pos_sign[0] < 0
        for kind, level, units, reason, n in self._wanted_resting():
            if kind != "partial":
                continue  # the stop and the target are held at the broker
            up = rises == (kind == "stop")
            if (price >= level) if up else (price <= level):
                if kind == "partial":
                    self.next_partial = n + 1
                self.log_message(f"{kind} level {level:g} touched at {price:g}")
                exit_qty = units / self.pos_units[0]
                self._live_exit(exit_qty, reason, keep_bracket=exit_qty < self.qty - 1e-9)
                return True
        return False

    # ------------------------------------------------------------------ live: the broker's answers

    def _live_busy(self) -> bool:
        return any(action.kind in ("entry", "exit", "convert") for _, action, _ in self.live_orders.values())

    def _live_sync(self) -> None:
        """Apply every tracked order that reached a final state (filled, canceled, refused)."""
        for key, (order, action, k) in list(self.live_orders.items()):
            if order.is_filled():
                del self.live_orders[key]
                self.settle = True
                self._live_filled(order, action, k)
            elif order.is_canceled():
                del self.live_orders[key]
                self.settle = True
                self._live_dead(order, action)

    def _live_filled(self, order: Any, action: Action, k: int) -> None:
        qty = abs(float(order.quantity or 0.0))
        price = live_assets.fill_price(order)
        if action.kind == "resting":
            self._live_resting_filled(order, action, price if price is not None else 0.0, qty)
            return
        if action.kind == "convert":
            self._live_converted(order, action)
            return
        if k >= 0:
            action.prices[k] = price if price is not None else self.last_mark[k]
        else:  # a multi-leg order: its legs' prices, else the quotes
            children = list(getattr(order, "child_orders", None) or [])
            for leg in range(action.n_legs):
                child = next((c for c in children if live_assets.same_asset(c.asset, self.pos_asset[leg])), None)
                px = live_assets.fill_price(child) if child is not None else None
                action.prices[leg] = px if px is not None else (self._live_price(self.pos_asset[leg]) or 0.0)
        if len(action.prices) < action.n_legs:
            return
        trade = action.trade if action.trade is not None else self._trade()
        v_fill = sum(float(trade.sign[j]) * float(trade.mult[j]) * action.prices[j] for j in range(trade.n))
        if action.kind == "exit":
            pnl = action.exit_qty * (v_fill - trade.entry_v)
            self.log_message(
                f"closed {action.exit_qty:g} units ({EXIT_REASONS[action.reason]}, {self._live_value_text(v_fill)}): "
                f"about {pnl:+,.2f} before commissions"
            )
            return
        for j in range(trade.n):
            self.last_mark[j] = action.prices[j]
        atr, sig_stop, sig_tp = action.context
        stop_dist = self._stop_distance(v_fill, atr, sig_stop)
        self.v_entry = self.v_entry_trade = self.best_v = v_fill
        self.stop_v, self.tp_v = self._entry_levels(v_fill, stop_dist, atr, sig_tp)
        self.entry_pending = False
        self.log_message(
            f"entered {self.direction * self.qty:+g} {self._live_label()} ({self._live_value_text(v_fill)})"
        )
        self._live_place_resting()

    def _live_resting_filled(self, order: Any, action: Action, price: float, quantity: float) -> None:
        exit_qty = min(quantity / self.pos_units[0], self.qty)
        mine = [r for r in self.resting if r.order is order]
        if len(mine) > 1:  # a bracket: the level nearest the fill is the one that traded
            action.rest_kind = min(mine, key=lambda r: abs(r.price - price)).kind
        self.resting = [r for r in self.resting if r.order is not order]
        self.log_message(f"{action.rest_kind} filled: {exit_qty:g} {self._live_label()} at {price:g}")
        self._leave(exit_qty)
        if action.rest_kind == "partial":
            self.next_partial = action.partial_index + 1
        if self.direction == 0 or action.rest_kind != "partial":
            self._live_cancel_resting()
            if self.direction != 0:
                self.log_message(f"a {action.rest_kind} left {self.qty:g} units open", color="yellow")
            return
        # a partial filled: the stop and the final target behind it now close only what is left
        self._live_cancel_resting()
        self._live_place_resting()

    def _live_dead(self, order: Any, action: Action) -> None:
        why = getattr(order, "error_message", None) or getattr(order, "status", "canceled")
        if action.kind == "entry":
            self.log_message(f"the entry order {order} did not fill ({why}); staying flat", color="red")
            for other, other_action, _ in list(self.live_orders.values()):
                if other_action is action:
                    self._live_cancel(other)
            self.direction, self.qty, self.orig_qty, self.pos_n = 0, 0.0, 0.0, 0
            self.entry_pending = False
        elif action.kind == "exit":
            direction, qty = action.restore
            self.log_message(
                f"the exit order {order} did not fill ({why}); retrying at the next bar", color="red"
            )
            if self.direction == 0:
                self.direction, self.qty = direction, qty
            self.pend_exit_frac, self.pend_exit_reason = 1.0, action.reason
        elif action.kind == "convert":
            self._live_convert_failed(order, why)
        else:
            self.resting = [r for r in self.resting if r.order is not order]  # re-placed at the next bar
