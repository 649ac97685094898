"""The data frames Lumibot's ``PandasData`` reads: the instrument's bars with each session's sentinels
(:mod:`evaluator.lumibot`, note 1) and option contracts' rows built by the fill model (note 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluator import _kernel as K
from evaluator.lumibot.plan import NS_PER_MIN, Plan
from evaluator.market import NY


def _index(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(ns, utc=True)).tz_convert(NY)


def underlying_frame(plan: Plan) -> pd.DataFrame:
    """The traded (or underlying) instrument's bars of the window plus each session's two sentinels."""
    bars = plan.market.bars
    sl = slice(plan.i0, plan.i1 + 1)
    ts = bars.ts[sl]
    cols = {
        name: getattr(bars, name)[sl].astype(np.float64)
        for name in ("open", "high", "low", "close", "volume")
    }
    last = np.array(sorted(plan.sentinel_at.values()), dtype=np.int64)
    extra_ts = np.concatenate([bars.ts[last] + NS_PER_MIN, bars.ts[last] + 2 * NS_PER_MIN])
    extra_px = np.concatenate([bars.close[last], bars.close[last]])
    all_ts = np.concatenate([ts, extra_ts])
    frame = pd.DataFrame(
        {
            "open": np.concatenate([cols["open"], extra_px]),
            "high": np.concatenate([cols["high"], extra_px]),
            "low": np.concatenate([cols["low"], extra_px]),
            "close": np.concatenate([cols["close"], extra_px]),
            "volume": np.concatenate([cols["volume"], np.zeros(len(extra_ts))]),
        },
        index=_index(all_ts),
    )
    return frame.sort_index()


def contract_frame(plan: Plan, day: int, expiry_ord: int, strike: float, is_call: bool) -> pd.DataFrame:
    """One contract's rows at every bar of the window's sessions from ``day`` to its expiry, built by
    the fill model (module note 2): its own bar where it traded, else its last trade within the
    staleness limit, else its last known trade however old (the price a time exit of a quiet leg fills
    at, marked stale; the strategy enters, converts and rests levels only on priced bars, as the kernel
    does), else zeros (no price)."""
    mkt = plan.market
    bars, opt = mkt.bars, mkt.options
    stamps: list[np.ndarray] = []
    cols: dict[str, list[np.ndarray]] = {"open": [], "high": [], "low": [], "close": []}
    carry = 0.0  # the last known trade price so far (0: none yet)
    for d in range(day, int(bars.day[plan.i1]) + 1):
        if mkt.day_ord[d] > expiry_ord:
            break
        c = int(
            K._find_contract(
                opt.day_c0[d], opt.day_c1[d], expiry_ord, strike, is_call, opt.c_exp, opt.c_strike, opt.c_call
            )
        )
        first = int(mkt.day_first_bar[d])
        last = int(np.searchsorted(bars.day, d, side="right") - 1)
        if c < 0:
            o = h = lo = cl = np.full(last - first + 1, carry)
            cl_fresh = np.zeros(last - first + 1)
        else:
            sl = slice(int(opt.c_off[c]), int(opt.c_off[c]) + last - first + 1)
            mark = plan.p_last[sl]
            none = np.isnan(mark)
            o, h, lo = (
                np.where(np.isnan(x), mark, x) for x in (opt.p_open[sl], opt.p_high[sl], opt.p_low[sl])
            )
            cl_fresh = np.where(none, 0.0, mark)
            # the last known trade at each row (forward-filled from earlier rows and sessions)
            where = np.where(none, -1, np.arange(len(mark)))
            where = np.maximum.accumulate(where)
            stale = np.where(where >= 0, mark[np.maximum(where, 0)], carry)
            o, h, lo, cl = (np.where(none, stale, x) for x in (o, h, lo, mark))
            carry = float(stale[-1])
        # the sentinels carry the close's mark only in sessions where a position can be closed at the
        # close (the contract's expiry, the window's end): elsewhere no price, so no resting order can
        # ever fill at a sentinel
        close_mark = 0.0
        if d in plan.close_days or mkt.day_ord[d] >= expiry_ord:
            close_mark = float(cl_fresh[-1])
            if close_mark <= 0.0:  # no trade within the limit: intrinsic value against the close
                und = float(bars.close[last])
                close_mark = max(und - strike, 0.0) if is_call else max(strike - und, 0.0)
        tail = np.array([close_mark, close_mark])
        stamps.append(
            np.concatenate([bars.ts[first : last + 1], bars.ts[last] + np.array([1, 2]) * NS_PER_MIN])
        )
        for name, values in zip(("open", "high", "low", "close"), (o, h, lo, cl), strict=True):
            cols[name].append(np.concatenate([values, tail]))
    frame = pd.DataFrame(
        {name: np.concatenate(parts) for name, parts in cols.items()}, index=_index(np.concatenate(stamps))
    )
    frame["volume"] = 0.0
    return frame
