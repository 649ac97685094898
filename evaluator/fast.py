"""The fast engine: a StrategySpec flattened to arrays and run by the numba kernel."""

from __future__ import annotations

import datetime as dt

import numpy as np

from evaluator import _kernel as K
from evaluator.market import Market, attach_signals, option_last_prices
from evaluator.results import BacktestResult, build_result, trades_frame
from evaluator.signals import BarSeries, atr, evaluate_bool
from spec_space.instruments import FUTURES, InstrumentType, clock_session_minute, forex_pair
from spec_space.models import Level, StrategySpec


def _session_minutes(text: str | None, instrument_type: InstrumentType) -> int | None:
    """A spec's clock time as a minute of the trading session (None stays None)."""
    if text is None:
        return None
    t = dt.time.fromisoformat(text)
    return clock_session_minute(t.hour * 60 + t.minute, instrument_type)


def underlying_multiplier(spec: StrategySpec) -> tuple[float, float, float]:
    """(value multiplier of one unit, quantity step, tick size) of the traded instrument."""
    inst = spec.instrument
    if inst.type == "future":
        contract = FUTURES[inst.symbol]
        return contract.multiplier, 1.0, contract.tick_size
    if inst.type == "forex":
        pair = forex_pair(inst.symbol)
        return pair.lot_units, 0.01, pair.pip_size
    return 1.0, 1.0, 0.01


def _level(level: Level | None, spec: StrategySpec) -> tuple[float, float]:
    if level is None:
        return 0.0, 0.0
    if level.pct is not None:
        return 1.0, level.pct
    if level.atr is not None:
        return 3.0, level.atr
    if level.points is not None:
        return 2.0, level.points
    if level.signal_stop is not None:
        return 4.0, level.signal_stop
    if level.signal_target is not None:
        return 4.0, 1.0  # the distance itself comes per bar from the triggering signal
    return 2.0, float(level.pips) * forex_pair(spec.instrument.symbol).pip_size  # type: ignore[arg-type]


def kernel_params(spec: StrategySpec) -> np.ndarray:
    p = np.zeros(K.N_PARAMS)
    ex, costs, sizing = spec.exits, spec.costs, spec.sizing
    p[K.P_STOP_KIND], p[K.P_STOP_VAL] = _level(ex.stop_loss, spec)
    p[K.P_TP_KIND], p[K.P_TP_VAL] = _level(ex.take_profit, spec)
    if ex.trailing is not None:
        p[K.P_TRAIL_PCT], p[K.P_TRAIL_ACT] = ex.trailing.pct, ex.trailing.activation_pct
    if ex.break_even is not None:
        p[K.P_BE_TRIG], p[K.P_BE_BUF] = ex.break_even.trigger_pct, ex.break_even.buffer_pct
    p[K.P_MAX_HOLD_NS] = (ex.max_hold_minutes or 0) * 60e9
    p[K.P_CLOSE_BEFORE_EXP] = -1 if ex.close_days_before_expiry is None else ex.close_days_before_expiry
    mult, step, tick = underlying_multiplier(spec)
    inst = spec.instrument
    if inst.type in ("stock", "forex"):
        p[K.P_SLIP_FRAC] = costs.slippage_bps / 1e4
    if inst.type == "future":
        p[K.P_SLIP_ABS] = costs.slippage_ticks * tick
    p[K.P_HALF_SPREAD] = costs.option_half_spread
    if inst.type == "stock":
        p[K.P_COMM_UNIT] = costs.commission_per_share
    elif inst.type == "option":
        p[K.P_COMM_UNIT] = costs.commission_per_contract * sum(leg.ratio for leg in inst.legs)
    elif inst.type == "future":
        p[K.P_COMM_UNIT] = costs.commission_per_contract
    else:
        p[K.P_COMM_UNIT] = costs.commission_per_lot
    p[K.P_COMM_PCT] = costs.commission_pct
    p[K.P_SIZE_MODE] = {"fixed": 0, "pct_equity": 1, "risk": 2}[sizing.mode]
    p[K.P_QTY], p[K.P_PCT_EQ], p[K.P_RISK_PCT] = sizing.quantity, sizing.pct_equity, sizing.risk_pct
    p[K.P_QTY_STEP] = step
    p[K.P_CASH] = spec.initial_cash
    p[K.P_MAX_TRADES_DAY] = sizing.max_trades_per_day or 0
    p[K.P_DIRECTION] = {"long": 1, "short": -1, "both": 0}[spec.direction]
    if inst.staged is not None:
        p[K.P_STAGED] = 1
        p[K.P_STAGE_UND_PCT] = inst.staged.underlying_move_pct or 0.0
        p[K.P_STAGE_PREM_PCT] = inst.staged.premium_up_pct or 0.0
        p[K.P_STAGE_WIDTH] = inst.staged.width
        p[K.P_STAGE_MIN_DEBIT] = inst.staged.min_net_debit
    p[K.P_RATE] = 0.05
    return p


def _legs(spec: StrategySpec) -> K.LegArrays:
    legs = spec.instrument.legs
    if spec.instrument.type != "option":
        return K.LegArrays(
            kind=np.zeros(1, np.int64),
            sign=np.ones(1),
            right=np.zeros(1, np.int64),
            dte=np.zeros(1, np.int64),
            select=np.zeros(1, np.int64),
            value=np.zeros(1),
        )
    return K.LegArrays(
        kind=np.ones(len(legs), np.int64),
        sign=np.array([(1.0 if leg.side == "buy" else -1.0) * leg.ratio for leg in legs]),
        right=np.array([{"call": 0, "put": 1, "auto": 2}[leg.right] for leg in legs], np.int64),
        dte=np.array([leg.dte for leg in legs], np.int64),
        select=np.array([{"delta": 0, "moneyness": 1, "offset": 2}[leg.select] for leg in legs], np.int64),
        value=np.array([leg.value for leg in legs], np.float64),
    )


def signal_arrays(spec: StrategySpec, market: Market) -> dict[str, np.ndarray]:
    """Entry, exit, window and time-exit flags per bar, shared by both engines."""
    bars = market.bars
    n = len(bars)
    entry_ok = np.ones(n, dtype=np.bool_)
    # spec times are minutes of the trading session (data.calendar.spec_session_minute): on forex and
    # futures a session opens the evening before its date, so clock minutes would put the evening after
    # a 16:55 flat time and before a 03:00 window start
    kind = spec.instrument.type
    start, end = _session_minutes(spec.entry.window_start, kind), _session_minutes(spec.entry.window_end, kind)
    if start is not None:
        entry_ok &= bars.session_minute >= start
    if end is not None:
        entry_ok &= bars.session_minute < end
    force_flat = np.zeros(n, dtype=np.bool_)
    flat = _session_minutes(spec.exits.eod_flat_time, kind)
    if flat is not None:
        force_flat = bars.session_minute >= flat
        last_of_day = np.ones(n, dtype=np.bool_)
        last_of_day[:-1] = bars.day[1:] != bars.day[:-1]
        force_flat |= last_of_day  # half days close before the flat time: flat at their last bar
        # an entry decided on bar i fills at bar i + 1's open: none whose fill bar is already flat,
        # which would only buy and sell at the same open and pay the costs twice
        fill_flat = np.zeros(n, dtype=np.bool_)
        fill_flat[:-1] = force_flat[1:]
        entry_ok &= ~force_flat & ~fill_flat
    atr_period = 14
    for level in (spec.exits.stop_loss, spec.exits.take_profit):
        if level is not None and level.atr is not None:
            atr_period = level.atr_period
    key = f"atr:{atr_period}"
    if key not in bars.cache:
        bars.cache[key] = atr(bars.high, bars.low, bars.close, atr_period)
    attach_signals(bars, spec)
    sig_event, sig_stop_dist, sig_tp_dist = _signal_levels(spec, bars)
    return {
        "sig_event": sig_event,
        "sig_stop_dist": sig_stop_dist,
        "sig_tp_dist": sig_tp_dist,
        "long": evaluate_bool(spec.entry.long, bars) if spec.direction != "short" else np.zeros(n, np.bool_),
        "short": evaluate_bool(spec.entry.short, bars) if spec.direction != "long" else np.zeros(n, np.bool_),
        "exit_long": evaluate_bool(spec.exits.exit_long, bars),
        "exit_short": evaluate_bool(spec.exits.exit_short, bars),
        "entry_ok": entry_ok,
        "force_flat": force_flat,
        "atr": bars.cache[key],
    }


def _signal_levels(spec: StrategySpec, bars: BarSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bar: the latest external event known (-1: none; the kernel trades each event at most once), and
    its entry-to-stop and entry-to-target distances (the signal_stop / signal_target levels)."""
    n = len(bars)
    names = sorted(spec.external_signal_names())
    if not names:
        return np.full(n, -1, np.int64), np.full(n, np.nan), np.full(n, np.nan)
    events = bars.external[names[0]]  # one signal list drives a spec's entries
    index = np.searchsorted(events.ts, bars.ts, side="right") - 1
    known = index >= 0
    safe = np.maximum(index, 0)
    stop_dist = np.where(known, np.abs(events.entry[safe] - events.stop[safe]), np.nan)
    tp_dist = np.full(n, np.nan)
    level = spec.exits.take_profit.signal_target if spec.exits.take_profit is not None else None
    if level is not None and level <= events.targets.shape[1]:
        tp_dist = np.where(known, np.abs(events.targets[safe, level - 1] - events.entry[safe]), np.nan)
    return np.where(known, index, -1).astype(np.int64), stop_dist, tp_dist


def run(spec: StrategySpec, market: Market, start: dt.date, end: dt.date) -> BacktestResult:
    """Backtest ``spec`` on the sessions of ``market`` between ``start`` and ``end`` inclusive."""
    i0, i1 = market.index_range(start, end)
    sig = signal_arrays(spec, market)
    bars, opt = market.bars, market.options
    p_last = option_last_prices(spec, market)
    mult, _, _ = underlying_multiplier(spec)
    out = K.run_kernel(
        bars=K.BarArrays(
            ts=bars.ts,
            open=bars.open,
            high=bars.high,
            low=bars.low,
            close=bars.close,
            day=bars.day,
            minute=bars.minute,
            day_ord=market.day_ord,
            day_first_bar=market.day_first_bar,
        ),
        sig=K.SignalArrays(
            long=sig["long"],
            short=sig["short"],
            exit_long=sig["exit_long"],
            exit_short=sig["exit_short"],
            entry_ok=sig["entry_ok"],
            force_flat=sig["force_flat"],
            atr=sig["atr"],
            event=sig["sig_event"],
            stop_dist=sig["sig_stop_dist"],
            tp_dist=sig["sig_tp_dist"],
        ),
        legs=_legs(spec),
        chain=K.ChainArrays(
            day_c0=opt.day_c0,
            day_c1=opt.day_c1,
            c_exp=opt.c_exp,
            c_strike=opt.c_strike,
            c_call=opt.c_call,
            c_off=opt.c_off,
            p_open=opt.p_open,
            p_high=opt.p_high,
            p_low=opt.p_low,
            p_last=p_last,
            sess_ord=session_ordinals(spec, market),
        ),
        rules=K.RuleArrays(
            params=kernel_params(spec),
            underlying_mult=mult,
            partial_pct=np.array([p.pct for p in spec.exits.partial_take_profits], np.float64),
            partial_frac=np.array([p.fraction for p in spec.exits.partial_take_profits], np.float64),
        ),
        start=i0,
        end=i1,
    )
    book, n_trades, equity, exposure_bars = out
    entry_bar, exit_bar, direction, qty, entry_v, exit_v, pnl, comm, reason, legs, stale = (
        column[:n_trades] for column in book
    )
    contracts = [
        "+".join(opt.c_ticker[c] for c in row if c >= 0)
        if spec.instrument.type == "option"
        else market.spec_symbol
        for row in legs
    ]
    trades = trades_frame(
        spec,
        market,
        entry_bar=entry_bar,
        exit_bar=exit_bar,
        direction=direction,
        quantity=qty,
        entry_v=entry_v,
        exit_v=exit_v,
        pnl=pnl,
        commission=comm,
        reason=reason,
        instrument=contracts,
        stale=stale,
        unit_mult=mult,
    )
    return build_result(spec, market, trades, equity, i0, i1, exposure_bars, engine="fast")


def session_ordinals(spec: StrategySpec, market: Market) -> np.ndarray:
    """Sorted day ordinals (days since 1970-01-01) of the trading sessions from the market's first session
    to its options' last expiry: what ``close_days_before_expiry`` counts. The exchange calendar covers
    expiries after the loaded data; the market's own sessions are included so hand-made markets count too.
    Empty for specs that are not options."""
    opt = market.options
    if spec.instrument.type != "option" or len(market.day_ord) == 0:
        return np.zeros(0, np.int64)
    first = int(market.day_ord[0])
    last = max(int(market.day_ord[-1]), int(opt.c_exp.max()) if len(opt.c_exp) else first)
    key = f"sessions:{first}:{last}"
    cached = market.bars.cache.get(key)
    if cached is None:
        from data.calendar import nyse_session_dates  # exchange_calendars is slow to import; options only

        epoch = dt.date(1970, 1, 1)
        calendar = nyse_session_dates(epoch + dt.timedelta(days=first), epoch + dt.timedelta(days=last))
        days = {(d - epoch).days for d in calendar} | {int(x) for x in market.day_ord}
        cached = np.array(sorted(days), np.int64)
        market.bars.cache[key] = cached
    return cached
