# ruff: noqa: ANN001, ANN201  -- numba infers the array and scalar types of these kernels at compile time
"""The fast engine's event loop, compiled with numba. Rules: evaluator/fill_model.py.

No Python objects inside: the spec is flattened to arrays by evaluator/fast.py. Value of one
position unit: ``V = sum(sign_k * price_k * mult_k)`` over its legs (a short stock has sign -1), so
one set of formulas serves stocks, futures, forex, single options and spreads.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from evaluator._chain import _find_contract, select_contract, sessions_left

# indices into the float parameter vector
P_STOP_KIND, P_STOP_VAL, P_TP_KIND, P_TP_VAL = 0, 1, 2, 3  # kind: 0 none, 1 pct, 2 price distance, 3 atr mult
P_TRAIL_PCT, P_TRAIL_ACT, P_BE_TRIG, P_BE_BUF = 4, 5, 6, 7
P_MAX_HOLD_NS, P_CLOSE_BEFORE_EXP = 8, 9
P_SLIP_FRAC, P_SLIP_ABS, P_HALF_SPREAD = 10, 11, 12
P_COMM_UNIT, P_COMM_PCT = 13, 14
P_SIZE_MODE, P_QTY, P_PCT_EQ, P_RISK_PCT, P_QTY_STEP = 15, 16, 17, 18, 19
P_CASH, P_MAX_TRADES_DAY, P_DIRECTION = 20, 21, 22  # direction: 1 long, -1 short, 0 both
P_STAGED, P_STAGE_UND_PCT, P_STAGE_PREM_PCT, P_STAGE_WIDTH, P_STAGE_MIN_DEBIT = 23, 24, 25, 26, 27
P_RATE = 28
N_PARAMS = 29

OPTION_MULT = 100.0


# The kernel's inputs, grouped by where they come from and passed by name (numba compiles named tuples of
# arrays as plain arguments), so two arrays of one dtype cannot be swapped without a name saying so.


class BarArrays(NamedTuple):
    """The instrument's bars and the session index (:class:`evaluator.market.Market`)."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    day: np.ndarray  # session index of each bar
    minute: np.ndarray  # minute of the New York day
    day_ord: np.ndarray  # per session: its day ordinal (days since 1970-01-01)
    day_first_bar: np.ndarray  # per session: its first bar


class SignalArrays(NamedTuple):
    """Per bar, from :func:`evaluator.fast.signal_arrays` (decided on the bar's close)."""

    long: np.ndarray
    short: np.ndarray
    exit_long: np.ndarray
    exit_short: np.ndarray
    entry_ok: np.ndarray
    force_flat: np.ndarray
    atr: np.ndarray
    event: np.ndarray  # the latest external signal event known (-1: none)
    stop_dist: np.ndarray  # that event's entry-to-stop distance
    tp_dist: np.ndarray  # that event's entry-to-target distance


class LegArrays(NamedTuple):
    """Per leg of the spec's instrument (:func:`evaluator.fast._legs`)."""

    kind: np.ndarray  # 0 the instrument itself, 1 an option contract
    sign: np.ndarray
    right: np.ndarray  # 0 call, 1 put, 2 auto (by the signal's direction)
    dte: np.ndarray
    select: np.ndarray  # 0 delta, 1 moneyness, 2 offset
    value: np.ndarray


class ChainArrays(NamedTuple):
    """The option chain (:class:`evaluator.market.OptionArrays`) and the sessions to its last expiry."""

    day_c0: np.ndarray
    day_c1: np.ndarray
    c_exp: np.ndarray
    c_strike: np.ndarray
    c_call: np.ndarray
    c_off: np.ndarray
    p_open: np.ndarray
    p_high: np.ndarray
    p_low: np.ndarray
    p_last: np.ndarray  # last trade within the staleness limit (NaN: none)
    sess_ord: np.ndarray  # sorted day ordinals of the trading sessions (close_days_before_expiry)


class RuleArrays(NamedTuple):
    """The spec's exit and cost rules: the parameter vector (``P_*`` indices) and partial targets."""

    params: np.ndarray
    underlying_mult: float
    partial_pct: np.ndarray
    partial_frac: np.ndarray


class TradeBook(NamedTuple):
    """One row per exit fill, written by :func:`_close`."""

    entry_bar: np.ndarray
    exit_bar: np.ndarray
    direction: np.ndarray
    qty: np.ndarray
    entry_v: np.ndarray
    exit_v: np.ndarray
    pnl: np.ndarray
    comm: np.ndarray
    reason: np.ndarray
    legs: np.ndarray
    stale: np.ndarray


class PositionLegs(NamedTuple):
    """The open position's legs (four slots, written in place as positions open and convert)."""

    contract: np.ndarray  # contract index in the current session's chain (-1: the instrument itself)
    sign: np.ndarray
    mult: np.ndarray
    last_mark: np.ndarray  # the leg's last known price: its value while its contract does not trade


class PriceArrays(NamedTuple):
    """Where the legs' prices come from: the instrument's bars, and the chain when it trades options."""

    bars: BarArrays
    chain: ChainArrays
    is_option: bool


class OpenTrade(NamedTuple):
    """The position an exit closes part or all of."""

    qty: float
    direction: int
    entry_bar: int
    v_entry: float  # value of one unit paid at entry (trade records)
    comm_left: float  # entry commission not yet charged to an exit
    n_legs: int


class ExitFill(NamedTuple):
    """One exit: ``qty`` units at value ``v_price`` a unit on bar ``bar``."""

    bar: int
    qty: float
    v_price: float
    reason: int
    und_price: float  # the instrument's price the slippage is taken on
    stale: bool  # a leg had no trade within the staleness limit


@numba.njit(cache=True)
def _floor_step(x: float, step: float) -> float:  # pragma: no cover
    return math.floor(x / step + 1e-9) * step


@numba.njit(cache=True)
def run_kernel(
    bars,
    sig,
    legs,
    chain,
    rules,
    start,
    end,
):  # pragma: no cover - numba
    """Backtest one spec on bars ``start..end``: :class:`BarArrays`, :class:`SignalArrays`,
    :class:`LegArrays`, :class:`ChainArrays` and :class:`RuleArrays` built by :func:`evaluator.fast.run`.

    Returns (the :class:`TradeBook`, its rows written, equity per bar, bars with a position)."""
    ts, open_, close, day, minute = bars.ts, bars.open, bars.close, bars.day, bars.minute
    day_ord, day_first_bar = bars.day_ord, bars.day_first_bar
    sig_long, sig_short, sig_exit_long, sig_exit_short = sig.long, sig.short, sig.exit_long, sig.exit_short
    entry_ok, force_flat, atr_arr = sig.entry_ok, sig.force_flat, sig.atr
    sig_event, sig_stop_dist, sig_tp_dist = sig.event, sig.stop_dist, sig.tp_dist
    leg_kind, leg_sign, leg_right, leg_dte, leg_select, leg_value = (
        legs.kind,
        legs.sign,
        legs.right,
        legs.dte,
        legs.select,
        legs.value,
    )
    day_c0, day_c1, c_exp, c_strike, c_call = (
        chain.day_c0,
        chain.day_c1,
        chain.c_exp,
        chain.c_strike,
        chain.c_call,
    )
    c_off, p_open, p_last, sess_ord = chain.c_off, chain.p_open, chain.p_last, chain.sess_ord
    params, underlying_mult, partial_pct, partial_frac = (
        rules.params,
        rules.underlying_mult,
        rules.partial_pct,
        rules.partial_frac,
    )
    n = len(close)
    n_legs = len(leg_kind)
    is_option = n_legs > 0 and leg_kind[0] == 1
    single = n_legs == 1
    # trade rows a bar can add: a pending exit, then after an entry every partial target and a final
    # exit; 4 per bar overflowed (unchecked writes) with more than two partial take-profits
    max_trades = (3 + len(partial_pct)) * (end - start + 2)
    book = _empty_book(max_trades)
    n_tr = 0
    equity = np.full(n, np.nan)
    exposure_bars = 0

    # a staged conversion adds a contract to each unit, so closing it pays one more commission: the
    # kernel works on its own copy of the parameters and restores the entry value on the next entry
    params = params.copy()
    comm_unit_entry = params[P_COMM_UNIT]
    cash = params[P_CASH]
    qty = 0.0
    orig_qty = 0.0
    direction = 0  # +1 long, -1 short (signal direction), 0 flat
    v_entry = 0.0  # per-unit value basis for % exits (net debit after a conversion)
    v_entry_trade = 0.0  # per-unit value paid at entry (trade records)
    comm_entry_left = 0.0
    entry_bar = -1
    entry_ts = 0
    best_v = 0.0
    stop_v = -1e300
    tp_v = 1e300
    next_partial = 0
    converted = False
    stage_und_ref = 0.0
    trades_today = 0
    cur_day = -1
    last_mark = np.zeros(4)
    pos_legs = np.full(4, -1, np.int64)  # contract index (current session) per leg
    pos_sign = np.zeros(4)
    pos_mult = np.zeros(4)
    pos_exp = np.zeros(4, np.int64)
    pos_strike = np.zeros(4)
    pos_call = np.zeros(4, np.bool_)
    pos = PositionLegs(contract=pos_legs, sign=pos_sign, mult=pos_mult, last_mark=last_mark)
    prices = PriceArrays(bars=bars, chain=chain, is_option=is_option)
    pos_n = 0
    # the position the exits close, kept with the scalars above: rebuilt after an entry or a conversion
    # (step 3b), and by each exit; typed here for numba, flat
    trade = OpenTrade(qty=0.0, direction=0, entry_bar=-1, v_entry=0.0, comm_left=0.0, n_legs=0)
    # pending actions decided on the previous bar's close
    pend_entry = 0
    pend_legs = np.full(4, -1, np.int64)
    pend_entry_day = -1
    pend_exit_frac = 0.0
    pend_exit_reason = 0
    pend_convert = -1
    traded_event = -1  # the external signal event behind the last entry

    for i in range(start, end + 1):
        d = day[i]
        pos_in_day = i - day_first_bar[d]
        if d != cur_day:
            cur_day = d
            trades_today = 0
            if direction != 0 and is_option:  # re-locate held contracts in the new session's chain
                for k in range(pos_n):
                    pos_legs[k] = _find_contract(
                        day_c0[d], day_c1[d], pos_exp[k], pos_strike[k], pos_call[k], c_exp, c_strike, c_call
                    )

        # leg prices for this bar: open (fill), worst/best (intrabar), close (mark)
        v_open, v_low, v_high, v_close, priced = 0.0, 0.0, 0.0, 0.0, True
        if direction != 0:
            v_open, v_low, v_high, v_close, priced = _marks(i, pos_in_day, pos_n, pos, prices)

        # ---- 1. pending exit (signal, reversal, multi-leg level) at this bar's open
        exit_qty = 0.0
        if direction != 0 and pend_exit_frac > 0.0 and priced:
            exit_qty = min(orig_qty * pend_exit_frac if pend_exit_frac < 1.0 else qty, qty)
            if pend_exit_frac < 1.0:  # a partial closes whole contracts (fill model rule 12)
                exit_qty = _floor_step(exit_qty, params[P_QTY_STEP])
        if exit_qty > 0.0:
            exit_fill = ExitFill(
                bar=i,
                qty=exit_qty,
                v_price=v_open,
                reason=pend_exit_reason,
                und_price=open_[i],
                stale=not priced,
            )
            n_tr, cash, trade = _close(book, n_tr, cash, params, pos, is_option, trade, exit_fill)
            qty, direction, comm_entry_left = trade.qty, trade.direction, trade.comm_left
        if priced or direction == 0:  # an option without a price yet keeps its exit for the next bar
            pend_exit_frac = 0.0

        # ---- 2. pending staged conversion
        changed = False  # a conversion or an entry on this bar (step 3b)
        if direction != 0 and pend_convert >= 0 and not converted:
            p = c_off[pend_convert] + pos_in_day
            px = p_open[p] if not np.isnan(p_open[p]) else p_last[p]
            if not np.isnan(px):
                credit = max(px - params[P_HALF_SPREAD], 0.0) * OPTION_MULT
                net = v_entry - credit
                if net >= params[P_STAGE_MIN_DEBIT] * OPTION_MULT:
                    short_unit = comm_unit_entry / abs(leg_sign[0])  # one short contract per unit
                    comm = qty * short_unit + params[P_COMM_PCT] * qty * credit
                    params[P_COMM_UNIT] = comm_unit_entry + short_unit
                    cash += qty * credit - comm
                    comm_entry_left += comm
                    pos_legs[1] = pend_convert
                    pos_sign[1] = -1.0
                    pos_mult[1] = OPTION_MULT
                    pos_exp[1] = c_exp[pend_convert]
                    pos_strike[1] = c_strike[pend_convert]
                    pos_call[1] = c_call[pend_convert]
                    last_mark[1] = px
                    pos_n = 2
                    single = False
                    v_entry = net
                    v_entry_trade = net
                    best_v = net
                    stop_v, tp_v = _levels(net, 0.0, params)
                    converted = True
                    changed = True
                else:
                    converted = True  # the debit left would be too small: keep the long call as it is
        pend_convert = -1

        # ---- 3. pending entry
        v_fill = 0.0  # the entry's fill value; step 3b reads it on the entry bar (set before, never stale)
        if pend_entry != 0 and direction == 0 and not (is_option and pend_entry_day != d):
            ok = True
            for k in range(n_legs):
                if leg_kind[k] == 0:
                    px = open_[i]
                    mult = underlying_mult
                else:
                    c = pend_legs[k]
                    if c < 0:
                        ok = False
                        break
                    p = c_off[c] + pos_in_day
                    px = p_open[p] if not np.isnan(p_open[p]) else p_last[p]
                    if np.isnan(px):
                        ok = False
                        break
                    mult = OPTION_MULT
                sgn = leg_sign[k] if leg_kind[k] == 1 else float(pend_entry)
                pos_sign[k] = sgn
                pos_mult[k] = mult
                pos_legs[k] = pend_legs[k] if leg_kind[k] == 1 else -1
                if leg_kind[k] == 1:
                    pos_exp[k] = c_exp[pend_legs[k]]
                    pos_strike[k] = c_strike[pend_legs[k]]
                    pos_call[k] = c_call[pend_legs[k]]
                last_mark[k] = px
                v_fill += sgn * mult * px
            if ok:
                pos_n = n_legs
                single = n_legs == 1  # a converted (two-leg) previous trade must not leak into this one
                params[P_COMM_UNIT] = comm_unit_entry
                cost = _cost_per_unit(
                    pos_n, pos_sign, pos_mult, pos_legs, v_fill, params, is_option, open_[i]
                )
                v_pay = v_fill + cost  # what one unit costs us, costs included
                # sizing
                eq = cash
                stop_dist = 0.0
                kind = params[P_STOP_KIND]
                if kind == 1:
                    stop_dist = params[P_STOP_VAL] * abs(v_pay)
                elif kind == 2:
                    stop_dist = params[P_STOP_VAL] * underlying_mult
                elif kind == 3:
                    stop_dist = params[P_STOP_VAL] * atr_arr[i - 1] * underlying_mult
                elif kind == 4:  # the triggering signal's own stop, scaled
                    stop_dist = params[P_STOP_VAL] * sig_stop_dist[i - 1] * underlying_mult
                    if not stop_dist > 0:
                        stop_dist = 0.0
                unit_comm = params[P_COMM_UNIT] + params[P_COMM_PCT] * abs(v_fill)
                mode = params[P_SIZE_MODE]
                if mode == 0:
                    q = params[P_QTY]
                elif mode == 1:
                    q = _floor_step(eq * params[P_PCT_EQ] / (abs(v_pay) + unit_comm), params[P_QTY_STEP])
                else:
                    # a unit stopped out loses the distance, the exit's slippage or spread and both
                    # commissions: size so that the whole loss is risk_pct of equity (fill model rule 12)
                    v_stop = v_pay - stop_dist
                    und_stop = abs(v_stop) / underlying_mult
                    exit_cost = _cost_per_unit(
                        pos_n, pos_sign, pos_mult, pos_legs, v_stop, params, is_option, und_stop
                    )
                    exit_comm = params[P_COMM_UNIT] + params[P_COMM_PCT] * abs(v_stop)
                    unit_loss = stop_dist + exit_cost + unit_comm + exit_comm
                    q = (
                        _floor_step(eq * params[P_RISK_PCT] / unit_loss, params[P_QTY_STEP])
                        if stop_dist > 0
                        else 0.0
                    )
                if q >= params[P_QTY_STEP] - 1e-12:
                    comm = q * params[P_COMM_UNIT] + params[P_COMM_PCT] * abs(q * v_fill)
                    cash -= q * v_pay + comm
                    qty = q
                    orig_qty = q
                    direction = pend_entry
                    v_entry = v_pay
                    v_entry_trade = v_pay
                    comm_entry_left = comm
                    entry_bar = i
                    entry_ts = ts[i]

                    best_v = v_pay

                    stop_v, tp_v = _levels(v_pay, stop_dist, params)
                    if params[P_TP_KIND] == 2:
                        tp_v = v_pay + params[P_TP_VAL] * underlying_mult
                    elif params[P_TP_KIND] == 3:
                        tp_v = v_pay + params[P_TP_VAL] * atr_arr[i - 1] * underlying_mult
                    elif params[P_TP_KIND] == 4 and sig_tp_dist[i - 1] > 0:
                        tp_v = v_pay + sig_tp_dist[i - 1] * underlying_mult
                    traded_event = sig_event[i - 1]
                    next_partial = 0
                    converted = False
                    stage_und_ref = open_[i]
                    trades_today += 1
                    changed = True
        pend_entry = 0

        # ---- 3b. a position opened or converted (never both: an entry needs no position): the exits'
        # view of it, and this bar's marks with the legs held from now on (a conversion's bar was valued
        # with the long leg alone)
        if changed:
            trade = OpenTrade(
                qty=qty,
                direction=direction,
                entry_bar=entry_bar,
                v_entry=v_entry_trade,
                comm_left=comm_entry_left,
                n_legs=pos_n,
            )
            v_open_mark, v_low, v_high, v_close, priced = _marks(i, pos_in_day, pos_n, pos, prices)
            if entry_bar == i:
                # the entry filled at the raw open, so an intrabar level between the open and
                # open-plus-costs fills at the open (a gap)
                v_open, priced = v_fill, True
            else:
                v_open = v_open_mark

        # ---- 4. time exits at this bar's open; they close even when a leg has no price within the
        # staleness limit (at its last known price, marked stale): a quiet leg must never carry a 0DTE
        # or a spread past the flat time (fill model rule 8)
        if direction != 0:
            reason = -1
            if force_flat[i]:
                reason = 7
            elif params[P_MAX_HOLD_NS] > 0 and ts[i] - entry_ts >= params[P_MAX_HOLD_NS] and i != entry_bar:
                reason = 6
            elif (
                is_option
                and params[P_CLOSE_BEFORE_EXP] >= 0
                and sessions_left(day_ord[d], pos_exp[0], sess_ord) <= params[P_CLOSE_BEFORE_EXP]
                and i != entry_bar
            ):
                reason = 11
            if reason >= 0:
                exit_fill = ExitFill(
                    bar=i, qty=qty, v_price=v_open, reason=reason, und_price=open_[i], stale=not priced
                )
                n_tr, cash, trade = _close(book, n_tr, cash, params, pos, is_option, trade, exit_fill)
                qty, direction, comm_entry_left = trade.qty, trade.direction, trade.comm_left

        # ---- 5. intrabar levels (single-instrument positions)
        if direction != 0 and single and priced:
            trail_stop, reason = stop_level(stop_v, best_v, v_entry, params)
            if trail_stop > -1e299 and v_low <= trail_stop:
                fill = v_open if v_open <= trail_stop else trail_stop
                exit_fill = _level_exit(i, qty, fill, reason, underlying_mult, not priced)
                n_tr, cash, trade = _close(book, n_tr, cash, params, pos, is_option, trade, exit_fill)
                qty, direction, comm_entry_left = trade.qty, trade.direction, trade.comm_left
            if direction != 0:
                while next_partial < len(partial_pct):
                    level = v_entry + partial_pct[next_partial] * abs(v_entry)
                    # a partial beyond the final target is never reached before it: the target, checked
                    # next, closes everything first (exits fill in the order price reaches them)
                    if v_high < level or level > tp_v:
                        break
                    fill = v_open if v_open >= level else level
                    part = min(orig_qty * partial_frac[next_partial], qty)
                    # whole shares and contracts, forex in 0.01 lots (fill model rule 12)
                    part = _floor_step(part, params[P_QTY_STEP])
                    next_partial += 1
                    if part <= 0:
                        continue
                    exit_fill = _level_exit(i, part, fill, 3, underlying_mult, not priced)
                    n_tr, cash, trade = _close(book, n_tr, cash, params, pos, is_option, trade, exit_fill)
                    qty, direction, comm_entry_left = trade.qty, trade.direction, trade.comm_left
                    if direction == 0:
                        break
            if direction != 0 and tp_v < 1e299 and v_high >= tp_v:
                fill = v_open if v_open >= tp_v else tp_v
                exit_fill = _level_exit(i, qty, fill, 2, underlying_mult, not priced)
                n_tr, cash, trade = _close(book, n_tr, cash, params, pos, is_option, trade, exit_fill)
                qty, direction, comm_entry_left = trade.qty, trade.direction, trade.comm_left

        # ---- 6. end of the option's life or of the window: close at this bar's close
        if direction != 0:
            last_bar_of_day = i == end or day[i + 1] != d
            expiring = is_option and last_bar_of_day and pos_exp[0] <= day_ord[d]
            if i == end or expiring:
                fill = v_close
                if is_option and not priced:
                    # no trade to mark: settle at intrinsic value against the underlying close
                    fill = 0.0
                    for k in range(pos_n):
                        intrinsic = (
                            max(close[i] - pos_strike[k], 0.0)
                            if pos_call[k]
                            else max(pos_strike[k] - close[i], 0.0)
                        )
                        fill += pos_sign[k] * pos_mult[k] * intrinsic
                exit_fill = ExitFill(
                    bar=i,
                    qty=qty,
                    v_price=fill,
                    reason=9 if i == end and not expiring else 8,
                    und_price=close[i],
                    stale=not priced,
                )
                n_tr, cash, trade = _close(book, n_tr, cash, params, pos, is_option, trade, exit_fill)
                qty, direction, comm_entry_left = trade.qty, trade.direction, trade.comm_left

        # ---- 7. decisions on this bar's close
        if direction != 0:
            exposure_bars += 1
            bar_best = v_high if single else v_close
            if priced and bar_best > best_v:
                best_v = bar_best
            if not single and priced:  # multi-leg: levels on close marks, filled next open
                gain = (v_close - v_entry) / abs(v_entry) if v_entry != 0 else 0.0
                level_stop, reason = stop_level(stop_v, best_v, v_entry, params)
                if level_stop > -1e299 and v_close <= level_stop:
                    pend_exit_frac = 1.0
                    pend_exit_reason = reason
                elif tp_v < 1e299 and v_close >= tp_v:
                    pend_exit_frac = 1.0
                    pend_exit_reason = 2
                elif next_partial < len(partial_pct) and gain >= partial_pct[next_partial]:
                    pend_exit_frac = partial_frac[next_partial]
                    pend_exit_reason = 3
                    next_partial += 1
            if params[P_STAGED] > 0 and not converted and pend_exit_frac == 0.0 and priced:
                move = (close[i] - stage_und_ref) / stage_und_ref * (1.0 if pos_call[0] else -1.0)
                prem_up = (v_close - v_entry) / abs(v_entry)
                trig = (params[P_STAGE_UND_PCT] > 0 and move >= params[P_STAGE_UND_PCT]) or (
                    params[P_STAGE_PREM_PCT] > 0 and prem_up >= params[P_STAGE_PREM_PCT]
                )
                if trig and i < end and day[i + 1] == d:
                    target = (
                        pos_strike[0] + params[P_STAGE_WIDTH]
                        if pos_call[0]
                        else pos_strike[0] - params[P_STAGE_WIDTH]
                    )
                    pend_convert = _find_contract(
                        day_c0[d], day_c1[d], pos_exp[0], target, pos_call[0], c_exp, c_strike, c_call
                    )
            if pend_exit_frac == 0.0 and (
                direction > 0 and sig_exit_long[i] or direction < 0 and sig_exit_short[i]
            ):
                pend_exit_frac = 1.0
                pend_exit_reason = 0
        want = 0
        dirp = params[P_DIRECTION]
        if (
            i < end
            and entry_ok[i]
            and (params[P_MAX_TRADES_DAY] <= 0 or trades_today < params[P_MAX_TRADES_DAY])
        ):
            if sig_long[i] and dirp >= 0:
                want = 1
            elif sig_short[i] and dirp <= 0:
                want = -1
        if want != 0 and sig_event[i] >= 0 and sig_event[i] == traded_event:
            want = 0  # an external signal event is traded at most once
        if want != 0 and direction == -want and dirp == 0:
            pend_exit_frac = 1.0  # reversal: close and re-open at the next open
            pend_exit_reason = 10
        if want != 0 and (direction == 0 or (direction == -want and dirp == 0)):
            ok = True
            if is_option:
                for k in range(n_legs):
                    right = leg_right[k]
                    want_call = right == 0 or (right == 2 and want > 0)
                    pend_legs[k] = select_contract(
                        day_c0[d],
                        day_c1[d],
                        pos_in_day,
                        close[i],
                        minute[i],
                        day_ord[d],
                        want_call,
                        leg_dte[k],
                        leg_select[k],
                        leg_value[k],
                        params[P_RATE],
                        c_exp,
                        c_strike,
                        c_call,
                        c_off,
                        p_last,
                    )
                    if pend_legs[k] < 0:
                        ok = False
            if ok:
                pend_entry = want
                pend_entry_day = d

        # ---- 8. mark
        if direction != 0:
            equity[i] = cash + qty * v_close
        else:
            equity[i] = cash

    return book, n_tr, equity, exposure_bars


@numba.njit(cache=True)
def _empty_book(rows):  # pragma: no cover
    """A :class:`TradeBook` with room for ``rows`` exit fills (leg slots -1: no contract)."""
    return TradeBook(
        entry_bar=np.zeros(rows, np.int64),
        exit_bar=np.zeros(rows, np.int64),
        direction=np.zeros(rows, np.int64),
        qty=np.zeros(rows),
        entry_v=np.zeros(rows),
        exit_v=np.zeros(rows),
        pnl=np.zeros(rows),
        comm=np.zeros(rows),
        reason=np.zeros(rows, np.int64),
        legs=np.full((rows, 4), -1, np.int64),
        stale=np.zeros(rows, np.bool_),
    )


@numba.njit(cache=True)
def _marks(bar, pos_in_day, pos_n, pos, prices):  # pragma: no cover
    """Value of one unit of the first ``pos_n`` legs of ``pos`` (:class:`PositionLegs`) on bar ``bar``, priced
    from ``prices`` (:class:`PriceArrays`): (open, worst, best, close, every leg priced)."""
    i = bar
    bars, chain, is_option = prices.bars, prices.chain, prices.is_option
    open_, high, low, close = bars.open, bars.high, bars.low, bars.close
    c_off, p_open, p_high, p_low, p_last = chain.c_off, chain.p_open, chain.p_high, chain.p_low, chain.p_last
    pos_legs, pos_sign, pos_mult, last_mark = pos.contract, pos.sign, pos.mult, pos.last_mark
    v_open = 0.0
    v_low = 0.0
    v_high = 0.0
    v_close = 0.0
    priced = True
    for k in range(pos_n):
        if pos_legs[k] < 0:
            if is_option:
                # the contract did not trade at all this session: its last known price
                priced = False
                o = h = lo_ = c = last_mark[k]
            else:
                o, h, lo_, c = open_[i], high[i], low[i], close[i]
        else:
            p = c_off[pos_legs[k]] + pos_in_day
            last = p_last[p]
            if np.isnan(last):
                priced = False
                last = last_mark[k]
            o = p_open[p] if not np.isnan(p_open[p]) else last
            h = p_high[p] if not np.isnan(p_high[p]) else last
            lo_ = p_low[p] if not np.isnan(p_low[p]) else last
            c = last
            last_mark[k] = last
        s = pos_sign[k] * pos_mult[k]
        v_open += s * o
        v_close += s * c
        if s > 0:
            v_low += s * lo_
            v_high += s * h
        else:
            v_low += s * h
            v_high += s * lo_
    return v_open, v_low, v_high, v_close, priced


@numba.njit(cache=True, inline="always")
def _level_exit(bar, qty, fill, reason, underlying_mult, stale):  # pragma: no cover
    """An exit at an intrabar level (stop, partial or final target) filled at ``fill``: the level, or the
    open when the bar opened beyond it. Slippage is taken on that price, not on the bar's open."""
    return ExitFill(
        bar=bar, qty=qty, v_price=fill, reason=reason, und_price=abs(fill) / underlying_mult, stale=stale
    )


@numba.njit(cache=True)
def stop_level(stop_v: float, best_v: float, v_entry: float, params: np.ndarray):  # pragma: no cover
    """The protective level in force and its exit reason (1 stop, 5 break-even, 4 trailing), the one rule
    both engines use (fill model rule 6): the highest of the initial stop, the break-even level once the
    best value so far is up ``trigger_pct``, and the trail below that best value once it is up
    ``activation_pct``. ``best_v`` must exclude the bar being checked, so a bar never raises its own stop."""
    level = stop_v
    reason = 1
    gain_best = (best_v - v_entry) / abs(v_entry) if v_entry != 0 else 0.0
    if params[P_BE_TRIG] > 0 and gain_best >= params[P_BE_TRIG]:
        be = v_entry + params[P_BE_BUF] * abs(v_entry)
        if be > level:
            level = be
            reason = 5
    if params[P_TRAIL_PCT] > 0 and gain_best >= params[P_TRAIL_ACT]:
        tr = best_v - params[P_TRAIL_PCT] * abs(best_v)
        if tr > level:
            level = tr
            reason = 4
    return level, reason


@numba.njit(cache=True)
def _levels(v: float, stop_dist: float, params: np.ndarray):  # pragma: no cover
    stop = -1e300
    tp = 1e300
    if params[P_STOP_KIND] == 1:
        stop = v - params[P_STOP_VAL] * abs(v)
    elif params[P_STOP_KIND] >= 2 and stop_dist > 0:
        stop = v - stop_dist
    if params[P_TP_KIND] == 1:
        tp = v + params[P_TP_VAL] * abs(v)
    return stop, tp


@numba.njit(cache=True)
def _cost_per_unit(pos_n, pos_sign, pos_mult, pos_legs, v, params, is_option, und_price):  # pragma: no cover
    """Slippage and spread of trading one unit, in value units (always >= 0)."""
    cost = 0.0
    for k in range(pos_n):
        if is_option:
            cost += params[P_HALF_SPREAD] * pos_mult[k]
        else:
            cost += (params[P_SLIP_FRAC] * und_price + params[P_SLIP_ABS]) * pos_mult[k]
    return cost


@numba.njit(cache=True)
def _close(book, n_tr, cash, params, pos, is_option, trade, fill):  # pragma: no cover
    """Record ``fill`` (an :class:`ExitFill`) of ``trade`` (an :class:`OpenTrade` on legs ``pos``) as row
    ``n_tr`` of ``book``; returns (rows, cash, the trade after the exit: flat once nothing is left)."""
    v_fill = fill.v_price - _cost_per_unit(
        trade.n_legs, pos.sign, pos.mult, pos.contract, fill.v_price, params, is_option, fill.und_price
    )
    exit_qty = fill.qty
    comm = exit_qty * params[P_COMM_UNIT] + params[P_COMM_PCT] * abs(exit_qty * fill.v_price)
    share = trade.comm_left * exit_qty / trade.qty
    cash += exit_qty * v_fill - comm
    book.entry_bar[n_tr] = trade.entry_bar
    book.exit_bar[n_tr] = fill.bar
    book.direction[n_tr] = trade.direction
    book.qty[n_tr] = exit_qty
    book.entry_v[n_tr] = trade.v_entry
    book.exit_v[n_tr] = v_fill
    book.pnl[n_tr] = exit_qty * (v_fill - trade.v_entry) - comm - share
    book.comm[n_tr] = comm + share
    book.reason[n_tr] = fill.reason
    book.stale[n_tr] = fill.stale
    for k in range(trade.n_legs):
        book.legs[n_tr, k] = pos.contract[k]
    n_tr += 1
    qty = trade.qty - exit_qty
    direction = trade.direction
    if qty <= 1e-12:
        qty = 0.0
        direction = 0
    left = OpenTrade(
        qty=qty,
        direction=direction,
        entry_bar=trade.entry_bar,
        v_entry=trade.v_entry,
        comm_left=trade.comm_left - share,
        n_legs=trade.n_legs,
    )
    return n_tr, cash, left
