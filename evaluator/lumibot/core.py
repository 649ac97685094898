"""The fill model's position state and rules shared by the backtest strategy
(:class:`evaluator.lumibot.strategy.SpecStrategy`) and the live one (:class:`brokers.live.LiveSpecStrategy`):
the kernel's state (``evaluator._kernel.run_kernel``), order sides, sizing, entry levels, the resting exits
in the fill model's order and the multi-leg close-mark levels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluator import _kernel as K
from evaluator.lumibot._lumibot import Strategy
from evaluator.lumibot.plan import Plan


def _largest_at_most(a: float, t: float) -> float:
    """The largest float ``x`` with ``a * x <= t`` in floating point (``a > 0``)."""
    x = t / a
    while a * x > t:
        x = float(np.nextafter(x, -np.inf))
    while a * float(np.nextafter(x, np.inf)) <= t:
        x = float(np.nextafter(x, np.inf))
    return x


def _smallest_at_least(a: float, t: float) -> float:
    """The smallest float ``x`` with ``a * x >= t`` in floating point (``a > 0``)."""
    x = t / a
    while a * x < t:
        x = float(np.nextafter(x, np.inf))
    while a * float(np.nextafter(x, -np.inf)) >= t:
        x = float(np.nextafter(x, -np.inf))
    return x


def trigger_price(kind: str, level: float, s: float) -> float:
    """The Lumibot order price that triggers on exactly the prices the fill model's level does.

    The fill model compares a position's value ``s * price`` with a value level (``s``: the leg's
    signed multiplier), a stop when the bar's worst value is at or below it, a target when the best
    is at or above it. A price level ``level / s`` can differ from that by rounding right at a cent
    (100 * 0.07 is 7.000000000000001 > 7.0), so the price is the last float on the right side.
    A result <= 0 means no positive price or every positive price triggers (see _place_resting).
    """
    if s > 0:
        return _largest_at_most(s, level) if kind == "stop" else _smallest_at_least(s, level)
    return _smallest_at_least(-s, -level) if kind == "stop" else _largest_at_most(-s, -level)


@dataclass(frozen=True)
class Trade:
    """The position an exit closes, as it was when the exit's orders went out (a reversal re-enters
    at the same open, before the exit's fills arrive)."""

    entry_bar: int
    entry_v: float
    direction: int
    n: int
    sign: np.ndarray
    mult: np.ndarray
    contracts: np.ndarray
    units: tuple[float, ...]
    tickers: str


@dataclass
class Action:
    """Orders placed together for one fill-model event; finalised when every leg has filled."""

    kind: str  # entry | exit | convert | resting
    bar: int
    n_legs: int
    trade: Trade | None = None
    reason: int = 0
    exit_qty: float = 0.0
    share: float = 0.0  # the part of the entry commission this exit carries
    prices: dict[int, float] = field(default_factory=dict)
    fees: dict[int, float] = field(default_factory=dict)
    rest_kind: str = ""  # resting orders: stop | partial | target
    partial_index: int = -1
    stale: bool = False  # an exit booked at a leg's last known price (no trade within the staleness limit)
    # live entries: the decision bar's (atr, signal stop distance, signal target distance), to set the
    # levels from the actual fill; live exits: (direction, quantity) before the exit, restored if refused
    context: tuple[float, float, float] = (0.0, 0.0, 0.0)
    restore: tuple[int, float] = (0, 0.0)


@dataclass
class Resting:
    order: Any
    kind: str
    price: float
    units: float
    reason: int
    partial_index: int

    def key(self) -> tuple[str, float, float, int, int]:
        return (self.kind, self.price, self.units, self.reason, self.partial_index)


class SpecCore(Strategy):
    """A Lumibot strategy holding one StrategySpec's position the way the kernel does; the subclasses say
    where decisions and fills come from (a backtest's plan and broker hook, or a live broker)."""

    plan: Plan

    def _init_state(self, plan: Plan) -> None:
        """The kernel's position state (``evaluator._kernel.run_kernel``), shared by both modes."""
        self.plan = plan
        self.prm = plan.params.copy()  # a conversion raises the per-unit commission for its trade
        self.comm_unit_entry = float(self.prm[K.P_COMM_UNIT])
        self.n_legs = len(plan.leg_kind)
        self.qty = 0.0
        self.orig_qty = 0.0
        self.direction = 0
        self.v_entry = 0.0
        self.v_entry_trade = 0.0
        self.comm_entry_left = 0.0
        self.entry_bar = -1
        self.entry_ts = 0
        self.best_v = 0.0
        self.stop_v = -1e300
        self.tp_v = 1e300
        self.next_partial = 0
        self.converted = False
        self.stage_und_ref = 0.0
        self.trades_today = 0
        self.cur_day = -1
        self.single = self.n_legs == 1
        self.last_mark = [0.0] * 4
        self.pos_legs = [-1] * 4  # contract index in the current session's chain, per leg
        self.pos_sign = [0.0] * 4
        self.pos_mult = [0.0] * 4
        self.pos_exp = [0] * 4
        self.pos_strike = [0.0] * 4
        self.pos_call = [False] * 4
        self.pos_asset: list[Any] = [None] * 4
        self.pos_units = [0.0] * 4  # Lumibot quantity of each leg per position unit
        self.pos_ticker = [""] * 4
        self.pos_n = 0
        self.pend_entry = 0
        self.pend_legs = [-1] * 4
        self.pend_entry_day = -1
        self.pend_exit_frac = 0.0
        self.pend_exit_reason = 0
        self.pend_convert = -1
        self.traded_event = -1  # the external signal event behind the last entry
        self.actions: dict[str, tuple[Action, int]] = {}  # order identifier -> (action, leg)
        self.resting: list[Resting] = []
        self.trades: list[dict[str, Any]] = []
        self.contract_assets: dict[str, Any] = {}
        self.failures: list[str] = []

    def _side(self, sign: float, *, opening: bool) -> str:
        buy = (sign > 0) == opening
        if self.plan.is_option:
            if opening:
                return "buy_to_open" if buy else "sell_to_open"
            return "buy_to_close" if buy else "sell_to_close"
        if opening:
            return "buy" if buy else "sell_short"
        return "buy_to_cover" if buy else "sell"

    def _trade(self) -> Trade:
        n = self.pos_n
        return Trade(
            entry_bar=self.entry_bar,
            entry_v=self.v_entry_trade,
            direction=self.direction,
            n=n,
            sign=np.array(self.pos_sign[:n]),
            mult=np.array(self.pos_mult[:n]),
            contracts=np.array(self.pos_legs[:n], dtype=np.int64),
            units=tuple(self.pos_units[:n]),
            tickers="+".join(t for t in self.pos_ticker[:n] if t),
        )

    def _cost(self, trade: Trade, und_price: float) -> float:
        """Slippage or spread of one unit (the kernel's formula); ``und_price`` is the instrument's fill."""
        return float(
            K._cost_per_unit(
                trade.n,
                trade.sign,
                trade.mult,
                trade.contracts,
                0.0,
                self.prm,
                self.plan.is_option,
                und_price,
            )
        )

    def _comm(self, qty: float, v_price: float) -> float:
        """The fill model's commission of ``qty`` units traded at value ``v_price``."""
        return qty * float(self.prm[K.P_COMM_UNIT]) + float(self.prm[K.P_COMM_PCT]) * abs(qty * v_price)

    def _leave(self, exit_qty: float) -> None:
        self.qty -= exit_qty
        if self.qty <= 1e-12:
            self.qty = 0.0
            self.direction = 0

    def _stop_distance(self, v_pay: float, atr: float, sig_stop: float) -> float:
        """The entry-to-stop distance in value units of one position unit (``risk`` sizing and the
        point, ATR and signal stops); ``atr`` and ``sig_stop`` are the decision bar's values."""
        prm = self.prm
        mult = self.plan.mult
        kind = prm[K.P_STOP_KIND]
        stop_dist = 0.0
        if kind == 1:
            stop_dist = prm[K.P_STOP_VAL] * abs(v_pay)
        elif kind == 2:
            stop_dist = prm[K.P_STOP_VAL] * mult
        elif kind == 3:
            stop_dist = prm[K.P_STOP_VAL] * atr * mult
        elif kind == 4:  # the triggering external signal's own stop, scaled (rule 13)
            stop_dist = prm[K.P_STOP_VAL] * sig_stop * mult
            if not stop_dist > 0:
                stop_dist = 0.0
        return stop_dist

    def _size(self, fresh: Trade, v_fill: float, v_pay: float, stop_dist: float, eq: float) -> float:
        """Rule 12: the position's units from the equity ``eq`` (0.0 when the stop is unknown in
        ``risk`` mode); the caller refuses sizes below one quantity step."""
        prm = self.prm
        unit_comm = prm[K.P_COMM_UNIT] + prm[K.P_COMM_PCT] * abs(v_fill)
        step = float(prm[K.P_QTY_STEP])
        mode = prm[K.P_SIZE_MODE]
        if mode == 0:
            return float(prm[K.P_QTY])
        if mode == 1:
            return float(K._floor_step(eq * prm[K.P_PCT_EQ] / (abs(v_pay) + unit_comm), step))
        if stop_dist > 0:
            # a unit stopped out loses the distance, the exit's costs and both commissions
            v_stop = v_pay - stop_dist
            exit_cost = self._cost(fresh, abs(v_stop) / self.plan.mult)
            unit_loss = (
                stop_dist + exit_cost + unit_comm + prm[K.P_COMM_UNIT] + prm[K.P_COMM_PCT] * abs(v_stop)
            )
            return float(K._floor_step(eq * prm[K.P_RISK_PCT] / unit_loss, step))
        return 0.0

    def _entry_levels(self, v_pay: float, stop_dist: float, atr: float, sig_tp: float) -> tuple[float, float]:
        """(stop value, target value) of a position entered at ``v_pay`` per unit."""
        prm = self.prm
        mult = self.plan.mult
        stop_v, tp_v = (float(x) for x in K._levels(v_pay, stop_dist, prm))
        if prm[K.P_TP_KIND] == 2:
            tp_v = v_pay + prm[K.P_TP_VAL] * mult
        elif prm[K.P_TP_KIND] == 3:
            tp_v = v_pay + prm[K.P_TP_VAL] * atr * mult
        elif prm[K.P_TP_KIND] == 4 and sig_tp > 0:
            tp_v = v_pay + sig_tp * mult
        return stop_v, tp_v

    def _stop_level(self) -> tuple[float, int]:
        """The stop, break-even or trailing level in force and its reason (the kernel's one rule)."""
        level, reason = K.stop_level(float(self.stop_v), float(self.best_v), float(self.v_entry), self.prm)
        return float(level), int(reason)

    def _wanted_resting(self) -> list[tuple[str, float, float, int, int]]:
        """(kind, Lumibot price, Lumibot quantity, reason, partial index) in the fill model's order."""
        prm = self.prm
        levels: list[tuple[str, float, float, int, int]] = []
        v_entry = self.v_entry
        stop, reason = self._stop_level()
        if stop > -1e299:
            levels.append(("stop", stop, self.qty, reason, -1))
        for n in range(self.next_partial, len(self.plan.partial_pct)):
            level = v_entry + self.plan.partial_pct[n] * abs(v_entry)
            if level > self.tp_v:
                # beyond the final target: price reaches the target first and it closes everything
                # (Lumibot would fill resting orders in submission order, this one before the target)
                break
            part = float(
                K._floor_step(min(self.orig_qty * self.plan.partial_frac[n], self.qty), prm[K.P_QTY_STEP])
            )
            if part > 0:
                levels.append(("partial", level, part, 3, n))
        if self.tp_v < 1e299:
            levels.append(("target", self.tp_v, self.qty, 2, -1))
        s = self.pos_sign[0] * self.pos_mult[0]  # value of one unit per unit of the leg's price
        units = self.pos_units[0]
        return [
            (kind, trigger_price(kind, level, s), qty * units, why, n) for kind, level, qty, why, n in levels
        ]

    def _close_mark_levels(self, v_close: float) -> None:
        """Rule 5: a multi-leg position's stop, target and partial targets against its close mark; a hit
        becomes the pending exit filled at the next open."""
        plan = self.plan
        v_entry = self.v_entry
        gain = (v_close - v_entry) / abs(v_entry) if v_entry != 0 else 0.0
        level_stop, reason = self._stop_level()
        if level_stop > -1e299 and v_close <= level_stop:
            self.pend_exit_frac, self.pend_exit_reason = 1.0, reason
        elif self.tp_v < 1e299 and v_close >= self.tp_v:
            self.pend_exit_frac, self.pend_exit_reason = 1.0, 2
        elif self.next_partial < len(plan.partial_pct) and gain >= plan.partial_pct[self.next_partial]:
            self.pend_exit_frac = plan.partial_frac[self.next_partial]
            self.pend_exit_reason = 3
            self.next_partial += 1
